"""One sweep point: torch Monte Carlo (``network_jacobian_spectrum``), the theory (``jacobian_spectrum``) and
the comparison numbers (:func:`rmt_init.compare`), as a flat record of plain numbers.

Like :mod:`rmt_init.compare` and the ``compare`` subcommand, this is a place where the two halves of the
package meet: the law fixes σ_w² (``init="gaussian"``) and the input variance (q* − σ_b²)/σ_w² that starts a
non-homogeneous activation at its mean-field fixed point q* (Poole et al. 2016, arXiv 1606.05340), exactly as
``rmt-init compare`` does; the networks are then sampled with the point's seed.

Record (``NaN`` where a number does not exist):

* measured: ``measured_moment[k]`` = mean over trials of (1/n) Σ λᵢᵏ, k = 1…:data:`MOMENTS`, with its standard
  error across trials ``measured_moment_se[k]`` (the trial is the independent unit); ``measured_top``, the
  mean largest λ, and its standard error; ``n_samples``; ``structural_zeros`` (per trial, BN train mode);
* theory (N → ∞): ``predicted_moment[k]``, ``predicted_top`` (the upper edge; both without batch norm only),
  ``sigma_w2``, ``q_star``, ``chi1``; missing when ``jacobian_spectrum`` has no law for the point;
* comparison, without batch norm only (the package has no law of the BN Jacobian spectrum, so BN points
  report measured numbers only): ``ks``, ``wasserstein1``, ``moment_error[k]`` ± ``moment_error_se[k]``
  (relative), ``edge_error`` (relative), as defined in :mod:`rmt_init.compare`.

Torch runs on ``threads`` intra-op threads (default 1) during the point and is restored afterwards: a sweep
parallelises over points, and a fixed thread count keeps the floating-point reductions, hence the numbers,
identical on every executor.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

__all__ = ["run_point", "MOMENTS", "SCALARS", "MOMENT_VARIABLES"]

MOMENTS = 4
#: the scalar numbers of a record, in the order of the dataset's variables
SCALARS: tuple[str, ...] = (
    "measured_top", "measured_top_se", "n_samples", "structural_zeros",
    "predicted_top", "sigma_w2", "q_star", "chi1",
    "ks", "wasserstein1", "edge_error", "seed", "seconds",
)
#: the numbers with one value per moment order k = 1…MOMENTS
MOMENT_VARIABLES: tuple[str, ...] = (
    "measured_moment", "measured_moment_se", "predicted_moment", "moment_error", "moment_error_se",
)


def _nan_moments() -> list[float]:
    return [math.nan] * MOMENTS


def run_point(point: dict[str, Any], seed: int, device: str = "cpu", threads: int | None = 1,
              distances: bool = True) -> dict[str, Any]:
    """Compute one point (see the module docstring); returns ``{name: number or list of MOMENTS numbers,
    "note": str}``. ``distances=False`` skips KS and W₁ (NaN): they need the law's distribution function, a
    table that costs ~1 s for the laws of ReLU and linear networks but minutes for smooth ones (tanh with
    q* > 0); the moment and edge errors stay (closed forms, same definitions as :func:`rmt_init.compare`)."""
    import torch

    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    try:
        record = _compute(point, seed, device, distances)
    finally:
        torch.set_num_threads(previous)
    record["seconds"] = time.perf_counter() - start
    return record


def _compute(point: dict[str, Any], seed: int, device: str, distances: bool = True) -> dict[str, Any]:
    from ..compare import compare
    from ..montecarlo import network_jacobian_spectrum
    from ..theory import jacobian_spectrum

    depth, width, activation, init = point["depth"], point["width"], point["activation"], point["init"]
    sigma_b2 = point["sigma_b2"]
    batchnorm = None if point["batchnorm"] == "none" else point["batchnorm"]
    record: dict[str, Any] = {name: math.nan for name in SCALARS} | {name: _nan_moments() for name in MOMENT_VARIABLES}
    record["seed"] = seed
    notes: list[str] = []
    law = None
    try:
        law = jacobian_spectrum(depth, activation, init=init, sigma_w2=point["sigma_w2"], sigma_b2=sigma_b2)
    except ValueError as error:  # no law for this point: measured numbers only
        notes.append(f"no theory: {error}")
    network: dict[str, Any] = dict(trials=point["trials"], seed=seed, device=device, layer_stats=False,
                                   batchnorm=batchnorm, batch_size=point["batch_size"])
    if sigma_b2 > 0.0:
        network.update(bias=True, sigma_b2=sigma_b2)
    if law is not None:
        sw2, q = float(law.sigma_w2[0]), float(law.q_star[0])
        record.update(sigma_w2=sw2, q_star=q, chi1=float(law.chi1))
        if batchnorm is None:  # the law is that of the network without batch norm
            record.update(predicted_top=float(law.upper_edge),
                          predicted_moment=[float(law.moment(k)) for k in range(1, MOMENTS + 1)])
        if not law.activation.is_homogeneous and q > 0.0:
            network["input_variance"] = (q - sigma_b2) / sw2
        elif not law.activation.is_homogeneous:
            # the law is the steady state q = q* = 0 (all λ at σ_w^{2L} for orthogonal weights); unit-variance inputs
            # reach it only slowly (q_l ~ 1/l at χ₁ = 1), so the measured spectrum is not that of the law's network
            notes.append("q* = 0: the law assumes the fixed point q = 0; the network's unit-variance inputs approach it "
                         "only slowly with depth, so theory and measurement describe different networks")
        if init == "gaussian":
            network["sigma_w2"] = sw2
    elif init == "gaussian":
        if point["sigma_w2"] is None:
            raise ValueError(f"init='gaussian' needs sigma_w2 where the theory has no critical value: {notes[0]}")
        network["sigma_w2"] = point["sigma_w2"]
    result = network_jacobian_spectrum(depth, width, activation, init, **network)
    x = np.asarray(result.squared_singular_values, dtype=np.float64)
    trials = x.shape[0]
    per_moment = [np.mean(x**k, axis=1) for k in range(1, MOMENTS + 1)]
    top = x.max(axis=1)
    record.update(
        measured_moment=[float(m.mean()) for m in per_moment],
        measured_moment_se=[float(m.std(ddof=1) / math.sqrt(trials)) for m in per_moment],
        measured_top=float(top.mean()), measured_top_se=float(top.std(ddof=1) / math.sqrt(trials)),
        n_samples=float(x.size), structural_zeros=float(np.mean(result.structural_zeros)),
    )
    if law is not None and batchnorm is None and not distances:
        exact = [float(law.moment(k)) for k in range(1, MOMENTS + 1)]
        edge = float(law.upper_edge)
        record.update(edge_error=(float(top.mean()) - edge) / edge,
                      moment_error=[(float(m.mean()) - e) / e for m, e in zip(per_moment, exact)],
                      moment_error_se=[float(m.std(ddof=1) / math.sqrt(trials)) / abs(e)
                                       for m, e in zip(per_moment, exact)])
        notes.append("KS and W1 skipped (distances=False)")
    elif law is not None and batchnorm is None:
        numbers = compare(law, result, moments=MOMENTS)
        record.update(ks=numbers.ks, wasserstein1=numbers.wasserstein1, edge_error=numbers.edge_error,
                      moment_error=[numbers.moment_errors[k] for k in range(1, MOMENTS + 1)],
                      moment_error_se=[numbers.moment_stderrs[k] for k in range(1, MOMENTS + 1)])
        notes.extend(numbers.notes)
    elif batchnorm is not None:
        notes.append("batch norm: measured numbers only (no law of the BN Jacobian spectrum)")
    record["note"] = "; ".join(notes)
    return record
