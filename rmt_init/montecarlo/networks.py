"""Fully connected and convolutional networks built from ``torch.nn`` modules, initialised by ``torch.nn.init``.

Layer ``l`` (``l = 1..L``) is ``Linear → [BatchNorm1d] → φ`` or ``Conv2d → [BatchNorm2d] → φ`` (stride 1,
odd kernel, "same" padding, ``padding_mode`` ``"circular"`` or ``"zeros"``), so that the input-output
Jacobian is ``J = D_L B_L W_L ⋯ D_1 B_1 W_1`` in the package's convention (``D_l = diag φ'(h_l)``, ``B_l``
the BN Jacobian, when present). Modules are created without touching the global RNG
(on the meta device, then ``to_empty``, as ``torch.nn.utils.skip_init``) and initialised with the real
``torch.nn.init`` functions driven by an explicit ``torch.Generator``; BN layers have torch's initial ``γ = 1, β = 0``, running mean 0, variance 1.

Kaiming gain: for ``kaiming_normal``/``kaiming_uniform`` the builders pass torch's ``nonlinearity``
matching the activation when torch has one — relu → ``"relu"`` (σ_w² = 2), leaky_relu → ``"leaky_relu"``
with ``a`` = its slope, linear → ``"linear"``, tanh → ``"tanh"`` (gain 5/3), sigmoid → ``"sigmoid"``,
selu → ``"linear"`` (torch's documented advice for self-normalising nets); for hardtanh, erf and gelu,
which ``calculate_gain`` does not know, torch's default ``"leaky_relu"`` with ``a = 0`` (σ_w² = 2) is
kept (the same table, ``rmt_init._vocabulary.KAIMING_NONLINEARITY``, serves ``rmt_init.jacobian_spectrum``).
``init_kwargs`` overrides. Xavier and orthogonal keep torch's default ``gain = 1``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rmt_init._validate import check_choice, check_int, check_real
from rmt_init._vocabulary import ACTIVATION_ALIASES, ACTIVATIONS
from rmt_init._vocabulary import kaiming_defaults as _kaiming_defaults

from .ensembles import WeightInit

__all__ = [
    "Erf",
    "make_activation",
    "kaiming_defaults",
    "build_mlp",
    "build_conv",
    "PADDING_MODES",
]

PADDING_MODES: tuple[str, ...] = ("circular", "zeros")
_PADDING_ALIASES = {"zero": "zeros", "periodic": "circular"}


class Erf(nn.Module):
    """Elementwise ``erf`` (``torch.erf``) as a module; used by PSG 2017 (arXiv 1711.04735) as a sigmoid."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return torch.erf(x)


def make_activation(name: str, negative_slope: float = 0.01) -> nn.Module:
    """The ``torch.nn`` module of an activation name (``rmt_init._vocabulary.ACTIVATIONS``).

    linear → ``nn.Identity``; relu, leaky_relu(``negative_slope``), tanh, hardtanh (±1), sigmoid, selu,
    gelu (exact erf form) → the ``torch.nn`` modules; erf → :class:`Erf`.
    """
    canon = check_choice("activation", name, ACTIVATIONS, ACTIVATION_ALIASES)
    if canon == "linear":
        return nn.Identity()
    if canon == "relu":
        return nn.ReLU()
    if canon == "leaky_relu":
        return nn.LeakyReLU(check_real("negative_slope", negative_slope))
    if canon == "tanh":
        return nn.Tanh()
    if canon == "hardtanh":
        return nn.Hardtanh()
    if canon == "sigmoid":
        return nn.Sigmoid()
    if canon == "selu":
        return nn.SELU()
    if canon == "gelu":
        return nn.GELU()
    return Erf()


def kaiming_defaults(activation: str, negative_slope: float = 0.01) -> dict[str, object]:
    """Kaiming ``nonlinearity``/``a`` matched to the activation (module docstring); empty if torch has none."""
    canon = check_choice("activation", activation, ACTIVATIONS, ACTIVATION_ALIASES)
    return _kaiming_defaults(canon, negative_slope)


def _uninitialised(module: nn.Module, device: torch.device | str) -> nn.Module:
    """A module built on the meta device, moved to ``device`` with uninitialised storage.

    What ``torch.nn.utils.skip_init`` does (build on ``"meta"``, then ``to_empty``), without its
    per-call ``inspect.signature`` check (≈ 1 ms a layer); the parameters are then set by ``torch.nn.init``.
    """
    return module.to_empty(device=device)


