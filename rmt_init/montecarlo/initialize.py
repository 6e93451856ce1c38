"""Initialize every weight of a whole ``torch.nn`` model with a ``torch.nn.init`` scheme given by its name.

:func:`initialize_` walks ``model.modules()`` and, for each ``nn.Linear`` and ``nn.Conv1d/2d/3d``, calls the
``torch.nn.init`` function of the scheme on the weight (with its keyword arguments and an optional
``torch.Generator``), sets the bias as asked, and resets every normalization layer (BatchNorm/LayerNorm/
GroupNorm/InstanceNorm: weight 1, bias 0; BN running statistics to mean 0, variance 1). Other parameters
(embeddings, attention in-projections, …) are left as they are.
"""
from __future__ import annotations

import inspect
import math
import numbers

import torch
from torch import nn

from rmt_init._validate import check_choice, check_real
from rmt_init._vocabulary import GAIN_NONLINEARITIES, INIT_ALIASES

from ._device import linalg_threads

__all__ = ["INITIALIZE_SCHEMES", "BIAS_MODES", "initialize_", "scheme_kwargs"]

#: Scheme names :func:`initialize_` accepts (``torch.nn.init`` spelling with or without the trailing ``_``).
#: The first eight are the ``torch.nn.init`` functions themselves; ``gaussian``, ``lecun_*`` and
#: ``torch_default`` are the project's scale conventions (``rmt_init._vocabulary.INITS``); ``delta_orthogonal``
#: is Xiao et al.'s (2018, arXiv 1806.05393) kernel for convs.
INITIALIZE_SCHEMES: tuple[str, ...] = (
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "orthogonal",
    "normal",
    "uniform",
    "trunc_normal",
    "gaussian",
    "lecun_normal",
    "lecun_uniform",
    "torch_default",
    "delta_orthogonal",
)
# the vocabulary's aliases, except "normal" (here torch.nn.init.normal_ itself, with its mean/std)
_ALIASES = {k: v for k, v in INIT_ALIASES.items() if k != "normal"}

_TORCH_SCHEMES = ("xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform", "orthogonal", "normal",
                  "uniform", "trunc_normal")
#: Keyword arguments (with defaults) of the project's own schemes.
_OWN_KWARGS: dict[str, dict[str, object]] = {
    "gaussian": {"sigma_w2": 1.0},
    "lecun_normal": {},
    "lecun_uniform": {},
    "torch_default": {},
    "delta_orthogonal": {"gain": 1.0},
}

#: Bias settings: a number (constant), ``"default"`` (torch's ``U(±1/√fan_in)``), ``"keep"``, or
#: ``("normal", σ_b²)`` (i.i.d. ``N(0, σ_b²)``).
BIAS_MODES: tuple[str, ...] = ("default", "keep", "normal")

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)


def scheme_kwargs(scheme: str) -> dict[str, object]:
    """The keyword arguments (name → default) that ``scheme`` takes (``torch.nn.init``'s own signature for torch
    functions, without ``tensor`` and ``generator``)."""
    canon = check_choice("scheme", scheme, INITIALIZE_SCHEMES, _ALIASES)
    if canon in _TORCH_SCHEMES:
        sig = inspect.signature(getattr(nn.init, canon + "_"))
        return {k: p.default for k, p in sig.parameters.items() if k not in ("tensor", "generator")}
    return dict(_OWN_KWARGS[canon])


def _check_bias(bias: object) -> tuple[str, float]:
    """``(mode, value)`` with mode ``"constant"``, ``"default"``, ``"keep"`` or ``"normal"``."""
    if isinstance(bias, numbers.Real) and not isinstance(bias, bool):
        return "constant", check_real("bias", bias)
    if isinstance(bias, str):
        mode = check_choice("bias", bias, ("default", "keep"))
        return mode, 0.0
    if isinstance(bias, tuple) and len(bias) == 2 and isinstance(bias[0], str):
        check_choice("bias[0]", bias[0], ("normal",))
        return "normal", check_real("bias sigma_b2", bias[1], low=0.0)
    raise ValueError(
        f"bias must be a real number (constant), 'default' (torch's U(±1/sqrt(fan_in))), 'keep', or "
        f"('normal', sigma_b2) with sigma_b2 >= 0; got {bias!r}"
    )


