"""Per-module activation and gradient statistics of any ``torch.nn`` model, by forward hooks and one backward pass.

Bjorck, Gomes, Selman & Weinberger, "Understanding batch normalization", NeurIPS 2018 (arXiv 1806.02375), §3 and
Figs. 4–5: in a ResNet-110 without batch norm the activations grow with depth and the gradients of the last
layers are large and dominated by a few examples of the batch; with batch norm they are not.
:func:`model_layer_stats` measures exactly those quantities on a given model and batch.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rmt_init._validate import check_choice, check_int

from ._device import resolve_seed
from .results import _attr_value, _short

__all__ = ["MODEL_STATS", "LOSSES", "ModelStatsResult", "model_layer_stats", "default_stat_modules"]

#: Statistics per module (rows in forward order; row 0 is the model input).
MODEL_STATS: tuple[str, ...] = (
    "act_mean",
    "act_std",
    "grad_norm",
    "weight_grad_norm",
    "grad_top_k_share",
    "weight_grad_top_k_share",
)
#: Built-in losses of :func:`model_layer_stats` (or pass a callable ``output -> scalar``).
LOSSES: tuple[str, ...] = ("sum_of_outputs", "random_projection", "cross_entropy")


@dataclass
class ModelStatsResult:
    """Per-module statistics of one model on one batch (see :func:`model_layer_stats` for the definitions).

    Attributes:
        names: module names in forward order; ``names[0] == "input"`` (the model input); a module called more
            than once appears once per call, as ``"name"``, ``"name#2"``, ….
        types: the modules' class names (``"Tensor"`` for the input).
        stats: ``{name: (len(names),) float64}`` for each name in :data:`MODEL_STATS` (NaN where a statistic does
            not apply: weight-gradient statistics of modules without parameters and of the input).
        config: loss, top_k, batch size, the model's class and train/eval mode, seed, dtype, device.

    ``result["act_std"]`` is ``result.stats["act_std"]``. ``repr`` is a short summary, never the arrays.
    """

    names: tuple[str, ...]
    types: tuple[str, ...]
    stats: dict[str, np.ndarray]
    config: dict[str, object]

    def __getitem__(self, stat: str) -> np.ndarray:
        return self.stats[check_choice("stat", stat, MODEL_STATS)]

    def __len__(self) -> int:
        return len(self.names)

    def to_xarray(self):
        """An ``xarray.Dataset`` with dimension ``module`` (coordinates: names, ``module_type``); config in attrs."""
        import xarray as xr

        data = {k: (("module",), v) for k, v in self.stats.items()}
        coords = {"module": list(self.names), "module_type": (("module",), list(self.types))}
        return xr.Dataset(data, coords=coords, attrs={k: _attr_value(v) for k, v in self.config.items()})

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={_short(self.config[k])}" for k in ("model", "mode", "batch_size", "loss", "top_k")
                          if k in self.config)
        lines = [f"ModelStatsResult({shown}, modules={len(self.names) - 1})"]
        for k in ("act_std", "grad_norm", "weight_grad_top_k_share"):
            v = self.stats[k]
            ok = np.flatnonzero(np.isfinite(v))
            if ok.size:
                i, j = ok[0], ok[-1]
                lines.append(f"  {k:<24} {v[i]:.4g} ({self.names[i]}) … {v[j]:.4g} ({self.names[j]})")
        return "\n".join(lines)

    __str__ = __repr__


def default_stat_modules(model: nn.Module) -> list[str]:
    """The modules :func:`model_layer_stats` watches by default: the top-level children, where a container
    (``nn.Sequential``/``nn.ModuleList``) is replaced by its children (recursively) — so a plain ``nn.Sequential``
    gives its layers, a CIFAR ResNet ``conv1, bn1, act, layer1.0, …, layer3.{n−1}, avgpool, flatten, fc`` and a
    :class:`~rmt_init.montecarlo.ResidualMLP` its blocks ``blocks.0, …``."""

    def expand(prefix: str, module: nn.Module) -> list[str]:
        out = []
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if isinstance(child, (nn.Sequential, nn.ModuleList)):
                out.extend(expand(full + ".", child))
            else:
                out.append(full)
        return out

    names = expand("", model)
    return names if names else [""]


def _check_modules(model: nn.Module, modules: object) -> list[tuple[str, nn.Module]]:
    table = dict(model.named_modules())
    if modules is None:
        names = default_stat_modules(model)
    elif isinstance(modules, str) or not isinstance(modules, Sequence) or not modules:
        raise ValueError(f"modules must be None or a non-empty sequence of module names; got {modules!r}")
    else:
        names = list(modules)
    out = []
    for name in names:
        if not isinstance(name, str) or name not in table:
            shown = ", ".join(repr(n) for n in list(table)[:12]) + (", …" if len(table) > 12 else "")
            raise ValueError(f"unknown module name {name!r}; valid names are those of model.named_modules(): {shown}")
        out.append((name, table[name]))
    return out


def _loss_fn(loss: object, generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    if callable(loss) and not isinstance(loss, str):
        return loss
    name = check_choice("loss", loss, LOSSES)
    if name == "sum_of_outputs":
        return lambda y: y.sum()
    if name == "random_projection":

        def proj(y: torch.Tensor) -> torch.Tensor:
            u = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
            u = u / u.flatten(1).norm(dim=1).reshape((-1,) + (1,) * (u.dim() - 1))
            return (u.detach() * y).sum()

        return proj

    def cross_entropy(y: torch.Tensor) -> torch.Tensor:
        if y.dim() != 2:
            raise ValueError(f"loss='cross_entropy' needs (batch, classes) outputs; got shape {tuple(y.shape)}")
        labels = torch.randint(0, y.shape[1], (y.shape[0],), generator=generator, device=y.device)
        return nn.functional.cross_entropy(y, labels, reduction="sum")

    return cross_entropy


def _top_share(sq: torch.Tensor, k: int) -> float:
    """Share ``Σ_{k largest} s_b / Σ_b s_b`` of nonnegative per-example contributions ``s_b`` (NaN if all 0)."""
    total = float(sq.sum())
    if not total > 0 or not math.isfinite(total):
        return math.nan
    return float(torch.topk(sq, min(k, sq.numel())).values.sum()) / total


def model_layer_stats(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    modules: Sequence[str] | None = None,
    loss: str | Callable[[torch.Tensor], torch.Tensor] = "sum_of_outputs",
    top_k: int = 1,
    per_example: bool | Sequence[str] = True,
    seed: int | torch.Generator | None = 0,
) -> ModelStatsResult:
    """Activation and gradient statistics of chosen modules of ``model`` on the batch ``inputs``.

    One forward pass with forward hooks on the chosen modules records each module's output ``y`` (a tensor whose
    dimension 0 is the batch, ``B = inputs.shape[0]``); then ``ℓ = loss(model(inputs))`` is differentiated by
    ``torch.autograd.grad``. Per module, in forward order (row 0 is the input itself):

    * ``act_mean``, ``act_std``: mean and population standard deviation of all entries of ``y``;
    * ``grad_norm``: ``‖∂ℓ/∂y‖`` (Frobenius norm over the whole batch);
    * ``weight_grad_norm``: ``‖∂ℓ/∂θ‖`` over all parameters ``θ`` of the module and its submodules, computed
      through this call (``Σ`` over calls if a module is called several times); NaN without parameters;
    * ``grad_top_k_share``: with ``g_b = ∂ℓ/∂y_b`` the output gradient of example ``b``, the share
      ``Σ_{k largest} ‖g_b‖² / Σ_b ‖g_b‖²`` of the ``k = top_k`` largest examples;
    * ``weight_grad_top_k_share``: the same share for the per-example weight-gradient contributions
      ``c_b = (∂y/∂θ)ᵀ g_b`` (``Σ_b c_b = ∂ℓ/∂θ`` exactly, by linearity; in train-mode batch norm ``c_b`` is the
      part of the gradient that flows back from example ``b``'s output, batch coupling included) — the
      "dominated by few examples" statistic of Bjorck et al. 2018 (§3, Figs. 4–5). One vector-Jacobian product
      per example and module (``per_example=False`` skips it: NaN; a list of module names limits it to those).

    Equal contributions give the share ``k/B``; one dominant example gives 1.

    Args:
        model: any ``nn.Module``; it is not changed: train/eval flags are kept (train-mode BN uses batch
            statistics, as in training) and restored, buffers (BN running statistics) are restored, parameter
            ``.grad`` is not touched, and the hooks are removed even when an error occurs.
        inputs: a tensor whose dimension 0 is the batch.
        modules: module names (``model.named_modules()``); default :func:`default_stat_modules`.
        loss: ``"sum_of_outputs"`` (default, ``ℓ = Σ`` of all outputs), ``"random_projection"`` (``Σ_b u_bᵀ y_b``
            with independent uniformly random unit ``u_b``, as in ``network_layer_stats``), ``"cross_entropy"``
            (summed over the batch, against uniformly random labels), or a callable ``output → scalar tensor``.
        top_k: ``k`` of the shares (``1 ≤ k ≤ B``).
        per_example: compute ``weight_grad_top_k_share`` for every module (``True``), none (``False``) or the
            named ones (a sequence of names among ``modules``).
        seed: seeds the random direction / labels (``None``: fresh entropy, recorded in ``config``), or a
            ``torch.Generator`` on the inputs' device to draw them from (``config["seed"]`` is then ``"generator"``).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1 or inputs.shape[0] < 1:
        raise ValueError(f"inputs must be a torch.Tensor with a batch dimension 0; got {inputs!r:.80}")
    if not inputs.is_floating_point():
        raise ValueError(f"inputs must be floating point; got dtype {inputs.dtype}")
    batch = int(inputs.shape[0])
    top_k = check_int("top_k", top_k, minimum=1, maximum=batch)
    chosen = _check_modules(model, modules)
    chosen_names = [n for n, _ in chosen]
    if isinstance(per_example, bool):
        per_example_names = set(chosen_names) if per_example else set()
    elif isinstance(per_example, Sequence) and not isinstance(per_example, str):
        per_example_names = set(per_example)
        unknown = sorted(per_example_names - set(chosen_names), key=str)
        if unknown:
            raise ValueError(f"per_example names {unknown!r} are not among the watched modules {chosen_names!r}")
    else:
        raise ValueError(f"per_example must be True, False or a sequence of module names; got {per_example!r}")
    if isinstance(seed, torch.Generator):
        generator, seed = seed, "generator"
    else:
        seed = resolve_seed(seed)
        generator = torch.Generator(device=inputs.device)
        generator.manual_seed(seed)
    loss_fn = _loss_fn(loss, generator)

    flags = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    records: list[tuple[str, nn.Module, torch.Tensor, str]] = []
    calls: dict[str, int] = {}

    def make_hook(name: str):
        def hook(module: nn.Module, args: object, output: object) -> torch.Tensor:
            if not isinstance(output, torch.Tensor):
                raise ValueError(f"module {name!r} returned {type(output).__name__}; its statistics need a tensor")
            calls[name] = calls.get(name, 0) + 1
            label = name if calls[name] == 1 else f"{name}#{calls[name]}"
            records.append((label, module, output, name))
            return output.clone()  # later in-place ops act on the copy, never on the recorded output

        return hook

    handles = []
    try:
        with torch.enable_grad():
            for name, module in chosen:
                handles.append(module.register_forward_hook(make_hook(name)))
            x = inputs.detach().clone().requires_grad_(True)
            out = model(x)
            for h in handles:
                h.remove()
            handles.clear()
            if not isinstance(out, torch.Tensor):
                raise ValueError(f"model returned {type(out).__name__}; model_layer_stats needs a tensor output")
            value = loss_fn(out)
            if not isinstance(value, torch.Tensor) or value.numel() != 1:
                raise ValueError(f"loss must give a scalar tensor; got {value!r:.80}")
            outputs = [x] + [r[2] for r in records]
            grads = torch.autograd.grad(value.reshape(()), outputs, allow_unused=True, retain_graph=True)
            rows = []
            for i, (y, g) in enumerate(zip(outputs, grads)):
                module = None if i == 0 else records[i - 1][1]
                each = i > 0 and records[i - 1][3] in per_example_names
                rows.append(_row(y, g, module, batch, top_k, each))
    finally:
        for h in handles:
            h.remove()
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
        for m, flag in flags:
            m.training = flag

    arr = np.asarray(rows, dtype=np.float64)
    names = ("input",) + tuple(r[0] for r in records)
    types = ("Tensor",) + tuple(type(r[1]).__name__ for r in records)
    config = {
        "kind": "model_layer_stats",
        "model": type(model).__name__,
        "mode": "train" if model.training else "eval",
        "batch_size": batch,
        "input_shape": list(inputs.shape),
        "loss": loss if isinstance(loss, str) else getattr(loss, "__name__", "callable"),
        "top_k": top_k,
        "seed": seed,
        "dtype": str(inputs.dtype).replace("torch.", ""),
        "device": str(inputs.device),
    }
    return ModelStatsResult(names, types, {k: arr[:, j] for j, k in enumerate(MODEL_STATS)}, config)


def _row(y: torch.Tensor, g: torch.Tensor | None, module: nn.Module | None, batch: int, top_k: int,
         per_example: bool) -> list[float]:
    yd = y.detach()
    g = torch.zeros_like(yd) if g is None else g
    act_mean = float(yd.mean())
    act_std = float(yd.std(unbiased=False)) if yd.numel() > 1 else 0.0
    grad_norm = float(g.norm())
    batched = y.dim() >= 1 and y.shape[0] == batch
    share = _top_share(g.reshape(batch, -1).pow(2).sum(1), top_k) if batched else math.nan
    params = [] if module is None else [p for p in module.parameters() if p.requires_grad]
    if not params:
        return [act_mean, act_std, grad_norm, math.nan, share, math.nan]
    wg = torch.autograd.grad(y, params, grad_outputs=g, allow_unused=True, retain_graph=True)
    wnorm = math.sqrt(sum(float(t.pow(2).sum()) for t in wg if t is not None))
    wshare = math.nan
    if per_example and batched:
        contrib = torch.empty(batch, dtype=torch.float64)
        for b in range(batch):
            gb = torch.zeros_like(g)
            gb[b] = g[b]
            cb = torch.autograd.grad(y, params, grad_outputs=gb, allow_unused=True, retain_graph=True)
            contrib[b] = sum(float(t.pow(2).sum()) for t in cb if t is not None)
        wshare = _top_share(contrib, top_k)
    return [act_mean, act_std, grad_norm, wnorm, share, wshare]
