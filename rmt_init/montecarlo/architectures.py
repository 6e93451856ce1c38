"""Reference architectures at initialization: the CIFAR ResNets of He et al., residual MLPs, a transformer MLP block.

torchvision cannot be installed next to the pinned CPU torch, so the networks the literature studies live here as
plain ``torch.nn`` modules with deterministic submodule names (``"conv1"``, ``"layer1"``, ``"layer2.0"``,
``"fc"``, ``"blocks.3"``, …) that a user can pass as internal points or to
:func:`~rmt_init.montecarlo.model_layer_stats`.

Weights are torch's default ``reset_parameters()`` values (drawn from the global RNG, as for any ``torch.nn``
module); apply a scheme with :func:`~rmt_init.montecarlo.initialize_` — He et al. (2016) use
``initialize_(model, "kaiming_normal_", nonlinearity="relu")`` (He et al. 2015, arXiv 1502.01852).

* :func:`cifar_resnet` — He, Zhang, Ren & Sun, "Deep residual learning for image recognition", CVPR 2016
  (arXiv 1512.03385), §4.2: ``6n + 2`` weight layers; a 3×3 conv with 16 channels, three stages of ``n`` basic
  blocks (two 3×3 convs each) with 16/32/64 channels on 32×32/16×16/8×8 maps, stride 2 in the first conv of
  stages 2 and 3, global average pooling and a fully connected layer. Shortcut option A by default (identity;
  when the shape changes, subsample by 2 and append zero channels — the paper's choice for CIFAR, so the
  parameter counts are Table 6's: ResNet-20 0.27M, ResNet-56 0.85M, ResNet-110 1.7M); option B projects with
  a 1×1 conv (+ BN). Variants: no batch norm, the plain (non-residual) net of equal depth, and the full
  pre-activation unit of He, Zhang, Ren & Sun, "Identity mappings in deep residual networks", ECCV 2016
  (arXiv 1603.05027).
* :class:`ResidualMLP` — ``x_l = x_{l−1} + α_l φ(W_l x_{l−1} + b_l)`` (Tarnowski, Warchoł, Jastrzębski,
  Tabor & Nowak 2019, AISTATS, arXiv 1809.08848), optionally with batch norm at the end of each branch
  (De & Smith 2020, NeurIPS, arXiv 2002.10444).
* :class:`TransformerMLPBlock` — the position-wise feed-forward sublayer of Vaswani et al. 2017
  (arXiv 1706.03762) with LayerNorm and residual, post-LN (the original) or pre-LN (Xiong et al. 2020,
  arXiv 2002.04745).
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from rmt_init._validate import check_choice, check_int, check_real

from ._device import resolve_device, resolve_dtype
from .networks import make_activation

__all__ = [
    "SHORTCUTS",
    "NORM_PLACEMENTS",
    "cifar_resnet",
    "resnet20",
    "resnet56",
    "resnet110",
    "CifarResNet",
    "BasicBlock",
    "PreActBlock",
    "ZeroPadShortcut",
    "ResidualMLP",
    "ResidualBlock",
    "TransformerMLPBlock",
]

#: Shortcut options of He et al. (2016, §3.3) where the shape changes: "A" zero-padding identity, "B" 1×1 projection.
SHORTCUTS: tuple[str, ...] = ("A", "B")
#: LayerNorm placements of :class:`TransformerMLPBlock`.
NORM_PLACEMENTS: tuple[str, ...] = ("pre", "post")


def _factory(dtype: object, device: object) -> dict[str, object]:
    """``{"dtype": …, "device": …}`` for module constructors (dtype None: torch's default dtype)."""
    return {
        "dtype": torch.get_default_dtype() if dtype is None else resolve_dtype(dtype),
        "device": resolve_device(device),
    }


def _check_bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return value


class ZeroPadShortcut(nn.Module):
    """He et al. (2016) shortcut option A: ``x[:, :, ::s, ::s]`` followed by ``out − in`` zero channels (no parameters).

    The new channels are appended after the input's (``[x_subsampled, 0]``); which channels are zero is
    immaterial for the statistics at initialization, as every conv is invariant in law under channel permutations.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))

    def extra_repr(self) -> str:  # noqa: D102
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


def _shortcut(c_in: int, c_out: int, stride: int, option: str, batchnorm: bool, fk: dict) -> nn.Module | None:
    if c_in == c_out and stride == 1:
        return nn.Identity()
    if option == "A":
        return ZeroPadShortcut(c_in, c_out, stride)
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 1, stride=stride, bias=not batchnorm, **fk)]
    if batchnorm:
        layers.append(nn.BatchNorm2d(c_out, **fk))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """He et al. (2016) basic block: ``φ(BN(W₂ ⋆ φ(BN(W₁ ⋆ x))) + shortcut(x))`` (3×3 convs, stride in ``conv1``).

    Without batch norm ``bn1``/``bn2`` are ``nn.Identity``; without the residual (``shortcut=None``) the block
    is ``φ(BN(W₂ ⋆ φ(BN(W₁ ⋆ x))))``, the plain net's two layers. Submodules: ``conv1, bn1, act1, conv2, bn2,
    shortcut, act2``.
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int, *, batchnorm: bool, residual: bool, shortcut: str,
        conv_bias: bool, activation: str, fk: dict,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=conv_bias, **fk)
        self.bn1 = nn.BatchNorm2d(c_out, **fk) if batchnorm else nn.Identity()
        self.act1 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=conv_bias, **fk)
        self.bn2 = nn.BatchNorm2d(c_out, **fk) if batchnorm else nn.Identity()
        self.shortcut = _shortcut(c_in, c_out, stride, shortcut, batchnorm, fk) if residual else None
        self.act2 = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x)))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return self.act2(out)