def _fan_in(weight: torch.Tensor) -> int:
    return weight.shape[1] * math.prod(weight.shape[2:])


def _delta_orthogonal():
    try:
        from .delta_orthogonal import delta_orthogonal_
    except ImportError as exc:
        raise ValueError(
            "scheme 'delta_orthogonal' needs rmt_init.montecarlo.delta_orthogonal, which is not available in this "
            f"installation; valid choices are {', '.join(repr(s) for s in INITIALIZE_SCHEMES[:-1])}"
        ) from exc
    return delta_orthogonal_


def _call(fn, weight: torch.Tensor, kwargs: dict, generator: torch.Generator | None) -> None:
    """``fn(weight, **kwargs, generator=…)``; a function without ``generator`` runs under a forked global RNG seeded
    from ``generator`` (so it is still reproducible and leaves the global RNG untouched)."""
    if "generator" in inspect.signature(fn).parameters:
        fn(weight, **kwargs, generator=generator)
    elif generator is None:
        fn(weight, **kwargs)
    else:
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        devices = [weight.device] if weight.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            fn(weight, **kwargs)


def _init_weight(canon: str, weight: torch.Tensor, is_conv: bool, kwargs: dict, gen) -> None:
    init = nn.init
    if canon in _TORCH_SCHEMES:
        with linalg_threads(weight.device):
            _call(getattr(init, canon + "_"), weight, kwargs, gen)
    elif canon == "gaussian":
        init.normal_(weight, 0.0, math.sqrt(kwargs["sigma_w2"] / _fan_in(weight)), generator=gen)
    elif canon == "lecun_normal":
        init.normal_(weight, 0.0, 1.0 / math.sqrt(_fan_in(weight)), generator=gen)
    elif canon == "lecun_uniform":
        bound = math.sqrt(3.0 / _fan_in(weight))
        init.uniform_(weight, -bound, bound, generator=gen)
    elif canon == "torch_default":
        init.kaiming_uniform_(weight, a=math.sqrt(5.0), generator=gen)
    elif is_conv:  # delta_orthogonal
        _call(_delta_orthogonal(), weight, kwargs, gen)
    else:  # delta_orthogonal on a Linear weight: its 1×1 case, an orthogonal matrix
        with linalg_threads(weight.device):
            init.orthogonal_(weight, gain=kwargs["gain"], generator=gen)


def _init_bias(mode: str, value: float, bias: torch.Tensor, fan_in: int, gen) -> None:
    if mode == "keep":
        return
    if mode == "constant":
        nn.init.constant_(bias, value)
    elif mode == "normal":
        nn.init.normal_(bias, 0.0, math.sqrt(value), generator=gen)
    else:  # torch's default for Linear/Conv
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        nn.init.uniform_(bias, -bound, bound, generator=gen)


