"""``network_jacobian_moments``: moments of a network's Jacobian spectrum by Hutchinson traces, matrix-free.

For the networks of :func:`~rmt_init.montecarlo.network_jacobian_spectrum` (same arguments, same seed ⇒ the same
networks and inputs), the moments ``m_k = tr (J Jᵀ)^k / (B·F_out)`` of the Jacobian of the whole batch map
(``B·F_out × B·F_in``; block diagonal without train-mode BN) are estimated per network from ``P`` probe vectors
``v ∈ R^{B·F_in}`` with ``E v vᵀ = I`` (Hutchinson 1990, Commun. Stat. Simul. Comput. 19(2); Avron & Toledo 2011,
J. ACM 58(2)):

    tr (JᵀJ)^k = E ‖w_k‖²,   w_1 = J v,  w_2 = Jᵀ w_1,  w_3 = J w_2, …   (w_k = (JᵀJ)^{k/2} v or J (JᵀJ)^{(k−1)/2} v)

so order ``k`` costs ``k`` passes of the probes through the network's layer Jacobians, never the
``B·F_out × B·F_in`` matrix: forward passes (``J w``) are the chained layer maps of
:mod:`~rmt_init.montecarlo.jacobians` (``_push``) applied to a ``(P, B, …)`` tangent batch; backward passes
(``Jᵀ u``) their transposes in reverse order (:func:`_pull`): ``Linear`` ``u ← u W``; an elementwise ``φ'`` or
eval-mode BN scale is diagonal (its own transpose); train-mode BN ``γ/s (I − 11ᵀ/m − ŷŷᵀ/m)`` per channel is
symmetric and commutes with the channel's scalar ``γ/s``, so it is its own transpose; a reshape is undone.

Probes (``probe``): ``"gaussian"`` (i.i.d. N(0, 1) entries: per network ``Var = 2 tr (JᵀJ)^{2k} / (P (B F_out)²)``
= ``2 m_{2k} / (P B F_out)`` for square ``J``), ``"rademacher"`` (±1: variance ``2 (‖A‖_F² − Σ A_ii²)`` per probe,
never above the Gaussian one; Hutchinson 1990), or ``"orthonormal"`` (the ``P`` columns of a Haar-random
orthonormal ``B F_in × P`` frame ``Q`` scaled by ``√(B F_in)``: each column is uniform on the sphere, so
``E v vᵀ = I`` (unbiased), and at ``P = B·F_in`` the estimate ``(B F_in/P) Σ_p q_pᵀ A q_p = tr A`` is exact). Probes are drawn from the trial's generator after its network
and inputs, so they never change the networks.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from rmt_init._validate import check_choice, check_int

from ._device import check_progress, chunk_from_budget, limit_threads, progress_bar, run_chunked, threads_for
from .jacobians import _forward_cache, _push
from .network_setup import network_setup

__all__ = ["network_jacobian_moments", "JacobianMomentsResult", "PROBES"]

#: Probe distributions of :func:`network_jacobian_moments` (module docstring).
PROBES: tuple[str, ...] = ("gaussian", "rademacher", "orthonormal")
_DEFAULT_BUDGET = 1 << 30


@dataclass(frozen=True)
class JacobianMomentsResult:
    """Per-network Hutchinson estimates of ``m_k = tr (J Jᵀ)^k / (B·F_out)``, ``k = 1..orders``.

    ``per_network``: shape ``(trials, orders)``, column ``k − 1`` the estimate of ``m_k`` for each network
    (unbiased for that network's ``m_k``). ``probe_stderr``: the same shape, each estimate's probe standard
    error from the spread of its ``P`` single-probe estimates (``sd/√P``; for ``"orthonormal"`` probes an upper
    bound, their terms being negatively correlated, and 0 at ``P = B·F_in``, where the estimate is exact).
    ``probes``: ``P``; ``config``: the network configuration (as :class:`SpectrumResult`'s) plus the probe
    settings.
    """

    per_network: np.ndarray
    probe_stderr: np.ndarray
    probes: int
    config: dict = field(default_factory=dict)

    @property
    def trials(self) -> int:
        """Number of networks."""
        return int(self.per_network.shape[0])

    def moment(self, k: int) -> tuple[float, float]:
        """``(mean, standard error)`` of ``m_k`` over the networks (the SE includes the probe noise, each
        network's estimate being an independent unbiased draw; 0 with a single network)."""
        k = check_int("k", k, minimum=1)
        if k > self.per_network.shape[1]:
            raise ValueError(f"moment {k} was not computed (orders={self.per_network.shape[1]})")
        col = self.per_network[:, k - 1]
        se = float(col.std(ddof=1)) / math.sqrt(col.size) if col.size > 1 else 0.0
        return float(col.mean()), se

    def __repr__(self) -> str:
        parts = []
        for k in range(1, self.per_network.shape[1] + 1):
            mean, se = self.moment(k)
            parts.append(f"m{k} = {mean:.6g} ± {se:.2g}")
        cfg = self.config
        head = (f"JacobianMomentsResult(depth={cfg.get('depth')}, widths={_short_widths(cfg.get('widths'))}, "
                f"activation={cfg.get('activation')!r}, batchnorm={cfg.get('batchnorm')!r}, "
                f"batch_size={cfg.get('batch_size')}, trials={self.trials}, probes={self.probes} "
                f"{cfg.get('probe')!r})")
        return head + "\n  " + ", ".join(parts)


def _short_widths(ws: object) -> str:
    if isinstance(ws, list) and ws and len(set(ws)) == 1:
        return f"{ws[0]}×{len(ws)}"
    return repr(ws)


def _pull(caches: list[tuple], u: torch.Tensor, in_shape: tuple[int, ...]) -> torch.Tensor:
    """``Jᵀ u`` for cotangents ``u`` of shape ``(P, B, *out_features)``: the transposed layer maps of
    :func:`~rmt_init.montecarlo.jacobians._push`, in reverse order (module docstring)."""
    p, b = u.shape[:2]
    shapes = [in_shape]
    for c in caches:  # the feature shape entering each cached layer, for undoing reshapes
        if c[0] == "reshape":
            shapes.append(c[1])
        else:
            shapes.append(shapes[-1])
    for i in range(len(caches) - 1, -1, -1):
        c = caches[i]
        kind = c[0]
        if kind == "linear":
            u = torch.matmul(u, c[1])
        elif kind == "bn_train":
            yhat, g, dims = c[1], c[2], c[3]
            tdims = [d + 1 for d in dims]
            u = g * u
            mu = u.mean(dim=tdims, keepdim=True)
            cy = (u * yhat).mean(dim=tdims, keepdim=True)
            u = u - mu - yhat * cy
        elif kind == "reshape":
            u = u.reshape(p, b, *shapes[i])
        elif kind in ("scale", "diag"):
            u = u * c[1]
        else:  # "conv" never reaches here (refused up front)
            raise ValueError(f"no transpose for layer kind {kind!r}")  # pragma: no cover
    return u


def _draw_probes(
    kind: str, count: int, shape: tuple[int, ...], gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``count`` probe vectors of shape ``shape`` (module docstring), from ``gen``."""
    n = math.prod(shape)
    if kind == "gaussian":
        return torch.randn((count, *shape), generator=gen, dtype=dtype, device=device)
    if kind == "rademacher":
        bits = torch.randint(0, 2, (count, *shape), generator=gen, device=device)
        return 2.0 * bits.to(dtype) - 1.0
    g = torch.randn((n, count), generator=gen, dtype=dtype, device=device)
    q, r = torch.linalg.qr(g)
    q = q * torch.sign(torch.diagonal(r))  # Haar: fix the signs of QR's columns
    return (math.sqrt(n) * q.T).reshape(count, *shape)  # each column uniform on the sphere: E v vᵀ = I


def network_jacobian_moments(
    depth: int,
    width: int | Sequence[int],
    activation: str = "relu",
    init: str = "gaussian",
    *,
    orders: int = 3,
    probes: int = 8,
    probe: str = "gaussian",
    batchnorm: str | None = None,
    batch_size: int | None = None,
    trials: int = 10,
    seed: int | None = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype | str = torch.float64,
    init_dtype: torch.dtype | str | None = None,
    bias: bool = False,
    sigma_w2: float | None = None,
    sigma_b2: float | None = None,
    weights: str | None = None,
    init_kwargs: dict[str, object] | None = None,
    input_variance: float = 1.0,
    negative_slope: float = 0.01,
    bn_eps: float = 1e-5,
    calibration_batches: int = 10,
    calibration_batch_size: int | None = None,
    memory_budget: int | None = None,
    progress: bool | str = False,
) -> JacobianMomentsResult:
    """Moments ``m_k = tr (J Jᵀ)^k / (B·F_out)``, ``k = 1..orders``, of freshly initialised MLPs' Jacobians,
    estimated matrix-free by Hutchinson traces (module docstring), one estimate per network.

    Networks, inputs and seeding exactly as :func:`~rmt_init.montecarlo.network_jacobian_spectrum` with
    ``architecture="mlp"`` (same arguments and meanings; the same ``seed`` gives the same networks and input
    batches): ``depth`` blocks ``Linear → [BatchNorm1d] → φ``. ``J`` is the Jacobian of the whole batch map
    ``R^{B·F_in} → R^{B·F_out}``: with ``batchnorm="train"`` the coupled batch Jacobian, whose squared singular
    values ``network_jacobian_spectrum(..., batchnorm="train", drop_structural_zeros=False)`` returns (its mean of
    ``λ^k`` over the ``B·F_out`` values is ``m_k`` when ``F_out ≤ F_in``; structural zeros count as zeros); with
    ``batchnorm=None`` or ``"eval"`` it is block diagonal and ``m_k`` is the average over the ``B`` examples of the
    per-example ``tr (J_b J_bᵀ)^k / F_out``. ``"train_diagonal"`` (not a single linear map of the batch) and conv
    nets are refused.

    ``orders``: highest moment (order ``k`` costs ``k`` passes of the probes; each pass ≈ ``P`` forward passes of
    the batch through the network's linear layers, ``P·B·Σ n_l n_{l−1}`` multiply-adds). ``probes``: ``P`` per
    network, pushed together as one ``(P, B, F_in)`` tangent batch (chunked to ``memory_budget`` bytes, default
    1 GiB). ``probe``: ``"gaussian"``, ``"rademacher"`` or ``"orthonormal"`` (module docstring; the latter is
    exact at ``probes = B·F_in``).

    Returns a :class:`JacobianMomentsResult` (per-network estimates, their probe SEs, ``moment(k)`` = mean and
    SE over networks). Threads as :func:`network_jacobian_spectrum` (torch's setting; one thread for width ≤ 64).
    """
    setup = network_setup(
        depth, width, activation, init, batchnorm=batchnorm, batch_size=batch_size, trials=trials, seed=seed,
        device=device, dtype=dtype, init_dtype=init_dtype, bias=bias, sigma_w2=sigma_w2, sigma_b2=sigma_b2,
        weights=weights, init_kwargs=init_kwargs, input_variance=input_variance, architecture="mlp",
        negative_slope=negative_slope, bn_eps=bn_eps, calibration_batches=calibration_batches,
        calibration_batch_size=calibration_batch_size, min_bn_batch={"train": 3},
    )
    if setup.batchnorm == "train_diagonal":
        raise ValueError(
            "batchnorm='train_diagonal' (the B diagonal blocks of the batch Jacobian) is not one linear map of the "
            "batch that probes can be pushed through; use network_jacobian_spectrum, or batchnorm='train' for the "
            "whole batch map"
        )
    orders = check_int("orders", orders, minimum=1)
    probe = check_choice("probe", probe, PROBES)
    progress = check_progress(progress)
    bn, ws, b, dev = setup.batchnorm, setup.widths, setup.batch_size, setup.device
    n_in = b * ws[0]
    probes = check_int("probes", probes, minimum=1)
    if probe == "orthonormal" and probes > n_in:
        raise ValueError(f"probe='orthonormal' needs probes <= B·F_in = {n_in}; got probes={probes}")
    setup.check_memory("network_jacobian_moments", None)
    budget = _DEFAULT_BUDGET if memory_budget is None else check_int("memory_budget", memory_budget, minimum=1)
    per_probe = 4.0 * b * max(ws) * torch.finfo(setup.dtype).bits / 8
    chunk = chunk_from_budget(per_probe, budget, None, probes)
    n_out = b * ws[-1]

    def one_trial(t: int) -> tuple[np.ndarray, np.ndarray]:
        model, x, gen = setup.build(t)
        with torch.no_grad():
            _, caches = _forward_cache(model, x)
            v_all = _draw_probes(probe, probes, (b, ws[0]), gen, setup.dtype, dev)

            def run(idx: Sequence[int]) -> torch.Tensor:
                w = v_all[idx[0] : idx[-1] + 1]
                sq = []
                for k in range(1, orders + 1):
                    w = _push(caches, w) if k % 2 == 1 else _pull(caches, w, (ws[0],))
                    sq.append(torch.sum(w * w, dim=tuple(range(1, w.dim()))))
                return torch.stack(sq, dim=1)  # (chunk, orders): ‖w_k‖² per probe

            single = torch.cat(run_chunked(run, list(range(probes)), chunk), dim=0).to(torch.float64).cpu().numpy()
        single /= n_out
        est = single.mean(axis=0)
        if probe == "orthonormal" and probes == n_in:
            se = np.zeros(orders)
        elif probes > 1:
            se = single.std(axis=0, ddof=1) / math.sqrt(probes)
        else:
            se = np.full(orders, np.inf)
        return est, se

    rows, ses = [], []
    bar = progress_bar(setup.trials, progress, "networks")
    with limit_threads(threads_for(dev, max(ws))):
        for t in range(setup.trials):
            est, se = one_trial(t)
            rows.append(est)
            ses.append(se)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    config = setup.config()
    config.update({
        "jacobian": "batch" if bn == "train" else "per_example",
        "estimator": "hutchinson",
        "probe": probe,
        "probes": probes,
        "orders": orders,
        "normalisation": "tr (J J^T)^k / (B F_out)",
    })
    return JacobianMomentsResult(np.stack(rows), np.stack(ses), probes, config)
