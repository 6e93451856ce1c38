"""Parameter validation shared by every public entry point.

One place for the checks, so that every bad input raises a ``ValueError`` that names the
parameter, the value received and what is allowed.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping

__all__ = ["check_int", "check_real", "check_choice", "check_widths", "check_rng"]


def _is_bool(value: object) -> bool:
    return isinstance(value, bool) or type(value).__name__ == "bool_"


def check_int(name: str, value: object, minimum: int = 1, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]``; otherwise raise ``ValueError``.

    Floats with an integral value (``3.0``) are accepted; ``3.5``, NaN, booleans and strings are not.
    ``maximum`` (``None``: unbounded) is where a function would leave the float range or memory.
    """
    allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    if _is_bool(value):
        raise ValueError(f"{name} must be an integer {allowed}; got {value!r}")
    if isinstance(value, numbers.Integral):
        ivalue = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        ivalue = int(value)
    else:
        raise ValueError(f"{name} must be an integer {allowed}; got {value!r}")
    if ivalue < minimum or (maximum is not None and ivalue > maximum):
        raise ValueError(f"{name} must be an integer {allowed}; got {value!r}")
    return ivalue


def check_real(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a finite ``float`` inside the given bounds; otherwise raise ``ValueError``.

    NaN and infinities are always rejected.
    """
    allowed = _describe_interval(low, high, low_inclusive, high_inclusive)
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number {allowed}; got {value!r}")
    fvalue = float(value)
    if not math.isfinite(fvalue):
        raise ValueError(f"{name} must be a finite real number {allowed}; got {value!r}")
    if low is not None and (fvalue < low or (not low_inclusive and fvalue == low)):
        raise ValueError(f"{name} must be a real number {allowed}; got {value!r}")
    if high is not None and (fvalue > high or (not high_inclusive and fvalue == high)):
        raise ValueError(f"{name} must be a real number {allowed}; got {value!r}")
    return fvalue


def _describe_interval(low, high, low_inclusive, high_inclusive) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>=' if low_inclusive else '>'} {low:g}")
    if high is not None:
        parts.append(f"{'<=' if high_inclusive else '<'} {high:g}")
    return "(" + " and ".join(parts) + ")" if parts else "(finite)"


def _normalise_name(value: str) -> str:
    return value.strip().lower().replace("-", "_").rstrip("_")


def check_choice(
    name: str,
    value: object,
    choices: Iterable[str],
    aliases: Mapping[str, str] | None = None,
) -> str:
    """Return the canonical spelling of ``value`` among ``choices``; otherwise raise ``ValueError``.

    Matching ignores case, surrounding blanks, ``-`` versus ``_`` and a trailing underscore (so
    ``"kaiming_normal_"``, the ``torch.nn.init`` spelling, matches ``"kaiming_normal"``). ``aliases``
    maps extra accepted spellings to canonical names.
    """
    choices = tuple(choices)
    aliases = dict(aliases or {})
    if isinstance(value, str):
        key = _normalise_name(value)
        for choice in choices:
            if _normalise_name(choice) == key:
                return choice
        for alias, target in aliases.items():
            if _normalise_name(alias) == key:
                return target
    listed = ", ".join(repr(c) for c in choices)
    extra = f" (aliases: {', '.join(repr(a) for a in aliases)})" if aliases else ""
    raise ValueError(f"unknown {name} {value!r}; valid choices are {listed}{extra}")


def check_widths(name: str, widths: object, length: int | None = None) -> tuple[int, ...]:
    """Return ``widths`` as a tuple of positive ints, optionally of a given length; else ``ValueError``."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Iterable):
        raise ValueError(f"{name} must be a sequence of positive integers; got {widths!r}")
    values = tuple(widths)
    if length is not None and len(values) != length:
        raise ValueError(
            f"{name} must have {length} entries (one per layer boundary); got {len(values)}: {values!r}"
        )
    return tuple(check_int(f"{name}[{i}]", w, minimum=1) for i, w in enumerate(values))


def check_rng(name: str, rng: object) -> "numpy.random.Generator":
    """``numpy.random.default_rng(rng)`` for ``rng`` None, a nonnegative integer seed (or a sequence of
    them), a ``SeedSequence``, a ``BitGenerator`` or a ``Generator``; otherwise ``ValueError`` naming ``name``.

    numpy's own messages ("expected non-negative integer", "SeedSequence expects int …") do not say
    which argument was wrong.
    """
    import numpy as np

    valid = "None, a nonnegative integer seed, a numpy.random.SeedSequence/BitGenerator or a numpy.random.Generator"
    if _is_bool(rng) or isinstance(rng, (float, str, bytes)):
        raise ValueError(f"{name} must be {valid}; got {rng!r}")
    try:
        return np.random.default_rng(rng)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name} must be {valid}; got {rng!r}") from exc