def initialize_(
    model: nn.Module,
    scheme: str,
    *,
    bias: float | str | tuple[str, float] = 0.0,
    generator: torch.Generator | None = None,
    **kwargs: object,
) -> nn.Module:
    """Initialize every Linear/Conv1d/2d/3d weight of ``model`` in place with ``scheme``; return ``model``.

    Weights, by ``scheme`` (names as in ``torch.nn.init``, with or without the trailing underscore; aliases
    ``glorot_*``, ``he_*``, ``default`` as in ``rmt_init._vocabulary``), with ``kwargs`` passed on:

    ======================= ====================================================================================
    ``xavier_normal_`` …    the ``torch.nn.init`` function of that name — ``xavier_normal_``, ``xavier_uniform_``
                            (``gain``; variance ``2g²/(fan_in + fan_out)``, Glorot & Bengio 2010),
                            ``kaiming_normal_``, ``kaiming_uniform_`` (``a``, ``mode``, ``nonlinearity``; variance
                            ``gain²/fan_mode``, He et al. 2015, arXiv 1502.01852), ``orthogonal_`` (``gain``:
                            ``W Wᵀ = g² I`` for rows ≤ cols of the flattened weight, Saxe et al. 2014,
                            arXiv 1312.6120), ``normal_`` (``mean``, ``std``), ``uniform_`` (``a``, ``b``),
                            ``trunc_normal_`` (``mean``, ``std``, ``a``, ``b``)
    ``gaussian``            ``N(0, σ_w²/fan_in)`` (``sigma_w2``, default 1; the mean-field convention)
    ``lecun_normal``,       variance ``1/fan_in`` (LeCun et al. 1998, "Efficient BackProp"), Gaussian or
    ``lecun_uniform``       uniform
    ``torch_default``       what ``reset_parameters()`` does: ``kaiming_uniform_(a=√5)``, variance ``1/(3 fan_in)``
    ``delta_orthogonal``    conv weights: Xiao et al. 2018 (arXiv 1806.05393) — an orthogonal matrix × ``gain``
                            at the centre tap, zeros elsewhere (``rmt_init.montecarlo.delta_orthogonal_``);
                            Linear weights (a 1×1 kernel): ``orthogonal_(gain)``
    ======================= ====================================================================================

    Note ``"normal"`` here is ``torch.nn.init.normal_`` (default std 1, whatever the fan-in), not the
    vocabulary's alias of ``gaussian``; use ``"gaussian"`` for ``N(0, σ_w²/fan_in)``.

    Biases of those layers (``bias``):

    * a real number ``c`` (default ``0.0``): every bias entry is ``c`` — ``0`` is the mean-field convention
      ``σ_b² = 0`` (Poole et al. 2016, arXiv 1606.05340);
    * ``("normal", σ_b²)``: i.i.d. ``N(0, σ_b²)`` (the mean-field bias variance);
    * ``"default"``: torch's ``reset_parameters()`` law ``U(−1/√fan_in, 1/√fan_in)``;
    * ``"keep"``: left unchanged.

    Normalization layers (``BatchNorm*``, ``InstanceNorm*``, ``LayerNorm``, ``GroupNorm``) are reset: affine
    weight 1, bias 0, BN running mean 0 / variance 1 / ``num_batches_tracked`` 0.

    ``generator`` (a ``torch.Generator`` on the parameters' device) makes the result reproducible: the layers are
    drawn in ``model.modules()`` order from it, and the global RNG is not used. Without it the global RNG is used.

    Raises ``ValueError`` for a model that is not an ``nn.Module``, an unknown scheme (naming the valid ones), a
    keyword argument the scheme does not take (naming the ones it takes), or a bad ``bias``.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    canon = check_choice("scheme", scheme, INITIALIZE_SCHEMES, _ALIASES)
    allowed = scheme_kwargs(canon)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        valid = ", ".join(repr(k) for k in allowed) or "none"
        raise ValueError(f"unknown keyword argument(s) {unknown!r} for scheme {canon!r}; valid arguments: {valid}")
    params = {**allowed, **kwargs}
    if canon == "gaussian":
        params["sigma_w2"] = check_real("sigma_w2", params["sigma_w2"], low=0.0)
    if canon == "delta_orthogonal":
        params["gain"] = check_real("gain", params["gain"])
    if "nonlinearity" in kwargs:
        kwargs["nonlinearity"] = check_choice("nonlinearity", kwargs["nonlinearity"], GAIN_NONLINEARITIES)
    if "mode" in kwargs and canon.startswith("kaiming"):
        kwargs["mode"] = check_choice("mode", kwargs["mode"], ("fan_in", "fan_out"))
    call_kwargs = dict(kwargs) if canon in _TORCH_SCHEMES else params
    mode, value = _check_bias(bias)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None; got {generator!r}")
    if canon == "delta_orthogonal" and any(isinstance(m, _CONVS) for m in model.modules()):
        _delta_orthogonal()  # fail before touching anything
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _WEIGHTED):
                try:
                    _init_weight(canon, module.weight, isinstance(module, _CONVS), call_kwargs, generator)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"scheme {canon!r} with {call_kwargs!r} failed on {module!r}: {exc}") from exc
                if module.bias is not None:
                    _init_bias(mode, value, module.bias, _fan_in(module.weight), generator)
            elif isinstance(module, _NORMS):
                if isinstance(module, nn.modules.batchnorm._NormBase):
                    module.reset_parameters()
                elif getattr(module, "weight", None) is not None:
                    nn.init.ones_(module.weight)
                    if module.bias is not None:
                        nn.init.zeros_(module.bias)
    return model
