"""The main job of ``rmt-init``: the predicted Jacobian law of a deep ReLU network against real ``torch.nn``
networks, without and with batch normalisation.

Network (default :class:`MainJobConfig`): depth L = 10 blocks ``Linear(256, 256, bias=False) → [BatchNorm1d]
→ ReLU``, weights by ``torch.nn.init.kaiming_normal_`` (σ_w² = 2), inputs N(0, 1), seed 0, one torch thread
(so the printed numbers are the same on every run of a machine).

Without BN, the squared singular values of the per-example input–output Jacobian J of ``trials`` networks are
compared with ``jacobian_spectrum(L, "relu", init="kaiming_normal")`` (Pennington, Schoenholz & Ganguli 2017,
arXiv 1711.04735; N → ∞). With BN in train mode (batch B = 8), there is no spectral theory yet: the
per-layer growth of the squared gradient norm is compared with ``bn_gradient_growth("relu", B)`` (Yang et al.
2019, arXiv 1902.08129), and the batch Jacobian's top singular value is reported as measured.

Checks and tolerances (networks are the independent unit; SE = standard error across them; a check passes
when |measured − predicted| ≤ tolerance):

* **mean λ** = tr JJᵀ/N: E = 1 exactly at any N (flipping the sign of a row of W flips that unit's activity
  but not (w·v)², and sign flips preserve the Gaussian law), so tolerance 5 SE.
* **E λ²** = tr (JJᵀ)²/N: exact at finite N, ``finite_width_moments(N, L, σ_w² = 2, activation="relu").b``
  (22.6 at N = 256, L = 10, against L + 1 = 21 at N → ∞); tolerance 5 SE.
* **zero fraction** of λ: exactly 1 − min_l K_l/N, K_l i.i.d. Bin(N, ½) (the active counts; rank J = min_l K_l
  for generic weights), :func:`rmt_init.theory.relu_zero_fraction`; the law's atom is ½ only at N → ∞ (0.548 at N = 256,
  L = 10). Tolerance 5 × (exact standard deviation)/√trials. A sample is zero when λ ≤ 1e−24·λ_max: float64
  SVD zeros are ≲ (N ε)² λ_max ≈ 3e−27 λ_max, while the smallest nonzero λ measured here are ≳ 1e−20 λ_max.
* **gradient growth** per layer (no BN): χ₁ = 1 (Schoenholz et al. 2017), exact at any width for the same
  sign-flip reason; the growth of the trial-mean E‖g_l‖² over layers 1..L−1
  (``LayerStatsResult.gradient_growth``, jackknife SE); tolerance 5 SE.
* **gradient growth with BN**: ``bn_gradient_growth("relu", B)``; tolerance 5 SE + 2/N, the finite-width bias
  bound measured in the package's BN Monte Carlo tests (relu, depth 10, N = 64–256).
* **KS distance** and **top eigenvalue** without BN: reported, not checked. The finite-N distribution of a
  ReLU Jacobian is not derived here (the binomial active counts make the factors rectangular, which moves
  the small eigenvalues and the edge by O(N^{−1/2})); the top eigenvalue is the trial mean of λ_max against
  the N → ∞ edge.
* **top λ growth with BN**: the per-layer growth of the trial-mean λ_max of the batch Jacobian (width
  ``bn_width``, the batch Jacobian being B·N square), fitted over depths 1..L; reported only: no theory of
  the BN spectrum exists in the package (λ_BN, the gradient growth, is printed next to it for scale only).

The figure (:func:`draw`) has four panels: the spectrum without BN over the theory density; the spectrum
with BN (measured); the top singular value against depth (theory N → ∞ edge, both networks); the squared
gradient norm per layer with and without BN against the predicted growth.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._common import fmt

__all__ = ["MainJobConfig", "DEFAULT_CONFIG", "Check", "MainJobResult", "run", "lines", "record", "draw"]

SAFETY = 5.0  # standard errors in every tolerance
BN_BIAS_C = 2.0  # finite-width bias bound c/N of the BN gradient growth (relu)
ZERO_THRESHOLD = 1e-24  # relative to λ_max: numerical zeros of a float64 SVD (see the module docstring)


@dataclass(frozen=True)
class MainJobConfig:
    """Sizes of the main job (the defaults take ~20 s of one CPU core, imports and figure included)."""

    depth: int = 10
    width: int = 256
    trials: int = 80  # networks for the depth-L spectrum without BN
    depth_trials: int = 10  # networks per shallower depth for the top singular value against depth
    grad_trials: int = 60  # networks for each gradient-growth measurement
    batch_size: int = 8
    bn_width: int = 64  # width of the BN networks whose batch Jacobian (B·N square) is formed
    bn_trials: int = 3  # BN networks per depth
    seed: int = 0
    activation: str = "relu"  # the finite-N predictions below are those of Gaussian ReLU networks
    init: str = "kaiming_normal"


@dataclass(frozen=True)
class Check:
    """One row of the table: ``passed`` is None for a number that is reported, not checked."""

    name: str
    predicted: float | None
    measured: float
    stderr: float | None
    tolerance: float | None
    passed: bool | None
    note: str = ""


@dataclass
class MainJobResult:
    config: MainJobConfig
    law: Any
    spectrum: Any  # SpectrumResult without BN, depth L
    bn_spectrum: Any  # SpectrumResult with BN, depth L (width bn_width)
    checks: list[Check]
    edges: np.ndarray  # N → ∞ upper edge of the law at depths 1..L
    top: np.ndarray  # (L, 2): mean, SE of the largest singular value without BN, depths 1..L
    bn_top: np.ndarray  # (L, 2): the same with BN
    grad: np.ndarray  # (trials, L + 1) E‖g_l‖² without BN
    bn_grad: np.ndarray  # with BN
    chi1: float
    bn_growth: float
    extra: dict[str, Any] = field(default_factory=dict)


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64).ravel()
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


def _check(name: str, predicted: float, measured: float, stderr: float, tolerance: float, note: str = "") -> Check:
    return Check(name, predicted, measured, stderr, tolerance, bool(abs(measured - predicted) <= tolerance), note)


#: what ``rmt-init`` runs
DEFAULT_CONFIG = MainJobConfig()


def run(config: MainJobConfig | None = None, progress: bool | str = False) -> MainJobResult:
    """Compute everything the main job prints and draws (single-threaded torch, seeded); ``config`` defaults to
    :data:`DEFAULT_CONFIG`."""
    import torch

    from ..compare import compare
    from ..montecarlo import network_jacobian_spectrum, network_layer_stats
    from ..theory import bn_gradient_growth, finite_width_moments, jacobian_spectrum, relu_zero_fraction

    c = DEFAULT_CONFIG if config is None else config
    if c.activation != "relu" or c.init not in ("kaiming_normal", "gaussian"):
        raise ValueError("the main job's finite-width predictions are those of Gaussian ReLU networks")
    L, n, act, init = c.depth, c.width, c.activation, c.init
    previous = torch.get_num_threads()
    torch.set_num_threads(1)  # the same floating-point operations on every run
    try:
        law = jacobian_spectrum(L, act, init=init)
        laws = [jacobian_spectrum(d, act, init=init) for d in range(1, L + 1)]
        edges = np.array([float(x.upper_edge) for x in laws])
        common = dict(activation=act, init=init, layer_stats=False, progress=progress)
        res = network_jacobian_spectrum(L, n, trials=c.trials, seed=c.seed, **common)
        x = res.squared_singular_values
        tops, bn_tops, bn_res = [], [], None
        for d in range(1, L + 1):
            r = res if d == L else network_jacobian_spectrum(d, n, trials=c.depth_trials, seed=c.seed + 100 + d,
                                                            **common)
            tops.append(_mean_se(np.sqrt(r.squared_singular_values.max(axis=1))))
            b = network_jacobian_spectrum(d, c.bn_width, batchnorm="train", batch_size=c.batch_size,
                                          trials=c.bn_trials, seed=c.seed + 200 + d, **common)
            bn_tops.append(_mean_se(np.sqrt(b.squared_singular_values.max(axis=1))))
            bn_res = b
        stats = dict(activation=act, init=init, batch_size=c.batch_size, trials=c.grad_trials, progress=progress)
        plain = network_layer_stats(L, n, seed=c.seed + 1, **stats)
        with_bn = network_layer_stats(L, n, batchnorm="train", seed=c.seed + 2, **stats)
        numbers = compare(law, res, atom_tol=ZERO_THRESHOLD)
    finally:
        torch.set_num_threads(previous)

    checks: list[Check] = []
    m1, s1 = _mean_se(x.mean(axis=1))
    checks.append(_check("mean λ", float(law.mean()), m1, s1, SAFETY * s1, "exact at any N"))
    fw = finite_width_moments(n, L, sigma_w2=float(law.sigma_w2[0]), activation="relu")
    m2, s2 = _mean_se((x**2).mean(axis=1))
    checks.append(_check("E λ²", fw.b, m2, s2, SAFETY * s2, f"exact at N = {n}; N → ∞: {fmt(law.moment(2))}"))
    zero = (x <= ZERO_THRESHOLD * x.max(axis=1, keepdims=True)).mean(axis=1)
    f_pred, f_sd = relu_zero_fraction(n, L)
    f, _ = _mean_se(zero)
    f_se = f_sd / math.sqrt(c.trials)
    checks.append(_check("zero fraction", f_pred, f, f_se, SAFETY * f_se,
                         f"exact at N = {n}; N → ∞: {fmt(law.atoms[0][1])}"))
    checks.append(Check("KS distance", 0.0, numbers.ks, None, None, None, "finite-N law not derived"))
    top_l, top_se = _mean_se(x.max(axis=1))
    checks.append(Check("top λ", float(law.upper_edge), top_l, top_se, None, None, "N → ∞ edge; finite-N not derived"))
    chi = float(law.chi1)
    g0 = plain.gradient_growth()
    checks.append(_check("gradient growth", chi, g0.value, g0.stderr, SAFETY * g0.stderr, "χ₁, exact at any N"))
    lam = float(bn_gradient_growth(act, c.batch_size))
    g1 = with_bn.gradient_growth()
    checks.append(_check("gradient growth BN", lam, g1.value, g1.stderr, SAFETY * g1.stderr + BN_BIAS_C / n,
                         f"bias bound {fmt(BN_BIAS_C)}/N"))
    depths = np.arange(1, L + 1, dtype=np.float64)
    bn_top = np.asarray(bn_tops)
    slope = float(np.polyfit(depths, 2.0 * np.log(bn_top[:, 0]), 1)[0])
    checks.append(Check("top λ growth BN", None, math.exp(slope), None, None, None,
                        f"no theory; λ_BN = {fmt(lam)} for scale"))
    return MainJobResult(
        config=c, law=law, spectrum=res, bn_spectrum=bn_res, checks=checks, edges=edges, top=np.asarray(tops),
        bn_top=bn_top, grad=plain.layer_stats["grad_sq_norm"], bn_grad=with_bn.layer_stats["grad_sq_norm"],
        chi1=chi, bn_growth=lam, extra={"comparison": str(numbers), "bn_zero_fraction": float(
            (bn_res.squared_singular_values <= ZERO_THRESHOLD * bn_res.squared_singular_values.max(axis=1,
                                                                                               keepdims=True)).mean())},
    )


def _verdict(check: Check) -> str:
    return "reported" if check.passed is None else ("pass" if check.passed else "FAIL")


def lines(result: MainJobResult) -> list[str]:
    """The printed summary: the network, the table of checks, the tolerance rule and the verdicts."""
    c = result.config
    sw2 = float(result.law.sigma_w2[0])
    out = [
        f"rmt-init main job: the predicted Jacobian law against real torch networks at initialization (seed {c.seed})",
        f"network: {c.depth} × [Linear({c.width}, {c.width}, bias=False) → (BatchNorm1d) → ReLU], "
        f"{c.init}_ weights (σ_w² = {fmt(sw2)}), inputs N(0, 1)",
        f"theory: jacobian_spectrum({c.depth}, {c.activation!r}, init={c.init!r}) (N → ∞), χ₁ = {fmt(result.chi1)}; "
        f"bn_gradient_growth({c.activation!r}, {c.batch_size}) = {fmt(result.bn_growth)}",
        "",
    ]
    header = f"  {'':<20}{'predicted':>11}{'measured':>12}{'± SE':>9}{'tolerance':>11}  {'verdict':<9}note"
    sections = [
        (f"without BN: {c.trials} networks, λ = squared singular values of the {c.width} × {c.width} Jacobian; "
         f"gradients: {c.grad_trials} networks, batch {c.batch_size}", result.checks[:6]),
        (f"with BN (train mode, batch {c.batch_size}): gradients of {c.grad_trials} networks; top λ of the "
         f"{c.batch_size * c.bn_width}-square batch Jacobian, width {c.bn_width}, {c.bn_trials} networks per depth",
         result.checks[6:]),
    ]
    for title, checks in sections:
        out += [title, header]
        for ch in checks:
            out.append(
                f"  {ch.name:<20}{fmt(ch.predicted):>11}{fmt(ch.measured):>12}{fmt(ch.stderr, 2):>9}"
                f"{fmt(ch.tolerance, 2):>11}  {_verdict(ch):<9}{ch.note}"
            )
        out.append("")
    checked = [ch for ch in result.checks if ch.passed is not None]
    passed = sum(ch.passed for ch in checked)
    out.append(f"verdicts: {passed} of {len(checked)} checks pass (|measured − predicted| ≤ tolerance = "
               f"{fmt(SAFETY)} SE + the stated finite-width bias); {len(result.checks) - len(checked)} numbers "
               "reported without a finite-width theory")
    return out


def record(result: MainJobResult) -> dict[str, Any]:
    """The JSON document of ``rmt-init --json``."""
    from dataclasses import asdict

    return {
        "job": "main",
        "config": asdict(result.config),
        "law": result.law.summary(),
        "bn_gradient_growth": result.bn_growth,
        "checks": [asdict(ch) | {"verdict": _verdict(ch)} for ch in result.checks],
        "all_passed": all(ch.passed for ch in result.checks if ch.passed is not None),
        "top_singular_value_by_depth": {
            "depth": list(range(1, result.config.depth + 1)),
            "theory_n_inf": np.sqrt(result.edges),
            "no_bn_mean": result.top[:, 0], "no_bn_se": result.top[:, 1],
            "bn_mean": result.bn_top[:, 0], "bn_se": result.bn_top[:, 1],
        },
        "gradient_sq_norm_by_layer": {"no_bn": result.grad.mean(axis=0), "bn": result.bn_grad.mean(axis=0)},
    }


def draw(result: MainJobResult) -> Any:
    """The paper-ready figure (two columns wide, 7.2 × 6 in): returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    from .. import plot

    c = result.config
    L = c.depth
    fig, axes = plt.subplots(2, 2, figsize=(7.2, 6.4), layout="constrained")
    (a, b), (t, g) = axes
    # (a) without BN: theory density of ln λ over the histogram
    plot.compare(result.law, result.spectrum, ax=a, scale="log", label="theory, N → ∞", atom_tol=ZERO_THRESHOLD)
    a.set_title("")  # the law's description; the panel title says it
    a.set_title(f"(a) no BN: Jacobian spectrum, depth {L}, width {c.width}", fontsize=9, loc="left")
    # (b) with BN: measured only
    x = result.bn_spectrum.squared_singular_values
    flat = x[x > ZERO_THRESHOLD * x.max(axis=1, keepdims=True)]
    edges = np.exp(np.linspace(np.log(flat.min()), np.log(flat.max() * 1.0001), 61))
    heights = np.histogram(flat, bins=edges)[0] / x.size / np.diff(np.log(edges))
    b.bar(edges[:-1], heights, width=np.diff(edges), align="edge", color="0.6", linewidth=0,
          label=f"torch, BN train, B = {c.batch_size}")
    b.set_xscale("log")
    b.set_xlabel("squared singular value λ (log scale)", fontsize=9)
    b.set_ylabel("density of ln λ", fontsize=9)
    zero = result.extra["bn_zero_fraction"]
    b.text(0.03, 0.97, f"measured only: no spectral theory with BN yet\n{c.bn_trials} nets, width {c.bn_width}, "
           f"batch Jacobian {c.batch_size * c.bn_width}²;\nstructural zeros removed, zeros of ReLU\n"
           f"(fraction {zero:.3f}) not drawn", transform=b.transAxes, va="top", fontsize=7.5)
    b.set_ylim(0, heights.max() * 1.5)
    b.set_title(f"(b) BN: batch Jacobian spectrum, depth {L}", fontsize=9, loc="left")
    # (c) top singular value against depth
    d = np.arange(1, L + 1)
    t.plot(d, np.sqrt(result.edges), "-", color="C3", lw=1.6, label="theory (no BN), N → ∞ edge")
    t.errorbar(d, result.top[:, 0], yerr=result.top[:, 1], fmt="o", color="k", ms=4, capsize=2,
               label=f"torch, no BN (N = {c.width})")
    t.errorbar(d, result.bn_top[:, 0], yerr=result.bn_top[:, 1], fmt="s", color="C0", ms=4, capsize=2,
               label=f"torch, BN (N = {c.bn_width}, B = {c.batch_size}): no theory")
    t.set_yscale("log")
    t.set_xlabel("depth L", fontsize=9)
    t.set_ylabel("largest singular value σ_max", fontsize=9)
    t.legend(fontsize=7.5, frameon=False)
    t.set_title("(c) top singular value against depth", fontsize=9, loc="left")
    # (d) squared gradient norm per layer, normalised at layer L − 1, with the predicted growth
    layers = np.arange(L + 1)
    for grad, growth, colour, marker, label in (
        (result.grad, result.chi1, "k", "o", f"no BN: χ₁ = {fmt(result.chi1)}"),
        (result.bn_grad, result.bn_growth, "C0", "s", f"BN: λ = {fmt(result.bn_growth)}"),
    ):
        mean = grad.mean(axis=0)
        y = mean / mean[L - 1]
        g.plot(layers[1:L], y[1:L], marker, color=colour, ms=4, label=f"torch, {label.split(':')[0]}")
        g.plot(layers[[0, L]], y[[0, L]], marker, color=colour, ms=5, mfc="white")
        g.plot(layers[: L], growth ** (L - 1 - layers[: L]), "--", color=colour, lw=1.2,
               label=f"theory, {label}")
    g.plot([], [], "o", color="0.4", mfc="white", label="input and output layers: not fitted")
    g.set_yscale("log")
    g.set_xlabel("layer l (0 = input)", fontsize=9)
    g.set_ylabel(r"$E\|g_l\|^2\ /\ E\|g_{L-1}\|^2$", fontsize=9)
    top = max(float(np.max(grad.mean(axis=0) / grad.mean(axis=0)[L - 1])) for grad in (result.grad, result.bn_grad))
    g.set_ylim(None, top * 60)  # headroom on the log axis: the legend sits above the data
    g.legend(fontsize=7.5, frameon=False, loc="upper right")
    g.set_title(f"(d) gradient norm per layer, N = {c.width}", fontsize=9, loc="left")
    for ax in (b, t, g):
        ax.tick_params(labelsize=8)
    return fig
