"""``network_jacobian_spectrum``: Jacobian spectra and layer statistics of real ``torch.nn`` networks at init."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from rmt_init._validate import check_choice, check_int, check_real, check_widths
from rmt_init._vocabulary import ACTIVATION_ALIASES, ACTIVATIONS

from ._device import (
    check_progress,
    limit_threads,
    linalg_threads,
    progress_bar,
    resolve_device,
    resolve_dtype,
    resolve_seed,
    threads_for,
    trial_generator,
)
from .ensembles import weight_init
from .jacobians import chained_jacobian
from .networks import build_conv, build_mlp, kaiming_defaults
from .results import SpectrumResult

__all__ = ["network_jacobian_spectrum", "structural_zero_count", "BATCHNORM_MODES", "ARCHITECTURES", "LAYER_STATS"]

BATCHNORM_MODES: tuple[str, ...] = ("train", "train_diagonal", "eval")
ARCHITECTURES: tuple[str, ...] = ("mlp", "conv")
_ARCH_ALIASES = {"fc": "mlp", "dense": "mlp", "fully_connected": "mlp", "cnn": "conv"}
#: Names of the per-layer statistics (each ``(trials, depth + 1)``; layer 0 is the input).
LAYER_STATS: tuple[str, ...] = ("act_mean", "act_var", "act_sq_norm", "grad_mean", "grad_var", "grad_sq_norm")


def structural_zero_count(
    widths: Sequence[int], batch_size: int, spatial: int = 1, batchnorm: bool = True
) -> int:
    """Number of structural zero singular values that train-mode BN forces on the batch Jacobian.

    Each BN layer normalises, per channel ``c``, ``m = batch_size × spatial`` values; it is invariant to
    shifting and to rescaling them, so its batch Jacobian has rank ≤ ``(m − 2) n_l`` (with PyTorch's
    ``eps > 0`` the ``n_l`` shift directions are exactly null and the ``n_l`` rescaling directions have
    singular values ≈ ``eps/(σ² + eps)`` relative to the bulk). A chain of generic factors has the rank of
    its narrowest factor, so the count is ``r₀ − r_BN`` with ``r₀ = min(B·F_0, B·F_L, min_l m·n_l)`` (the
    rank without BN) and ``r_BN = min(r₀, min_l (m − 2) n_l)`` (``F = n × spatial``). For equal widths ``N``
    this is ``2N`` whatever the number of BN layers (the null spaces do not add up). Activations with
    ``φ' = 0`` on a set of positive measure (relu, hardtanh) add further, non-structural zeros, and the
    ``2N`` are then among them. (Derivation: Yang et al. 2019, arXiv 1902.08129, Sec. 3, BN backward map;
    count verified numerically in the tests.)
    """
    ws = tuple(widths)
    m = batch_size * spatial
    if not batchnorm:
        return 0
    r0 = min(batch_size * ws[0] * spatial, batch_size * ws[-1] * spatial, min(m * n for n in ws[1:]))
    rbn = min(r0, min((m - 2) * n for n in ws[1:]))
    return int(r0 - rbn)


def _check_batchnorm(batchnorm: object) -> str | None:
    if batchnorm is None or batchnorm is False:
        return None
    if isinstance(batchnorm, str) and batchnorm.strip().lower() in ("none", "off", ""):
        return None
    try:
        return check_choice("batchnorm", batchnorm, BATCHNORM_MODES)
    except ValueError:
        raise ValueError(
            f"unknown batchnorm {batchnorm!r}; valid choices are None, 'train', 'train_diagonal', 'eval'"
        ) from None


def _calibrate(model: nn.Sequential, in_shape, n_batches: int, batch: int, std: float, gen, dtype, dev) -> None:
    """Recompute BN running statistics as the plain average over ``n_batches`` fresh train-mode batches."""
    bns = [m for m in model if isinstance(m, _BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average
    model.train()
    with torch.no_grad():
        for _ in range(n_batches):
            model(std * torch.randn((batch, *in_shape), generator=gen, dtype=dtype, device=dev))
    model.eval()


def _layer_stats(model: nn.Sequential, x: torch.Tensor, gen: torch.Generator) -> np.ndarray:
    """Per-layer activation/gradient statistics (rows: :data:`LAYER_STATS`; columns: layers 0..L).

    Activations ``x_l`` are the block outputs (after φ); gradients ``g_l = ∂(Σ_b u_bᵀ x_L^{(b)})/∂x_l`` for
    random unit output directions ``u_b`` (one per example), computed by one autograd backward pass.
    ``act_sq_norm = mean_b ‖x_l^{(b)}‖²/n_l``, ``grad_sq_norm = mean_b ‖g_l^{(b)}‖²``; mean/var over all entries.
    """
    acts: list[torch.Tensor] = []
    x0 = x.detach().clone().requires_grad_(True)
    h = x0
    acts.append(h)
    mods = list(model)
    for i, m in enumerate(mods):
        h = m(h)
        last_of_block = i + 1 == len(mods) or isinstance(mods[i + 1], (nn.Linear, nn.Conv2d))
        if last_of_block:
            acts.append(h)
    u = torch.randn(h.shape, generator=gen, dtype=h.dtype, device=h.device)
    u = u / u.flatten(1).norm(dim=1).reshape((-1,) + (1,) * (u.dim() - 1))
    grads = torch.autograd.grad((u * h).sum(), acts, allow_unused=True)
    rows = []
    b = x.shape[0]
    for a, g in zip(acts, grads):
        a = a.detach()
        g = torch.zeros_like(a) if g is None else g
        n = a[0].numel()
        rows.append(
            [
                a.mean().item(),
                a.var(unbiased=False).item(),
                (a.reshape(b, -1).pow(2).sum(1) / n).mean().item(),
                g.mean().item(),
                g.var(unbiased=False).item(),
                g.reshape(b, -1).pow(2).sum(1).mean().item(),
            ]
        )
    return np.asarray(rows).T


def network_jacobian_spectrum(
    depth: int,
    width: int | Sequence[int],
    activation: str = "relu",
    init: str = "gaussian",
    *,
    batchnorm: str | None = None,
    batch_size: int | None = None,
    trials: int = 10,
    seed: int | None = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype | str = torch.float64,
    bias: bool = False,
    sigma_w2: float | None = None,
    sigma_b2: float | None = None,
    weights: str | None = None,
    init_kwargs: dict[str, object] | None = None,
    input_variance: float = 1.0,
    architecture: str = "mlp",
    image_size: int | tuple[int, int] = 8,
    kernel_size: int = 3,
    padding: str = "circular",
    negative_slope: float = 0.01,
    bn_eps: float = 1e-5,
    calibration_batches: int = 10,
    calibration_batch_size: int | None = None,
    drop_structural_zeros: bool = True,
    layer_stats: bool = True,
    max_chunk: int | None = None,
    memory_budget: int | None = None,
    progress: bool | str = False,
) -> SpectrumResult:
    """Squared singular values of input-output Jacobians of freshly initialised ``torch.nn`` networks.

    Network (:mod:`rmt_init.montecarlo.networks`): ``depth`` blocks ``Linear → [BatchNorm1d] → φ``
    (``architecture="mlp"``; ``width`` an int or the ``depth + 1`` widths ``n_0..n_L``) or
    ``Conv2d → [BatchNorm2d] → φ`` (``"conv"``; widths are channels, images ``image_size``², odd
    ``kernel_size``, ``padding`` ``"circular"``/``"zeros"``), so ``J = D_L B_L W_L ⋯ D_1 B_1 W_1``
    (PSG 2017, arXiv 1711.04735). Weights by the ``torch.nn.init`` scheme ``init`` (kaiming gain matched
    to the activation, see :mod:`~rmt_init.montecarlo.networks`), or with an explicit ``sigma_w2``
    (entries of variance ``σ_w²/fan_in`` in ``weights`` = ``"gaussian"``/``"uniform"``, or ``√σ_w² ×``
    Haar ``"orthogonal"``) to sit exactly on a mean-field critical point. Biases (``bias=True``):
    ``N(0, sigma_b2)``, or torch's default when ``sigma_b2`` is None. Inputs: i.i.d. ``N(0,
    input_variance)`` entries (pass the fixed point ``q*`` of the mean-field length map to start at it).

    ``batchnorm``:

    * ``None`` — no BN; per-example Jacobians (``F_out × F_in`` each, ``batch_size`` examples, default 1).
    * ``"train"`` — BN with batch statistics; the Jacobian of the whole batch map (``B F_out × B F_in``,
      default ``B = 16``). Its ``structural_zero_count`` structural zeros (``2N`` for equal widths,
      PyTorch ``eps`` makes half of them ≈ eps-small rather than 0) are reported in
      ``structural_zeros`` and removed (the smallest ones) unless ``drop_structural_zeros=False``.
    * ``"train_diagonal"`` — the ``B`` diagonal blocks of that batch Jacobian: each example's output with
      respect to its own input, the rest of the batch fixed (batch statistics still depend on it).
    * ``"eval"`` — BN with running statistics, *recalibrated* on ``calibration_batches`` fresh batches of
      ``calibration_batch_size`` (default ``max(64, B)``) inputs (plain average, torch's unbiased
      running variance). At initialisation the stored statistics are mean 0, variance 1, which would make
      eval-mode BN the constant factor ``1/√(1 + eps)``; recalibration makes the comparison meaningful.

    Jacobians are chained layer Jacobians (:func:`~rmt_init.montecarlo.jacobians.chained_jacobian`), exact
    to rounding. ``layer_stats`` adds per-layer activation and back-propagated gradient statistics
    (:data:`LAYER_STATS`; Bjorck et al. 2018, arXiv 1806.02375, Fig. 4–5). Engine arguments as in
    :func:`~rmt_init.montecarlo.products.product_spectrum`; here ``max_chunk``/``memory_budget`` bound the
    number of Jacobian columns pushed at once. Each trial (network + inputs) has its own generator.

    Returns a :class:`SpectrumResult`: ``squared_singular_values`` of shape ``(trials, B·min(F_in, F_out)
    − structural zeros)`` (rows decreasing), ``log_singular_values=None``.
    """
    depth = check_int("depth", depth, minimum=1)
    arch = check_choice("architecture", architecture, ARCHITECTURES, _ARCH_ALIASES)
    if isinstance(width, (list, tuple)):
        ws = check_widths("width", width, length=depth + 1)
    else:
        ws = (check_int("width", width, minimum=1),) * (depth + 1)
    act = check_choice("activation", activation, ACTIVATIONS, ACTIVATION_ALIASES)
    negative_slope = check_real("negative_slope", negative_slope)
    bn = _check_batchnorm(batchnorm)
    trials = check_int("trials", trials, minimum=1)
    seed = resolve_seed(seed)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    input_variance = check_real("input_variance", input_variance, low=0.0, low_inclusive=False)
    bn_eps = check_real("bn_eps", bn_eps, low=0.0)
    spec = weight_init(
        init,
        sigma_w2=sigma_w2,
        weights=weights,
        init_kwargs=init_kwargs,
        default_kwargs=kaiming_defaults(act, negative_slope),
    )
    progress = check_progress(progress)
    if not isinstance(drop_structural_zeros, bool):
        raise ValueError(f"drop_structural_zeros must be True or False; got {drop_structural_zeros!r}")
    if arch == "conv":
        if isinstance(image_size, (list, tuple)):
            hw = check_widths("image_size", image_size, length=2)
        else:
            s = check_int("image_size", image_size, minimum=1)
            hw = (s, s)
        kernel_size = check_int("kernel_size", kernel_size, minimum=1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd; got {kernel_size!r}")
        padding = check_choice("padding", padding, ("circular", "zeros"), {"zero": "zeros", "periodic": "circular"})
        spatial = hw[0] * hw[1]
        in_shape: tuple[int, ...] = (ws[0], *hw)
    else:
        hw = None
        spatial = 1
        in_shape = (ws[0],)
    if batch_size is None:
        batch_size = 16 if bn in ("train", "train_diagonal") else 1
    batch_size = check_int("batch_size", batch_size, minimum=1)
    m = batch_size * spatial
    if bn == "train" and m < 3:
        raise ValueError(
            f"batch_size={batch_size} is too small for batchnorm='train': BN removes 2 directions per "
            f"channel, so batch_size × spatial positions must be >= 3 (got {m})"
        )
    if bn == "train_diagonal" and m < 2:
        raise ValueError(
            f"batch_size={batch_size} is too small for batchnorm='train_diagonal': BN needs >= 2 values per "
            f"channel (got {m})"
        )
    if bn == "eval":
        calibration_batches = check_int("calibration_batches", calibration_batches, minimum=1)
        cal_b = max(64, batch_size) if calibration_batch_size is None else calibration_batch_size
        cal_b = check_int("calibration_batch_size", cal_b, minimum=2 if spatial == 1 else 1)
    else:
        cal_b = None
    n_zero = structural_zero_count(ws, batch_size, spatial, bn == "train")
    std_in = math.sqrt(input_variance)
    mode = "batch" if bn in ("train", "train_diagonal") else "per_example"
    f_in, f_out = ws[0] * spatial, ws[-1] * spatial

    def one_trial(t: int) -> tuple[np.ndarray, np.ndarray | None]:
        gen = trial_generator(seed, t, dev)
        common = dict(
            batchnorm=bn is not None,
            bias=bias,
            sigma_b2=sigma_b2,
            negative_slope=negative_slope,
            bn_eps=bn_eps,
            generator=gen,
            dtype=dt,
            device=dev,
        )
        if arch == "mlp":
            model = build_mlp(ws, act, spec, **common)
        else:
            model = build_conv(ws, act, spec, kernel_size=kernel_size, padding_mode=padding, **common)
        if bn == "eval":
            _calibrate(model, in_shape, calibration_batches, cal_b, std_in, gen, dt, dev)
        else:
            model.train()
        x = std_in * torch.randn((batch_size, *in_shape), generator=gen, dtype=dt, device=dev)
        jac = chained_jacobian(model, x, mode, max_chunk=max_chunk, memory_budget=memory_budget)
        if bn == "train_diagonal":
            j4 = jac.reshape(batch_size, f_out, batch_size, f_in)
            idx = torch.arange(batch_size, device=dev)
            jac = j4[idx, :, idx, :]
        with torch.no_grad(), linalg_threads(dev):
            sv = torch.linalg.svdvals(jac).to(torch.float64).cpu().numpy()
        sq = np.sort((sv**2).ravel())[::-1]
        if bn == "train" and drop_structural_zeros and n_zero:
            sq = sq[: sq.size - n_zero]
        stats = _layer_stats(model, x, gen) if layer_stats else None
        return sq, stats

    rows, stats_rows = [], []
    bar = progress_bar(trials, progress, "networks")
    largest = max(batch_size * max(ws) * spatial if mode == "batch" else max(ws) * spatial, 1)
    with limit_threads(threads_for(dev, largest)):
        for t in range(trials):
            sq, st = one_trial(t)
            rows.append(sq)
            stats_rows.append(st)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    stats = None
    if layer_stats:
        arr = np.stack(stats_rows)  # (trials, n_stats, depth + 1)
        stats = {name: arr[:, i, :] for i, name in enumerate(LAYER_STATS)}
    config: dict[str, object] = {
        "kind": "network",
        "architecture": arch,
        "depth": depth,
        "widths": list(ws),
        "activation": act,
        **spec.describe(),
        "sigma_w2_effective": [
            spec.effective_sigma_w2((ws[l + 1], ws[l]) if arch == "mlp" else (ws[l + 1], ws[l], kernel_size, kernel_size))
            for l in range(depth)
        ],
        "batchnorm": bn,
        "jacobian": {None: "per_example", "eval": "per_example", "train": "batch", "train_diagonal": "batch_diagonal"}[bn],
        "batch_size": batch_size,
        "bias": bias,
        "sigma_b2": sigma_b2,
        "input_variance": input_variance,
        "negative_slope": negative_slope,
        "bn_eps": bn_eps,
        "structural_zeros_dropped": bool(bn == "train" and drop_structural_zeros),
        "trials": trials,
        "seed": seed,
        "device": str(dev),
        "dtype": str(dt).replace("torch.", ""),
    }
    if arch == "conv":
        config.update({"image_size": list(hw), "kernel_size": kernel_size, "padding": padding})
    if bn == "eval":
        config.update({"calibration_batches": calibration_batches, "calibration_batch_size": cal_b})
    return SpectrumResult(
        squared_singular_values=np.stack(rows),
        log_singular_values=None,
        structural_zeros=np.full(trials, n_zero, dtype=np.int64),
        config=config,
        layer_stats=stats,
    )
