"""Validated configuration of a sampled ``torch.nn`` network, shared by the network entry points.

:func:`network_setup` checks every argument of :func:`~rmt_init.montecarlo.network_jacobian_spectrum` /
:func:`~rmt_init.montecarlo.network_layer_stats` once; the resulting :class:`NetworkSetup` builds trial
``t``'s network and input batch from that trial's own generator, so both entry points see the same networks
and inputs for the same seed (their per-layer statistics agree exactly).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from rmt_init._validate import check_choice, check_int, check_real, check_widths
from rmt_init._vocabulary import ACTIVATION_ALIASES, ACTIVATIONS, INIT_ALIASES, INITS

from ._device import check_memory, resolve_device, resolve_dtype, resolve_seed, trial_generator
from .ensembles import WeightInit, weight_init
from .networks import build_conv, build_mlp, kaiming_defaults

__all__ = ["NetworkSetup", "network_setup", "BATCHNORM_MODES", "ARCHITECTURES"]

BATCHNORM_MODES: tuple[str, ...] = ("train", "train_diagonal", "eval")
ARCHITECTURES: tuple[str, ...] = ("mlp", "conv")
_ARCH_ALIASES = {"fc": "mlp", "dense": "mlp", "fully_connected": "mlp", "cnn": "conv"}


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


def _delta_orthogonal_spec(arch: str, init: str, sigma_w2: object, init_kwargs: object) -> WeightInit:
    """``weights="delta_orthogonal"``: conv nets only, ``gain = √sigma_w2`` (default 1), no init keywords."""
    if arch != "conv":
        raise ValueError(
            "weights='delta_orthogonal' is a convolution kernel (Xiao et al. 2018); it needs "
            f"architecture='conv', got architecture={arch!r} (use weights='orthogonal' for an MLP)"
        )
    if init_kwargs or check_choice("init", init, INITS, INIT_ALIASES) != "gaussian":
        raise ValueError(
            f"weights='delta_orthogonal' takes its scale from sigma_w2 (gain² = sigma_w2) alone; got "
            f"init={init!r}, init_kwargs={init_kwargs!r}"
        )
    s2 = 1.0 if sigma_w2 is None else check_real("sigma_w2", sigma_w2, low=0.0, low_inclusive=False)
    return WeightInit("explicit", "delta_orthogonal", {"scheme": "delta_orthogonal"}, s2)


@dataclass(frozen=True)
class NetworkSetup:
    """A checked network configuration (see :func:`network_setup` for the meaning of each field)."""

    depth: int
    widths: tuple[int, ...]
    activation: str
    spec: WeightInit
    architecture: str
    batchnorm: str | None
    batch_size: int
    trials: int
    seed: int
    device: torch.device
    dtype: torch.dtype
    init_dtype: torch.dtype
    bias: bool
    sigma_b2: float | None
    input_variance: float
    negative_slope: float
    bn_eps: float
    image_hw: tuple[int, int] | None
    kernel_size: int
    padding: str
    calibration_batches: int
    calibration_batch_size: int | None

    @property
    def spatial(self) -> int:
        """Positions per channel of one example (1 for an MLP, ``H·W`` for a conv net)."""
        return 1 if self.image_hw is None else self.image_hw[0] * self.image_hw[1]

    @property
    def in_shape(self) -> tuple[int, ...]:
        """Shape of one input example."""
        return (self.widths[0],) if self.image_hw is None else (self.widths[0], *self.image_hw)

    def check_memory(self, caller: str, jacobian: str | None) -> None:
        """``ValueError`` up front if one trial cannot fit in the device's memory (:func:`._device.check_memory`).

        Lower bound of what one trial holds at once: every layer's weights (``Σ n_l n_{l−1} k²``), the
        per-layer activations of the batch (``B · spatial · Σ n_l``), and, when ``jacobian`` is
        ``"per_example"``/``"batch"``, the Jacobian (``B F_out F_in`` / ``B² F_out F_in`` numbers).
        """
        k2 = 1 if self.image_hw is None else self.kernel_size**2
        ws, b, sp = self.widths, self.batch_size, self.spatial
        numbers = sum(ws[l] * ws[l + 1] * k2 for l in range(self.depth)) + b * sp * sum(ws)
        if jacobian == "per_example":
            numbers += b * ws[-1] * sp * ws[0] * sp
        elif jacobian == "batch":
            numbers += b * b * ws[-1] * sp * ws[0] * sp
        itemsize = torch.finfo(self.dtype).bits // 8
        sizes = f"width={ws[0]}" if len(set(ws)) == 1 else f"width={list(ws) if len(ws) <= 6 else '[…]'}"
        what = f"{caller}(depth={self.depth}, {sizes}, batch_size={b}"
        what += f", image_size={self.image_hw})" if self.image_hw is not None else ")"
        check_memory(itemsize * numbers, self.device, what, "reduce the width, depth or batch size")

    def build(self, trial: int) -> tuple[nn.Sequential, torch.Tensor, torch.Generator]:
        """Trial ``trial``'s network (train mode, or eval mode after BN recalibration), its input batch
        ``x`` (i.i.d. ``N(0, input_variance)``, shape ``(batch_size, *in_shape)``) and its generator
        (drawn from in this order: weights and biases, calibration batches, ``x``)."""
        gen = trial_generator(self.seed, trial, self.device)
        common = dict(
            batchnorm=self.batchnorm is not None,
            bias=self.bias,
            sigma_b2=self.sigma_b2,
            negative_slope=self.negative_slope,
            bn_eps=self.bn_eps,
            generator=gen,
            dtype=self.init_dtype,
            device=self.device,
        )
        if self.architecture == "mlp":
            model = build_mlp(self.widths, self.activation, self.spec, **common)
        else:
            model = build_conv(
                self.widths, self.activation, self.spec, kernel_size=self.kernel_size, padding_mode=self.padding,
                **common,
            )
        if self.init_dtype != self.dtype:
            model = model.to(self.dtype)  # float32 → float64 is exact: the float32 model's values, computed in float64
        std = math.sqrt(self.input_variance)
        if self.batchnorm == "eval":
            _calibrate(
                model, self.in_shape, self.calibration_batches, self.calibration_batch_size, std, gen,
                self.dtype, self.device,
            )
        else:
            model.train()
        x = std * torch.randn((self.batch_size, *self.in_shape), generator=gen, dtype=self.dtype, device=self.device)
        return model, x, gen

    def config(self) -> dict[str, object]:
        """The run's configuration as plain values (stored in results and their ``to_xarray`` attrs)."""
        k = self.kernel_size
        out: dict[str, object] = {
            "kind": "network",
            "architecture": self.architecture,
            "depth": self.depth,
            "widths": list(self.widths),
            "activation": self.activation,
            **self.spec.describe(),
            "sigma_w2_effective": [
                self.spec.effective_sigma_w2(
                    (self.widths[l + 1], self.widths[l]) if self.image_hw is None
                    else (self.widths[l + 1], self.widths[l], k, k)
                )
                for l in range(self.depth)
            ],
            "batchnorm": self.batchnorm,
            "batch_size": self.batch_size,
            "bias": self.bias,
            "sigma_b2": self.sigma_b2,
            "input_variance": self.input_variance,
            "negative_slope": self.negative_slope,
            "bn_eps": self.bn_eps,
            "trials": self.trials,
            "seed": self.seed,
            "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""),
            "init_dtype": str(self.init_dtype).replace("torch.", ""),
        }
        if self.image_hw is not None:
            out.update({"image_size": list(self.image_hw), "kernel_size": k, "padding": self.padding})
        if self.batchnorm == "eval":
            out.update(
                {"calibration_batches": self.calibration_batches, "calibration_batch_size": self.calibration_batch_size}
            )
        return out


