"""Input-output Jacobians of ``torch.nn`` networks at initialisation, by chaining the layer Jacobians.

One forward pass caches what each layer's Jacobian needs; then the identity is pushed through the
layers as a batch of tangent vectors (forward mode, explicit structured matrix products — no backward
pass per output):

* ``Linear``: ``T ← T Wᵀ``; ``Conv1d/2d/3d``: the convolution itself (bias dropped, same padding mode,
  stride, dilation and groups) applied to the tangents;
* elementwise activation: ``T ← φ'(h) ⊙ T`` with ``φ'`` the exact elementwise derivative (one autograd
  call on ``Σ φ(h)``, which is ``φ'`` entry by entry because the Jacobian is diagonal);
* BatchNorm, eval mode: ``T ← (γ/√(running_var + eps)) T``;
* BatchNorm, train mode (batch statistics, biased variance, as torch): for each channel, over the ``m``
  values it normalises (batch × spatial positions), with ``ŷ = (h − μ)/s``, ``s = √(σ²_B + eps)``,
  ``∂y/∂h = (γ/s)(I − 11ᵀ/m − ŷŷᵀ/m)``, i.e. ``T ← (γ/s)(T − mean(T) − ŷ mean(ŷ T))``
  (Ioffe & Szegedy 2015, arXiv 1502.03167, backward formulas; Yang et al. 2019, arXiv 1902.08129);
* ``Flatten``/``Unflatten`` (not touching the batch dimension): the same reshape of the tangents;
  ``Identity`` and dropout in eval mode (or with ``p = 0``): nothing.

Only these modules are differentiated, and each only when it is exactly the map above: a module of any
other type — ``Softmax``, ``LayerNorm``, pooling, attention, a user module, a subclass that overrides
``forward`` — a module with forward hooks, dropout or ``RReLU`` in training mode (random), or a
container other than a plain ``nn.Sequential`` raises ``ValueError`` naming the module; nothing is ever
treated as elementwise by default (:data:`ELEMENTWISE_ACTIVATIONS` is the explicit list).

Train-mode BN couples the examples, so the Jacobian is then that of the whole batch map
(``B·F_in → B·F_out`` numbers, ``F`` = features per example); without coupling it is per example.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ._device import chunk_from_budget, run_chunked
from .networks import Erf

__all__ = ["chained_jacobian", "JACOBIAN_MODES", "ELEMENTWISE_ACTIVATIONS", "SUPPORTED_MODULES"]

JACOBIAN_MODES: tuple[str, ...] = ("per_example", "batch")
_DEFAULT_BUDGET = 1 << 30

#: Activation modules whose output entry ``i`` depends on input entry ``i`` only (diagonal Jacobian).
#: ``PReLU`` has one slope per channel, still a diagonal Jacobian; ``RReLU`` only in eval mode (in
#: training mode its slopes are random). Not here, because they mix entries: ``Softmax``, ``Softmin``,
#: ``LogSoftmax``, ``Softmax2d``, ``GLU``, ``MultiheadAttention``.
ELEMENTWISE_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Hardshrink, nn.Softshrink,
    nn.Tanhshrink, nn.Softsign, nn.Softplus, nn.LogSigmoid, nn.Threshold, Erf,
)
_LINEAR: tuple[type[nn.Module], ...] = (nn.Linear,)
_CONV: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BATCHNORM: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_RESHAPE: tuple[type[nn.Module], ...] = (nn.Flatten, nn.Unflatten)
_DROPOUT: tuple[type[nn.Module], ...] = (
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout,
)
#: Every module type :func:`chained_jacobian` differentiates (exact classes, or subclasses that keep their
#: ``forward``), inside plain ``nn.Sequential`` containers (nested ones are flattened).
SUPPORTED_MODULES: tuple[type[nn.Module], ...] = (
    _LINEAR + _CONV + _BATCHNORM + _RESHAPE + _DROPOUT + ELEMENTWISE_ACTIVATIONS
)


def _supported_text() -> str:
    names = lambda classes: ", ".join(c.__name__ for c in classes)  # noqa: E731
    return (
        f"supported: {names(_LINEAR + _CONV)}, {names(_BATCHNORM)} (train or eval mode), "
        f"{names(_RESHAPE)} (batch dimension untouched), {names(_DROPOUT)} (eval mode or p=0), "
        f"and the elementwise activations {names(ELEMENTWISE_ACTIVATIONS)} (RReLU in eval mode), "
        "inside plain nn.Sequential containers"
    )


def _refuse(name: str, module: nn.Module, why: str) -> ValueError:
    return ValueError(
        f"chained_jacobian cannot differentiate module {name!r} ({type(module).__name__}) exactly: {why}; "
        f"{_supported_text()}"
    )


def _kind_of(module: nn.Module, classes: tuple[type[nn.Module], ...]) -> type[nn.Module] | None:
    """The class of ``classes`` that ``module`` is, provided it runs that class's own ``forward`` (and, for
    convolutions, its own ``_conv_forward``, which the tangents go through)."""
    for cls in classes:
        if (
            isinstance(module, cls)
            and type(module).forward is cls.forward
            and getattr(type(module), "_conv_forward", None) is getattr(cls, "_conv_forward", None)
        ):
            return cls
    return None


def _has_hooks(module: nn.Module) -> bool:
    """Forward (pre-)hooks on ``module``, or global ones (``torch.nn.modules.module.register_module_forward_hook``)."""
    from torch.nn.modules import module as _module

    return any(
        getattr(owner, attr, None)
        for owner, attr in (
            (module, "_forward_hooks"), (module, "_forward_pre_hooks"),
            (_module, "_global_forward_hooks"), (_module, "_global_forward_pre_hooks"),
        )
    )


def _flatten_sequential(model: object, prefix: str = "") -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of the leaf modules of (nested) plain ``nn.Sequential`` containers, in order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Sequential of supported modules; got {type(model).__name__}")
    label = prefix or "<model>"
    if not (isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward):
        raise _refuse(label, model, "it is not a plain nn.Sequential container (its forward is not a chain)")
    if _has_hooks(model):
        raise _refuse(label, model, "it has forward hooks, which may change its output")
    out: list[tuple[str, nn.Module]] = []
    for name, m in model.named_children():
        full = f"{prefix}.{name}" if prefix else name
        if isinstance(m, nn.Sequential):
            out.extend(_flatten_sequential(m, full))
        else:
            out.append((full, m))
    return out


def _check_module(name: str, m: nn.Module, h: torch.Tensor) -> str:
    """The kind of Jacobian of module ``m`` at input ``h``, or ``ValueError`` if it is not exactly known."""
    if _has_hooks(m):
        raise _refuse(name, m, "it has forward hooks, which may change its output")
    if _kind_of(m, _LINEAR):
        return "linear"
    if _kind_of(m, _CONV):
        return "conv"
    if _kind_of(m, _BATCHNORM):
        return "bn"
    if _kind_of(m, _DROPOUT):
        if m.training and m.p > 0:
            raise _refuse(name, m, "dropout in training mode is random; call model.eval() (it is then the identity)")
        return "identity"
    if _kind_of(m, _RESHAPE):
        dims = (m.start_dim, m.end_dim) if isinstance(m, nn.Flatten) else (m.dim,)
        if not all(isinstance(d, int) for d in dims):
            raise _refuse(name, m, f"it names dimensions {dims!r} (named tensors are not supported)")
        if any(d % h.dim() == 0 for d in dims):
            raise _refuse(name, m, "it reshapes the batch dimension 0")
        return "reshape"
    if _kind_of(m, ELEMENTWISE_ACTIVATIONS):
        if isinstance(m, nn.Identity):
            return "identity"
        if isinstance(m, nn.RReLU) and m.training:
            raise _refuse(name, m, "RReLU in training mode has random slopes; call model.eval()")
        return "diag"
    raise _refuse(name, m, "it is not a module type with a known exact Jacobian")


def _forward_cache(model: nn.Sequential, x: torch.Tensor):
    """One forward pass; return the output and, per module, what its Jacobian needs.

    Raises ``ValueError`` (naming the module) for anything whose Jacobian is not exactly one of the
    maps of the module docstring.
    """
    caches: list[tuple] = []
    h = x
    for name, m in _flatten_sequential(model):
        kind = _check_module(name, m, h)
        if kind == "linear":
            h = m(h)
            caches.append(("linear", m.weight))
        elif kind == "conv":
            h = m(h)
            caches.append(("conv", m))
        elif kind == "bn":
            gamma = m.weight if m.affine else torch.ones(h.shape[1], dtype=h.dtype, device=h.device)
            beta = m.bias if m.affine else None
            shape = (1, -1) + (1,) * (h.dim() - 2)
            if m.training or m.running_var is None:
                dims = [0] + list(range(2, h.dim()))
                mean = h.mean(dim=dims, keepdim=True)
                var = h.var(dim=dims, unbiased=False, keepdim=True)
                s = torch.sqrt(var + m.eps)
                caches.append(("bn_train", (h - mean) / s, gamma.reshape(shape) / s, dims))
                h = F.batch_norm(h, None, None, gamma, beta, training=True, eps=m.eps)
            else:
                scale = gamma / torch.sqrt(m.running_var + m.eps)
                caches.append(("scale", scale.reshape(shape)))
                h = m(h)
        elif kind == "identity":
            h = m(h)
        elif kind == "reshape":
            h = m(h)
            caches.append(("reshape", tuple(h.shape[1:])))
        else:  # elementwise activation (checked above)
            with torch.enable_grad():  # exact elementwise φ', the same derivative autograd uses
                hh = h.detach().requires_grad_(True)
                out = m(hh.clone())  # the clone lets in-place activations (inplace=True) run
                if out.shape != hh.shape:
                    shapes = f"{tuple(out.shape)} differs from its input's {tuple(hh.shape)}"
                    raise _refuse(name, m, f"its output shape {shapes}")
                (d,) = torch.autograd.grad(out.sum(), hh)
            caches.append(("diag", d))
            h = out.detach()
    return h, caches


def _push(caches, t: torch.Tensor) -> torch.Tensor:
    """Apply the cached layer Jacobians to tangents ``t`` of shape ``(k, B, *features)``."""
    k, b = t.shape[:2]
    for c in caches:
        kind = c[0]
        if kind == "linear":
            t = F.linear(t, c[1])
        elif kind == "conv":
            m = c[1]
            out = m._conv_forward(t.reshape(k * b, *t.shape[2:]), m.weight, None)
            t = out.reshape(k, b, *out.shape[1:])
        elif kind == "bn_train":
            yhat, g, dims = c[1], c[2], c[3]
            tdims = [d + 1 for d in dims]  # tangent axis 0 in front
            mt = t.mean(dim=tdims, keepdim=True)
            cy = (t * yhat).mean(dim=tdims, keepdim=True)
            t = g * (t - mt - yhat * cy)
        elif kind == "reshape":
            t = t.reshape(k, b, *c[1])
        else:  # "scale", "diag"
            t = t * c[1]
    return t


def _push_compressed(
    caches, example: int, idx: torch.Tensor, n_in: int, n_out: int, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """Per-example chain for fully connected nets, skipping units with ``φ' = 0``.

    Tangents of one example, ``(k, n_active)``; after an activation whose derivative vanishes on many
    units (relu, hardtanh) only the active units are kept and the next weight matrix is restricted to
    those columns — for relu both matrix dimensions halve, a 4× saving. The first layer starts from the
    columns ``W[:, idx]`` instead of multiplying the identity.
    """
    t = None
    active = None  # None: all units of the current layer
    for c in caches:
        kind = c[0]
        if kind == "linear":
            w = c[1]
            if t is None:
                t = w[:, idx].T
            else:
                t = t @ (w if active is None else w[:, active]).T
            active = None
        else:
            vec = c[1].reshape(c[1].shape[0], -1)[example] if kind == "diag" else c[1].reshape(-1)
            if t is None:  # no linear layer first: start from the identity columns
                t = torch.zeros((idx.numel(), n_in), dtype=vec.dtype, device=vec.device)
                t[torch.arange(idx.numel(), device=vec.device), idx] = 1.0
            if active is not None:
                vec = vec[active]
            if kind == "diag":
                nz = torch.nonzero(vec).reshape(-1)
                if nz.numel() < 0.75 * vec.numel():
                    t = t[:, nz] * vec[nz]
                    active = nz if active is None else active[nz]
                    continue
            t = t * vec
    if t is None:  # no layer with a non-identity Jacobian
        t = torch.zeros((idx.numel(), n_in), dtype=dtype, device=device)
        t[torch.arange(idx.numel(), device=device), idx] = 1.0
    if active is not None:
        full = torch.zeros((t.shape[0], n_out), dtype=t.dtype, device=t.device)
        full[:, active] = t
        t = full
    return t


def chained_jacobian(
    model: nn.Sequential,
    x: torch.Tensor,
    mode: str = "per_example",
    *,
    max_chunk: int | None = None,
    memory_budget: int | None = None,
) -> torch.Tensor:
    """Exact Jacobian of ``model`` at the batch ``x`` by chained layer Jacobians (module docstring).

    ``model``: a plain ``nn.Sequential`` (nested ones allowed) of the :data:`SUPPORTED_MODULES` —
    ``nn.Linear``, ``nn.Conv1d/2d/3d``, ``nn.BatchNorm1d/2d/3d``, ``nn.Flatten``/``nn.Unflatten``, dropout in
    eval mode, and the elementwise activations :data:`ELEMENTWISE_ACTIVATIONS`; a BN module in training
    mode uses batch statistics, in eval mode its running statistics. Any other module (``Softmax``,
    ``LayerNorm``, pooling, …), a module with forward hooks, a random module (dropout or ``RReLU`` in
    training mode) or another container raises ``ValueError`` naming the module (its position in the
    ``Sequential``, e.g. ``'3'`` or ``'1.0'`` when nested, and its class) and the supported types: the
    result is never a wrong Jacobian. ``x``: a floating tensor ``(B, *input_shape)``.

    * ``mode="per_example"``: returns ``(B, F_out, F_in)``, the Jacobian of each example's output with
      respect to its own input (requires no train-mode BN — otherwise examples are coupled).
    * ``mode="batch"``: returns ``(B·F_out, B·F_in)``, the Jacobian of the whole batch map, rows and columns
      ordered (example, feature); its diagonal ``F_out × F_in`` blocks are the per-example Jacobians with
      the rest of the batch held fixed.

    Tangent directions are processed in chunks of at most ``max_chunk`` (or as many as fit in
    ``memory_budget`` bytes, default 1 GiB); out-of-memory halves the chunk. Equals
    ``torch.func.jacrev`` of the same map (checked in the tests to 1e-10 in float64).
    """
    if mode not in JACOBIAN_MODES:
        raise ValueError(f"unknown mode {mode!r}; valid choices are {', '.join(map(repr, JACOBIAN_MODES))}")
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of shape (batch, *input_shape); got {type(x).__name__}")
    if not x.is_floating_point() or x.dim() < 2 or x.shape[0] < 1:
        raise ValueError(
            "x must be a floating tensor of shape (batch >= 1, *input_shape); "
            f"got dtype {x.dtype}, shape {tuple(x.shape)}"
        )
    with torch.no_grad():
        out, caches = _forward_cache(model, x)
    if mode == "per_example" and any(c[0] == "bn_train" for c in caches):
        raise ValueError("mode 'per_example' is undefined with train-mode BatchNorm (examples are coupled); use 'batch'")
    b = x.shape[0]
    in_shape = tuple(x.shape[1:])
    f_in = math.prod(in_shape)
    f_out = math.prod(out.shape[1:])
    n_dir = f_in if mode == "per_example" else b * f_in
    widest = max([f_in, f_out] + [c[1].numel() // b for c in caches if c[0] == "diag"])
    per_dir = 4 * b * widest * x.element_size()
    chunk = chunk_from_budget(per_dir, memory_budget if memory_budget is not None else _DEFAULT_BUDGET, max_chunk, n_dir)

    compress = mode == "per_example" and x.dim() == 2 and all(c[0] in ("linear", "scale", "diag") for c in caches)

    def run_compressed(idx: Sequence[int]) -> torch.Tensor:
        idx_t = torch.as_tensor(list(idx), device=x.device)
        with torch.no_grad():
            cols = [_push_compressed(caches, i, idx_t, f_in, f_out, x.dtype, x.device) for i in range(b)]
            return torch.stack(cols, dim=1)

    def run(idx: Sequence[int]) -> torch.Tensor:
        idx_t = torch.as_tensor(list(idx), device=x.device)
        k = len(idx)
        t = torch.zeros((k, b, f_in), dtype=x.dtype, device=x.device)
        rows = torch.arange(k, device=x.device)
        if mode == "per_example":
            t[rows, :, idx_t] = 1.0
        else:
            t[rows, idx_t // f_in, idx_t % f_in] = 1.0
        with torch.no_grad():
            return _push(caches, t.reshape(k, b, *in_shape)).reshape(k, b, f_out)

    t = torch.cat(run_chunked(run_compressed if compress else run, list(range(n_dir)), chunk), dim=0)  # (n_dir, B, F_out)
    if mode == "per_example":
        return t.permute(1, 2, 0).contiguous()
    return t.reshape(n_dir, b * f_out).T.contiguous()