def _init_bias_(bias: torch.Tensor, fan_in: int, sigma_b2: float | None, generator: torch.Generator) -> None:
    with torch.no_grad():
        if sigma_b2 is None:  # nn.Linear / nn.Conv2d default: U(±1/√fan_in)
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(bias, -bound, bound, generator=generator)
        else:
            nn.init.normal_(bias, 0.0, math.sqrt(sigma_b2), generator=generator)


def _check_bias(bias: object, sigma_b2: object) -> tuple[bool, float | None]:
    if not isinstance(bias, bool):
        raise ValueError(f"bias must be True or False; got {bias!r}")
    s2 = None if sigma_b2 is None else check_real("sigma_b2", sigma_b2, low=0.0)
    if not bias and s2 not in (None, 0.0):
        raise ValueError(f"sigma_b2={sigma_b2!r} > 0 needs bias=True")
    return bias, s2


def build_mlp(
    widths: Sequence[int],
    activation: str,
    init: WeightInit,
    *,
    batchnorm: bool = False,
    bias: bool = False,
    sigma_b2: float | None = None,
    negative_slope: float = 0.01,
    bn_eps: float = 1e-5,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """``nn.Sequential`` of ``L = len(widths) − 1`` blocks ``Linear(n_{l−1}, n_l) → [BatchNorm1d(n_l)] → φ``.

    Weights: ``init.apply_`` (a real ``torch.nn.init`` call, see :mod:`rmt_init.montecarlo.ensembles`);
    biases (``bias=True``): ``N(0, sigma_b2)``, or torch's default ``U(±1/√fan_in)`` when ``sigma_b2`` is
    None. BN: ``eps = bn_eps``, ``γ = 1``, ``β = 0``.
    """
    bias, sigma_b2 = _check_bias(bias, sigma_b2)
    layers: list[nn.Module] = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        lin = _uninitialised(nn.Linear(n_in, n_out, bias=bias, device="meta", dtype=dtype), device)
        init.apply_(lin.weight, generator)
        if bias:
            _init_bias_(lin.bias, n_in, sigma_b2, generator)
        layers.append(lin)
        if batchnorm:
            layers.append(nn.BatchNorm1d(n_out, eps=bn_eps, device=device, dtype=dtype))
        layers.append(make_activation(activation, negative_slope))
    return nn.Sequential(*layers)


def build_conv(
    channels: Sequence[int],
    activation: str,
    init: WeightInit,
    *,
    kernel_size: int = 3,
    padding_mode: str = "circular",
    batchnorm: bool = False,
    bias: bool = False,
    sigma_b2: float | None = None,
    negative_slope: float = 0.01,
    bn_eps: float = 1e-5,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> nn.Sequential:
    """``nn.Sequential`` of blocks ``Conv2d(c_{l−1}, c_l, k, padding=k//2, padding_mode) → [BatchNorm2d] → φ``.

    Stride 1 and an odd kernel keep the spatial size. ``padding_mode``: ``"circular"`` (periodic images;
    the layer is a block-circulant matrix) or ``"zeros"``. Weight fan_in = ``c_{l−1} k²`` (torch). Init
    and biases as in :func:`build_mlp`.
    """
    bias, sigma_b2 = _check_bias(bias, sigma_b2)
    k = check_int("kernel_size", kernel_size, minimum=1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (same-size 'same' padding); got {kernel_size!r}")
    mode = check_choice("padding_mode", padding_mode, PADDING_MODES, _PADDING_ALIASES)
    layers: list[nn.Module] = []
    for c_in, c_out in zip(channels[:-1], channels[1:]):
        conv = _uninitialised(
            nn.Conv2d(c_in, c_out, k, padding=k // 2, padding_mode=mode, bias=bias, device="meta", dtype=dtype), device
        )
        init.apply_(conv.weight, generator)
        if bias:
            _init_bias_(conv.bias, c_in * k * k, sigma_b2, generator)
        layers.append(conv)
        if batchnorm:
            layers.append(nn.BatchNorm2d(c_out, eps=bn_eps, device=device, dtype=dtype))
        layers.append(make_activation(activation, negative_slope))
    return nn.Sequential(*layers)