def network_setup(
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
    min_bn_batch: dict[str, int] | None = None,
) -> NetworkSetup:
    """Check the network arguments (documented in :func:`~rmt_init.montecarlo.network_jacobian_spectrum`).

    ``min_bn_batch`` maps a ``batchnorm`` mode to the smallest number ``batch_size × spatial`` of values
    per BN channel that the caller can use (e.g. ``{"train": 3}`` for the batch Jacobian, which loses two
    directions per channel); a smaller batch raises ``ValueError``. Default ``batch_size``: 16 with
    train-mode BN, else 1. ``init_dtype`` (default ``dtype``): the dtype the network is built and initialised
    in before it is cast to ``dtype``.
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
    init_dt = dt if init_dtype is None else resolve_dtype(init_dtype, "init_dtype")
    if init_dt == torch.float64 and dt == torch.float32:
        raise ValueError(
            "init_dtype='float64' with dtype='float32' would round the drawn weights; valid choices: init_dtype "
            "None, or 'float32' (draw as a float32 model does, compute in dtype)"
        )
    input_variance = check_real("input_variance", input_variance, low=0.0, low_inclusive=False)
    bn_eps = check_real("bn_eps", bn_eps, low=0.0)
    if isinstance(weights, str) and weights.strip().lower().replace("-", "_") == "delta_orthogonal":
        spec = _delta_orthogonal_spec(arch, init, sigma_w2, init_kwargs)
    else:
        spec = weight_init(
            init,
            sigma_w2=sigma_w2,
            weights=weights,
            init_kwargs=init_kwargs,
            default_kwargs=kaiming_defaults(act, negative_slope),
        )
    hw: tuple[int, int] | None = None
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
    spatial = 1 if hw is None else hw[0] * hw[1]
    if batch_size is None:
        batch_size = 16 if bn in ("train", "train_diagonal") else 1
    batch_size = check_int("batch_size", batch_size, minimum=1)
    needed = (min_bn_batch or {}).get(bn or "", 1)
    if batch_size * spatial < needed:
        raise ValueError(
            f"batch_size={batch_size} is too small for batchnorm={bn!r}: it needs >= {needed} values per "
            f"channel (batch_size × spatial positions; got {batch_size * spatial})"
        )
    cal_b = None
    if bn == "eval":
        calibration_batches = check_int("calibration_batches", calibration_batches, minimum=1)
        cal_b = max(64, batch_size) if calibration_batch_size is None else calibration_batch_size
        cal_b = check_int("calibration_batch_size", cal_b, minimum=2 if spatial == 1 else 1)
    return NetworkSetup(
        depth=depth,
        widths=ws,
        activation=act,
        spec=spec,
        architecture=arch,
        batchnorm=bn,
        batch_size=batch_size,
        trials=trials,
        seed=seed,
        device=dev,
        dtype=dt,
        init_dtype=init_dt,
        bias=bias,
        sigma_b2=sigma_b2,
        input_variance=input_variance,
        negative_slope=negative_slope,
        bn_eps=bn_eps,
        image_hw=hw,
        kernel_size=kernel_size,
        padding=padding,
        calibration_batches=calibration_batches,
        calibration_batch_size=cal_b,
    )
