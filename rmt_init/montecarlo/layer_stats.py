"""Per-layer activation and back-propagated gradient statistics of ``torch.nn`` networks at init.

:func:`network_layer_stats` is the cheap path: one forward and one backward pass per trial, no Jacobian, so
batch-norm gradient growth (Yang et al. 2019) can be measured at widths and batch sizes where the full batch
Jacobian of :func:`~rmt_init.montecarlo.network_jacobian_spectrum` would be far too large.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ._device import check_progress, limit_threads, progress_bar, threads_for
from .network_setup import network_setup
from .results import LayerStatsResult

__all__ = ["LAYER_STATS", "layer_statistics", "network_layer_stats"]

#: Names of the per-layer statistics (each ``(trials, depth + 1)``; layer 0 is the input).
LAYER_STATS: tuple[str, ...] = ("act_mean", "act_var", "act_sq_norm", "grad_mean", "grad_var", "grad_sq_norm")


def layer_statistics(model: nn.Sequential, x: torch.Tensor, generator: torch.Generator) -> np.ndarray:
    """Per-layer statistics of one batch (rows: :data:`LAYER_STATS`; columns: layers ``0..L``).

    Activations ``x_l`` are the block outputs (after φ; ``x_0`` the input); gradients are
    ``g_l = ∂(Σ_b u_bᵀ x_L^{(b)})/∂x_l`` for independent uniformly random unit output directions ``u_b`` (one
    per example, drawn from ``generator``), by one autograd backward pass. In train-mode BN the batch
    statistics couple the examples, so ``g_l^{(b)}`` collects the contributions of every ``u_{b'}`` — the
    gradient whose growth Yang et al. (2019, arXiv 1902.08129, Thm 3.9) predict. Reported:
    ``act_sq_norm = mean_b ‖x_l^{(b)}‖²/n_l``, ``grad_sq_norm = mean_b ‖g_l^{(b)}‖²`` (so its expectation is
    ``E‖J_{L←l}ᵀ u‖²`` without BN), and the mean and (population) variance over all entries.
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
    u = torch.randn(h.shape, generator=generator, dtype=h.dtype, device=h.device)
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


def network_layer_stats(
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
    progress: bool | str = False,
) -> LayerStatsResult:
    """Per-layer activation and gradient statistics of freshly initialised ``torch.nn`` networks.

    The networks, inputs and arguments are those of
    :func:`~rmt_init.montecarlo.network_jacobian_spectrum` (same seed ⇒ same networks, same inputs and
    the same statistics as its ``layer_stats``), but no Jacobian is formed: each trial costs one forward
    and one backward pass (:func:`layer_statistics`). ``batchnorm="train_diagonal"`` is the same network
    as ``"train"`` here (the statistics do not depend on which Jacobian one would take); train-mode BN
    needs ``batch_size × spatial ≥ 2``.

    Typical use — the per-layer growth factor of the squared gradient norm in a BN network, which Yang et
    al. (2019, arXiv 1902.08129) predict (``rmt_init.theory.bn_gradient_growth``):
    ``network_layer_stats(10, 256, "relu", "gaussian", sigma_w2=1.0, batchnorm="train", batch_size=8,
    trials=100).gradient_growth()`` → ``GrowthEstimate(value=1.788…, stderr=0.006…)`` (theory 1.7882).

    Returns a :class:`~rmt_init.montecarlo.results.LayerStatsResult` with ``layer_stats[name]`` of shape
    ``(trials, depth + 1)`` for each name in :data:`LAYER_STATS` (layer 0 is the input).
    """
    setup = network_setup(
        depth, width, activation, init, batchnorm=batchnorm, batch_size=batch_size, trials=trials, seed=seed,
        device=device, dtype=dtype, init_dtype=init_dtype, bias=bias, sigma_w2=sigma_w2, sigma_b2=sigma_b2, weights=weights,
        init_kwargs=init_kwargs, input_variance=input_variance, architecture=architecture, image_size=image_size,
        kernel_size=kernel_size, padding=padding, negative_slope=negative_slope, bn_eps=bn_eps,
        calibration_batches=calibration_batches, calibration_batch_size=calibration_batch_size,
        min_bn_batch={"train": 2, "train_diagonal": 2},
    )
    progress = check_progress(progress)
    setup.check_memory("network_layer_stats", None)
    rows = []
    bar = progress_bar(setup.trials, progress, "networks")
    largest = setup.batch_size * max(setup.widths) * setup.spatial
    with limit_threads(threads_for(setup.device, largest)):
        for t in range(setup.trials):
            model, x, gen = setup.build(t)
            rows.append(layer_statistics(model, x, gen))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    arr = np.stack(rows)  # (trials, n_stats, depth + 1)
    return LayerStatsResult(
        layer_stats={name: arr[:, i, :] for i, name in enumerate(LAYER_STATS)},
        config={**setup.config(), "kind": "network_layer_stats"},
    )
