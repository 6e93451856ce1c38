"""A model, an input batch and two internal points, as a function of the tensor at the first point.

``model_jacobian_spectrum`` differentiates the map from the tensor at a *start* point of a forward pass to
the tensor at an *end* point. A point is named after a submodule (``model.named_modules()``):
``"layer2"`` (or ``"layer2:output"``) is the output of submodule ``layer2`` (the first element when it
returns a tuple, as ``nn.MultiheadAttention`` does), ``"layer2:input"`` its first positional input;
``None`` is the model's input (start) or output (end).

The map is evaluated by running the whole model on the inputs with forward hooks: the start tensor is
*substituted* by the differentiated variable (a forward hook returning it replaces the module's output; a
forward pre-hook replaces the first positional argument), and the end tensor is captured and the forward
pass stopped there by raising a private exception. So the Jacobian is the partial derivative of the end
tensor with respect to the start tensor: anything computed before the start point that reaches the end by
another path (a skip connection around the start) is held fixed at its value for these inputs. In
particular a module's *output* is substituted in all its later uses, but ``"name:input"`` replaces the
tensor only as that module's argument: in ``h = h + block(h)``, ``start="block:input"`` differentiates
through ``block`` alone (the skip keeps its value), while the output of the module that produced ``h``
differentiates through both paths.

Hooks only ever go on the engine's private copy of the model, never on the user's.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

__all__ = ["Point", "parse_point", "ModelFunction"]

_KINDS = ("input", "output")
_SHOWN_NAMES = 30


@dataclass(frozen=True)
class Point:
    """A tensor of the forward pass: the ``kind`` (``"input"``/``"output"``) of submodule ``name``."""

    name: str
    kind: str

    def __str__(self) -> str:
        return f"{self.name}:{self.kind}"


def _valid_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def _names_text(names: list[str]) -> str:
    if not names:
        return "none (the model has no submodules; use None for the model's input/output)"
    shown = ", ".join(repr(n) for n in names[:_SHOWN_NAMES])
    more = f", … ({len(names)} in all)" if len(names) > _SHOWN_NAMES else ""
    return shown + more


def parse_point(model: nn.Module, which: str, value: object) -> Point | None:
    """``None`` or a :class:`Point` for ``value`` (``"name"``, ``"name:output"``, ``"name:input"``).

    Raises ``ValueError`` naming ``which`` (``"start"``/``"end"``), the value and the valid names.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{which} must be None or a submodule name (str); got {value!r}")
    name, kind = value, "output"
    if ":" in value:
        name, kind = value.rsplit(":", 1)
        kind = kind.strip().lower()
        if kind not in _KINDS:
            raise ValueError(
                f"unknown {which} {value!r}: the part after ':' must be 'input' or 'output'; got {kind!r}"
            )
    names = _valid_names(model)
    if name not in names:
        raise ValueError(
            f"unknown {which} {value!r}: no submodule named {name!r}; valid names (from model.named_modules()) are "
            f"{_names_text(names)}, each optionally followed by ':input' or ':output'"
        )
    return Point(name, kind)


class _PointError(ValueError):
    """A point of the forward pass that cannot be used (raised from a hook, passed through unchanged)."""


