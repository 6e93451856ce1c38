"""``network_jacobian_spectrum``: Jacobian spectra and layer statistics of real ``torch.nn`` networks at init."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ._device import check_progress, limit_threads, linalg_threads, progress_bar, threads_for
from .jacobians import chained_jacobian
from .layer_stats import LAYER_STATS, layer_statistics
from .network_setup import ARCHITECTURES, BATCHNORM_MODES, network_setup
from .results import SpectrumResult

__all__ = ["network_jacobian_spectrum", "structural_zero_count", "BATCHNORM_MODES", "ARCHITECTURES", "LAYER_STATS"]


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
    init_dtype: torch.dtype | str | None = None,
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
    Haar ``"orthogonal"``) to sit exactly on a mean-field critical point. Conv nets also take
    ``weights="delta_orthogonal"``: ``√sigma_w2 ×`` (default 1) a Haar orthogonal matrix at the centre tap,
    zeros elsewhere (:func:`~rmt_init.montecarlo.delta_orthogonal_`; Xiao et al. 2018, arXiv 1806.05393). Biases (``bias=True``):
    ``N(0, sigma_b2)``, or torch's default when ``sigma_b2`` is None. Inputs: i.i.d. ``N(0,
    input_variance)`` entries. The first pre-activations then have variance ``σ_w²·input_variance + σ_b²``,
    so to start at the fixed point ``q*`` of the mean-field length map pass ``(q* − σ_b²)/σ_w²``
    (``= E φ(√q* z)²``), not ``q*`` itself.

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
    number of Jacobian columns pushed at once. Each trial (network + inputs) has its own generator. A
    network whose single trial cannot fit in the device's memory at all (weights, activations and the
    Jacobian) raises ``ValueError`` up front, naming the sizes and the estimated bytes.

    Returns a :class:`SpectrumResult`: ``squared_singular_values`` of shape ``(trials, B·min(F_in, F_out)
    − structural zeros)`` (rows decreasing), ``log_singular_values=None``.

    Cost (float64, one CPU thread; ``benchmarks/suite``, group ``network_spectrum``): per trial, drawing the
    ``Σ n_l n_{l−1}`` weights, the chained Jacobian, one ``svdvals``, and (``layer_stats``) one forward and
    one backward pass of the batch. The weights come from ``torch.nn.init`` with the trial's generator,
    whose float64 normal sampler is scalar Box–Muller (≈ 30 ns a number here, ~6× its uniform sampler):
    at width 1024, depth 50 that is ≈ 1.5 s next to ≈ 1.7 s for chain + SVD, and it is what the run
    costs beyond chain + SVD; everything else (building the modules, the forward pass and per-layer
    ``φ'`` of the chain, the layer statistics' forward and backward pass, sorting) measured 7–12 % of
    chain + SVD there, ≈ 20 % at width 512, depth 20 (profiled, one thread, loaded 2-core machine).
    It is kept because the random stream defines the result (same seed ⇒ the same networks, bit for bit;
    a vectorised Box–Muller differs in the last bit for ~0.1 % of the numbers and was not faster here).
    ``init_dtype="float32"`` (with ``dtype`` float64) builds and initialises each network in float32 — the
    weights a float32 model gets from ``torch.nn.init`` with the same generator, bit for bit — and casts it
    to float64 (exact) for the Jacobian: the float32 normal sampler is vectorised, ≈ 3.3× faster than the
    float64 one here (``benchmarks/suite``, group ``network_spectrum``). The weights then carry float32's
    rounding (relative 6e-8 an entry; Haar ``orthogonal`` weights are orthogonal to ~1e-7, so an orthogonal
    linear chain's point mass spreads by ~1e-7 per layer), far below Monte Carlo error for Gaussian and
    uniform schemes.
    Threads: the run uses torch's current intra-op setting (``torch.set_num_threads``), as the user left it;
    small problems (largest dimension ≤ 64) and LAPACK decompositions (``_device.linalg_threads``) run on
    one thread. Measured on the shared 2-core development machine (float64, best of 3–5, other jobs
    running): 2 threads were slower than 1 at every size — GEMM 1.2× (n = 1024), 2.2× (512), 39× (256);
    chained ReLU Jacobian 3× (512, depth 10), 60× (256) — so the engine never raises the thread count;
    ``benchmarks/suite`` (groups ``threads_*``) measures it on your machine.
    """
    setup = network_setup(
        depth, width, activation, init, batchnorm=batchnorm, batch_size=batch_size, trials=trials, seed=seed,
        device=device, dtype=dtype, init_dtype=init_dtype, bias=bias, sigma_w2=sigma_w2, sigma_b2=sigma_b2, weights=weights,
        init_kwargs=init_kwargs, input_variance=input_variance, architecture=architecture, image_size=image_size,
        kernel_size=kernel_size, padding=padding, negative_slope=negative_slope, bn_eps=bn_eps,
        calibration_batches=calibration_batches, calibration_batch_size=calibration_batch_size,
        min_bn_batch={"train": 3, "train_diagonal": 2},
    )
    progress = check_progress(progress)
    if not isinstance(drop_structural_zeros, bool):
        raise ValueError(f"drop_structural_zeros must be True or False; got {drop_structural_zeros!r}")
    if not isinstance(layer_stats, bool):
        raise ValueError(f"layer_stats must be True or False; got {layer_stats!r}")
    bn, ws, batch_size, spatial, dev = setup.batchnorm, setup.widths, setup.batch_size, setup.spatial, setup.device
    n_zero = structural_zero_count(ws, batch_size, spatial, bn == "train")
    mode = "batch" if bn in ("train", "train_diagonal") else "per_example"
    setup.check_memory("network_jacobian_spectrum", mode)
    f_in, f_out = ws[0] * spatial, ws[-1] * spatial

    def one_trial(t: int) -> tuple[np.ndarray, np.ndarray | None]:
        model, x, gen = setup.build(t)
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
        stats = layer_statistics(model, x, gen) if layer_stats else None
        return sq, stats

    rows, stats_rows = [], []
    bar = progress_bar(setup.trials, progress, "networks")
    largest = max(batch_size * max(ws) * spatial if mode == "batch" else max(ws) * spatial, 1)
    with limit_threads(threads_for(dev, largest)):
        for t in range(setup.trials):
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
    config = setup.config()
    config["jacobian"] = {None: "per_example", "eval": "per_example", "train": "batch", "train_diagonal": "batch_diagonal"}[bn]
    config["structural_zeros_dropped"] = bool(bn == "train" and drop_structural_zeros)
    return SpectrumResult(
        squared_singular_values=np.stack(rows),
        log_singular_values=None,
        structural_zeros=np.full(setup.trials, n_zero, dtype=np.int64),
        config=config,
        layer_stats=stats,
    )