class PreActBlock(nn.Module):
    """Full pre-activation unit (He et al. 2016b, Fig. 4(e)): ``W₂ ⋆ φ(BN(W₁ ⋆ φ(BN(x)))) + shortcut(x)``.

    No activation after the addition, so the identity path runs unchanged from block to block. The shortcut
    acts on the raw ``x`` (for option B as well). Submodules: ``bn1, act1, conv1, bn2, act2, conv2, shortcut``.
    """

    def __init__(
        self, c_in: int, c_out: int, stride: int, *, batchnorm: bool, residual: bool, shortcut: str,
        conv_bias: bool, activation: str, fk: dict,
    ) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(c_in, **fk) if batchnorm else nn.Identity()
        self.act1 = make_activation(activation)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=conv_bias, **fk)
        self.bn2 = nn.BatchNorm2d(c_out, **fk) if batchnorm else nn.Identity()
        self.act2 = make_activation(activation)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=conv_bias, **fk)
        self.shortcut = _shortcut(c_in, c_out, stride, shortcut, batchnorm, fk) if residual else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = self.conv2(self.act2(self.bn2(self.conv1(self.act1(self.bn1(x))))))
        if self.shortcut is not None:
            out = out + self.shortcut(x)
        return out


class CifarResNet(nn.Module):
    """A CIFAR ResNet of He et al. (2016, §4.2); build it with :func:`cifar_resnet` (which documents the options).

    Submodules, in forward order: ``conv1`` (3×3, 3 → w), ``bn1``, ``act`` (post-activation only; in the
    pre-activation net the stem is the bare conv), ``layer1``, ``layer2``, ``layer3`` (``nn.Sequential`` of
    ``n`` blocks each: ``"layer2.0"`` … ``"layer2.{n−1}"``), ``bn_final``, ``act_final`` (pre-activation only:
    the final BN–φ before pooling, as in He et al. 2016b), ``avgpool`` (global average), ``flatten``, ``fc``.
    Input ``(B, 3, H, W)``, output ``(B, num_classes)``.
    """

    def __init__(
        self, n: int, *, batchnorm: bool, residual: bool, preactivation: bool, shortcut: str, num_classes: int,
        width: int, activation: str, conv_bias: bool, fk: dict,
    ) -> None:
        super().__init__()
        self.n, self.batchnorm, self.residual, self.preactivation = n, batchnorm, residual, preactivation
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=conv_bias, **fk)
        if not preactivation:
            self.bn1 = nn.BatchNorm2d(width, **fk) if batchnorm else nn.Identity()
            self.act = make_activation(activation)
        block = PreActBlock if preactivation else BasicBlock
        channels = (width, 2 * width, 4 * width)
        c_in = width
        for s, c_out in enumerate(channels):
            blocks = []
            for i in range(n):
                stride = 2 if (s > 0 and i == 0) else 1
                blocks.append(
                    block(c_in, c_out, stride, batchnorm=batchnorm, residual=residual, shortcut=shortcut,
                          conv_bias=conv_bias, activation=activation, fk=fk)
                )
                c_in = c_out
            self.add_module(f"layer{s + 1}", nn.Sequential(*blocks))
        if preactivation:
            self.bn_final = nn.BatchNorm2d(c_in, **fk) if batchnorm else nn.Identity()
            self.act_final = make_activation(activation)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.fc = nn.Linear(c_in, num_classes, **fk)

    @property
    def depth(self) -> int:
        """Number of weight layers ``6n + 2`` (stem conv, ``6n`` block convs, fc; 1×1 projections not counted)."""
        return 6 * self.n + 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = self.conv1(x)
        if not self.preactivation:
            x = self.act(self.bn1(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        if self.preactivation:
            x = self.act_final(self.bn_final(x))
        return self.fc(self.flatten(self.avgpool(x)))


def cifar_resnet(
    depth: int,
    *,
    batchnorm: bool = True,
    residual: bool = True,
    preactivation: bool = False,
    shortcut: str = "A",
    num_classes: int = 10,
    width: int = 16,
    activation: str = "relu",
    conv_bias: bool | None = None,
    dtype: torch.dtype | str | None = None,
    device: torch.device | str = "cpu",
) -> CifarResNet:
    """The CIFAR ResNet of depth ``6n + 2`` (He et al. 2016, CVPR, §4.2; arXiv 1512.03385).

    ``depth`` = number of weight layers = 6n + 2: a 3×3 conv (3 → ``width`` channels), three stages of ``n``
    basic blocks with ``width``/2·``width``/4·``width`` channels (16/32/64 for the default ``width=16``), the
    first conv of stages 2 and 3 with stride 2, global average pooling, ``fc`` (4·``width`` → ``num_classes``).

    Args:
        depth: 20, 32, 44, 56, 110, 1202, … (any 6n + 2 with n ≥ 1).
        batchnorm: BatchNorm2d after every conv (He et al.). ``False`` replaces them by ``nn.Identity``.
        residual: ``False`` gives the plain counterpart of equal depth (He et al.'s "plain-20/56": the same
            convs, no shortcuts).
        preactivation: the full pre-activation unit ``x + W₂⋆φ(BN(W₁⋆φ(BN(x))))`` of He et al. 2016b (ECCV,
            arXiv 1603.05027, Fig. 4e), with a final BN–φ before pooling.
        shortcut: where a block changes shape — ``"A"`` (default, the paper's CIFAR choice, parameter-free:
            subsample by the stride, append zero channels) or ``"B"`` (1×1 conv projection with stride, + BN).
            Shape-preserving shortcuts are always the identity.
        num_classes: outputs of ``fc``.
        width: channels of the first stage (16 in the paper).
        activation: φ by its ``torch.nn`` name (``rmt_init._vocabulary.ACTIVATIONS``).
        conv_bias: biases on the convs; ``None`` (default) means ``not batchnorm`` — with BN a conv bias would be
            cancelled by the BN mean (He et al. use none); without BN the convs get torch's default biases, so
            the BN-free net keeps an additive shift per channel. ``fc`` always has a bias.
        dtype, device: of the parameters (dtype None: torch's default dtype).

    Parameter counts with option A and BN (He et al. Table 6): ResNet-20 269,722 (0.27M), ResNet-56 853,018
    (0.85M), ResNet-110 1,727,962 (1.7M).
    """
    d = check_int("depth", depth, minimum=1)
    if (d - 2) % 6 != 0 or d < 8:
        raise ValueError(
            "depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, …; He et al. 2016 §4.2); "
            f"got {depth!r}"
        )
    batchnorm = _check_bool("batchnorm", batchnorm)
    residual = _check_bool("residual", residual)
    preactivation = _check_bool("preactivation", preactivation)
    option = check_choice("shortcut", shortcut, SHORTCUTS)
    num_classes = check_int("num_classes", num_classes, minimum=1)
    width = check_int("width", width, minimum=1)
    conv_bias = (not batchnorm) if conv_bias is None else _check_bool("conv_bias", conv_bias)
    make_activation(activation)  # validates the name
    return CifarResNet(
        (d - 2) // 6, batchnorm=batchnorm, residual=residual, preactivation=preactivation, shortcut=option,
        num_classes=num_classes, width=width, activation=activation, conv_bias=conv_bias, fk=_factory(dtype, device),
    )


def resnet20(**kwargs: object) -> CifarResNet:
    """ResNet-20 (n = 3; 0.27M parameters): ``cifar_resnet(20, **kwargs)``."""
    return cifar_resnet(20, **kwargs)


def resnet56(**kwargs: object) -> CifarResNet:
    """ResNet-56 (n = 9; 0.85M parameters): ``cifar_resnet(56, **kwargs)``."""
    return cifar_resnet(56, **kwargs)


def resnet110(**kwargs: object) -> CifarResNet:
    """ResNet-110 (n = 18; 1.7M parameters), the network of Bjorck et al. 2018: ``cifar_resnet(110, **kwargs)``."""
    return cifar_resnet(110, **kwargs)


class ResidualBlock(nn.Module):
    """One block of :class:`ResidualMLP`: ``x + α φ(W x + b)``, or ``x + α BN(φ(W x + b))`` with batch norm.

    Submodules: ``linear``, ``act``, ``bn`` (``nn.Identity`` without batch norm). ``alpha`` is a plain float.
    """

    def __init__(self, width: int, alpha: float, activation: str, batchnorm: bool, bias: bool, fk: dict) -> None:
        super().__init__()
        self.alpha = alpha
        self.linear = nn.Linear(width, width, bias=bias, **fk)
        self.act = make_activation(activation)
        self.bn = nn.BatchNorm1d(width, **fk) if batchnorm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return x + self.alpha * self.bn(self.act(self.linear(x)))

    def extra_repr(self) -> str:  # noqa: D102
        return f"alpha={self.alpha:g}"


class ResidualMLP(nn.Module):
    """Residual MLP ``x_l = x_{l−1} + α_l φ(W_l x_{l−1} + b_l)``, ``l = 1..depth``, all of width ``width``.

    One ``width × width`` weight matrix per block, as in Tarnowski et al. (2019, AISTATS, arXiv 1809.08848,
    eq. 1), whose input-output Jacobian is ``Π_l (1 + α_l D_l W_l)``. Inputs ``(B, width)``; there is no read-in
    or read-out layer, so the Jacobian is square.

    With ``batchnorm=True`` every branch ends in ``BatchNorm1d``: ``x_l = x_{l−1} + α_l BN(φ(W_l x_{l−1} + b_l))``.
    BN is the last operation of the branch, so in train mode each branch output has batch mean 0 and batch
    variance ``v/(v + eps) ≈ 1`` per feature whatever the scale of ``x_{l−1}`` — the setting of De & Smith
    (2020, NeurIPS, arXiv 2002.10444, §2), where the skip path accumulates variance ``Var x_0 + Σ α_l²`` and so
    downweights the branches by ``~1/√l`` (the block is biased towards the identity).

    Args:
        width: features n.
        depth: number of blocks (submodules ``"blocks.0"`` … ``"blocks.{depth−1}"``).
        activation: φ by its ``torch.nn`` name.
        alpha: branch multiplier, one number or one value per block.
        batchnorm: BN at the end of each branch (above).
        bias: biases ``b_l`` (torch's default init; ``initialize_`` sets them as asked).
        dtype, device: of the parameters (dtype None: torch's default dtype).
    """

    def __init__(
        self,
        width: int,
        depth: int,
        *,
        activation: str = "relu",
        alpha: float | Sequence[float] = 1.0,
        batchnorm: bool = False,
        bias: bool = True,
        dtype: torch.dtype | str | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        width = check_int("width", width, minimum=1)
        depth = check_int("depth", depth, minimum=1)
        batchnorm = _check_bool("batchnorm", batchnorm)
        bias = _check_bool("bias", bias)
        if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
            alphas = [check_real("alpha", alpha)] * depth
        elif hasattr(alpha, "__len__") and not isinstance(alpha, (str, bytes)):  # list, tuple, numpy array, tensor
            alpha = [float(a) if isinstance(a, torch.Tensor) else a for a in alpha]
            if len(alpha) != depth:
                raise ValueError(f"alpha must be a number or have depth = {depth} entries; got {len(alpha)}")
            alphas = [check_real(f"alpha[{i}]", a.item() if hasattr(a, "item") else a) for i, a in enumerate(alpha)]
        else:
            raise ValueError(f"alpha must be a real number or a sequence of depth = {depth} reals; got {alpha!r}")
        make_activation(activation)
        fk = _factory(dtype, device)
        self.width, self.depth, self.alpha = width, depth, tuple(alphas)
        self.blocks = nn.Sequential(*(ResidualBlock(width, a, activation, batchnorm, bias, fk) for a in alphas))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.blocks(x)


class TransformerMLPBlock(nn.Module):
    """The transformer's position-wise feed-forward sublayer with LayerNorm and residual.

    ``MLP(x) = W₂ φ(W₁ x + b₁) + b₂`` (Vaswani et al. 2017, arXiv 1706.03762, eq. 2; ``d_model → d_hidden →
    d_model``). ``norm="post"`` (the original): ``LN(x + MLP(x))``; ``norm="pre"`` (default; Xiong et al. 2020,
    arXiv 2002.04745, "pre-LN", whose gradients are well behaved at initialization): ``x + MLP(LN(x))``.
    Acts on the last dimension of ``(…, d_model)`` inputs. Submodules: ``norm``, ``fc1``, ``act``, ``fc2``.
    """

    def __init__(
        self,
        d_model: int,
        d_hidden: int | None = None,
        *,
        activation: str = "gelu",
        norm: str = "pre",
        dtype: torch.dtype | str | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        d_model = check_int("d_model", d_model, minimum=1)
        d_hidden = 4 * d_model if d_hidden is None else check_int("d_hidden", d_hidden, minimum=1)
        self.placement = check_choice("norm", norm, NORM_PLACEMENTS)
        fk = _factory(dtype, device)
        self.norm = nn.LayerNorm(d_model, **fk)
        self.fc1 = nn.Linear(d_model, d_hidden, **fk)
        self.act = make_activation(activation)
        self.fc2 = nn.Linear(d_hidden, d_model, **fk)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.placement == "pre":
            return x + self.fc2(self.act(self.fc1(self.norm(x))))
        return self.norm(x + self.fc2(self.act(self.fc1(x))))