class _Stop(Exception):
    """Raised by the end hook to stop the forward pass; carries the end tensor."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__("end point reached")
        self.value = value


def _first_tensor(value: object, where: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    raise _PointError(f"{where} is not a tensor (nor a tuple whose first element is one): {type(value).__name__}")


def _replace_first(value: object, new: torch.Tensor) -> object:
    if isinstance(value, torch.Tensor):
        return new
    return type(value)([new, *value[1:]]) if isinstance(value, list) else (new, *value[1:])


class ModelFunction:
    """``z ↦ end tensor`` of ``model`` run on ``inputs`` with the start tensor replaced by ``z``.

    ``model`` must be the engine's private copy (hooks are added to it while a function runs).
    Construction runs one probing forward pass (no gradients) that records the start tensor
    :attr:`start_value` ``(B, *s)`` and the end tensor's shape ``(B, *e)``; errors of the model on these
    inputs, points never reached, a start reached after the end or more than once before it, raise
    ``ValueError``.
    """

    def __init__(self, model: nn.Module, inputs: torch.Tensor, start: Point | None, end: Point | None) -> None:
        self.model = model
        self.inputs = inputs
        self.start = start
        self.end = end
        modules = dict(model.named_modules())
        self._start_module = modules[start.name] if start is not None else None
        self._end_module = modules[end.name] if end is not None else None
        events: list[str] = []
        seen: dict[str, torch.Tensor] = {}

        def record_start(value: object) -> None:
            events.append("start")
            seen.setdefault("start", _first_tensor(value, f"start point {start}").detach())

        with torch.no_grad():
            try:
                out = self._run(inputs, None, on_start=record_start, on_end=lambda: events.append("end"))
            except _PointError:
                raise
            except Exception as exc:  # the model's own error on these inputs (shape, dtype, …)
                raise ValueError(
                    f"the model raised {type(exc).__name__} on inputs of shape {tuple(inputs.shape)} "
                    f"(dtype {inputs.dtype}): {exc}"
                ) from exc
        if end is not None and "end" not in events:
            raise ValueError(f"end point {end} is never reached in the forward pass (submodule not called)")
        if start is not None:
            before_end = events[: events.index("end")] if "end" in events else events
            n_start = before_end.count("start")
            if n_start == 0:
                raise ValueError(
                    f"start point {start} is not reached before the end point {end or 'the model output'} in the "
                    "forward pass (it comes after it, or its submodule is never called)"
                )
            if n_start > 1:
                raise ValueError(
                    f"start point {start} is reached {n_start} times before the end point (a submodule called "
                    "several times): which one to differentiate is ambiguous; name a submodule called once"
                )
            self.start_value = seen["start"]
        else:
            self.start_value = inputs.detach()
        self.end_shape = tuple(out.shape)
        if not self.start_value.is_floating_point():
            raise ValueError(
                f"the start tensor has dtype {self.start_value.dtype}: only floating tensors can be differentiated "
                "(integer inputs, e.g. token ids, need start= an internal point such as an embedding's output)"
            )

    # -- running with hooks ----------------------------------------------------------------------------
    def _run(
        self,
        x: torch.Tensor,
        z: torch.Tensor | None,
        *,
        on_start: Callable[[object], None] | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> torch.Tensor:
        """Run the model on ``x``; substitute ``z`` at the start point (if given); return the end tensor."""
        handles = []
        start, end = self.start, self.end

        def start_output_hook(module, args, output):
            if on_start is not None:
                on_start(output)
            return _replace_first(output, z) if z is not None else None

        def start_input_hook(module, args):
            if not args:
                raise _PointError(f"start point {start} has no positional input")
            if on_start is not None:
                on_start(args)
            return _replace_first(tuple(args), z) if z is not None else None

        def end_output_hook(module, args, output):
            if on_end is not None:
                on_end()
            raise _Stop(_first_tensor(output, f"end point {end}"))

        def end_input_hook(module, args):
            if not args:
                raise _PointError(f"end point {end} has no positional input")
            if on_end is not None:
                on_end()
            raise _Stop(_first_tensor(args, f"end point {end}"))

        try:
            # the start hook goes first, so that start == end (same module) substitutes before capturing
            if start is not None:
                m = self._start_module
                handles.append(
                    m.register_forward_pre_hook(start_input_hook)
                    if start.kind == "input"
                    else m.register_forward_hook(start_output_hook)
                )
            if end is not None:
                m = self._end_module
                handles.append(
                    m.register_forward_pre_hook(end_input_hook)
                    if end.kind == "input"
                    else m.register_forward_hook(end_output_hook)
                )
            try:
                out = self.model(z if (start is None and z is not None) else x)
            except _Stop as stop:
                return stop.value
            return _first_tensor(out, "the model's output")
        finally:
            for h in handles:
                h.remove()

    # -- the functions that are differentiated ---------------------------------------------------------------
    def batch(self, z: torch.Tensor) -> torch.Tensor:
        """The whole batch map: ``z`` of shape ``(B, *s)`` → end tensor ``(B, *e)``."""
        return self._run(self.inputs, z)

    def example(self, x_i: torch.Tensor, z_i: torch.Tensor) -> torch.Tensor:
        """One example's map (for ``torch.func.vmap``): ``z_i`` ``(*s)`` → end ``(*e)``, the model run on
        ``x_i[None]`` (a batch of one) with ``z_i[None]`` at the start point."""
        out = self._run(x_i.unsqueeze(0), z_i.unsqueeze(0))
        return out.squeeze(0)

    def flat_example(self, i: int) -> Callable[[torch.Tensor], torch.Tensor]:
        """Example ``i``'s map on flat vectors ``(n_in,) → (n_out,)`` (for the matrix-free operators)."""
        x_i = self.inputs[i]
        shape = tuple(self.start_value.shape[1:])
        return lambda v: self.example(x_i, v.reshape(shape)).reshape(-1)

    def flat_batch(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The batch map on flat vectors ``(B·n_in,) → (B·n_out,)``."""
        shape = tuple(self.start_value.shape)
        return lambda v: self.batch(v.reshape(shape)).reshape(-1)
