"""Sweep grids: the parameters a point may set, their checks, the expansion of a grid into points, and each
point's canonical description, key and seed.

A grid maps parameter names to a list of values (an axis of the result) or to one value (fixed for every
point, not an axis). A point is one value per parameter, the defaults filled in; its canonical description is
the JSON text of that mapping with sorted keys, together with the sweep's base seed, device and
:data:`SCHEMA`. The SHA-256 of that text names the point's part file and gives its seed (the first 31 bits), so
a point's numbers depend only on what the point is, never on the order, the process or the machine that
computes it.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._validate import check_choice, check_int, check_real
from .._vocabulary import ACTIVATION_ALIASES, ACTIVATIONS, INIT_ALIASES, INITS

__all__ = ["PARAMETERS", "DEFAULTS", "BATCHNORM", "SCHEMA", "Grid", "expand", "point_key", "point_seed"]

#: version of the point description and of the numbers a point records (changing either changes every key)
SCHEMA = 1
#: train-mode variants and eval mode of ``network_jacobian_spectrum``, and ``"none"`` (no batch norm)
BATCHNORM: tuple[str, ...] = ("none", "train", "train_diagonal", "eval")
#: every parameter a grid may set, with its value when the grid does not set it (``batch_size`` None:
#: the engine's default, 1 without batch norm and 16 with it; ``sigma_w2`` None: the critical value, only
#: with ``init="gaussian"``)
DEFAULTS: dict[str, Any] = {
    "depth": 4,
    "width": 64,
    "activation": "relu",
    "init": "kaiming_normal",
    "sigma_w2": None,
    "sigma_b2": 0.0,
    "batchnorm": "none",
    "batch_size": None,
    "trials": 10,
}
PARAMETERS: tuple[str, ...] = tuple(DEFAULTS)


def _check_value(name: str, value: Any) -> Any:
    """One value of parameter ``name`` in its canonical form (``ValueError`` naming it otherwise)."""
    if name == "depth":
        return check_int("depth", value, minimum=1, maximum=10_000)
    if name == "width":
        return check_int("width", value, minimum=1)
    if name == "trials":
        return check_int("trials", value, minimum=2)  # standard errors are estimated across trials
    if name == "batch_size":
        return None if value is None else check_int("batch_size", value, minimum=1)
    if name == "activation":
        return check_choice("activation", value, ACTIVATIONS, ACTIVATION_ALIASES)
    if name == "init":
        return check_choice("init", value, INITS, INIT_ALIASES)
    if name == "batchnorm":
        return check_choice("batchnorm", "none" if value is None or value is False else value, BATCHNORM)
    if name == "sigma_w2":
        return None if value is None else check_real("sigma_w2", value, low=0.0, low_inclusive=False)
    if name == "sigma_b2":
        return check_real("sigma_b2", value, low=0.0)
    raise ValueError(f"unknown sweep parameter {name!r}; valid choices are {', '.join(map(repr, PARAMETERS))}")


@dataclass(frozen=True)
class Grid:
    """A checked grid: ``axes`` (name → tuple of values, in the grid's order) and ``fixed`` (every other
    parameter's one value, defaults included)."""

    axes: dict[str, tuple[Any, ...]]
    fixed: dict[str, Any]

    def points(self) -> list[dict[str, Any]]:
        """Every point (parameter → value), the last axis varying fastest."""
        names = list(self.axes)
        return [self.fixed | dict(zip(names, values)) for values in itertools.product(*self.axes.values())]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.axes.values())


def expand(grid: Mapping[str, Any]) -> Grid:
    """Check ``grid`` (parameter → list of values, or → one value) and split it into axes and fixed values.

    Raises ``ValueError`` for an unknown parameter (naming the valid ones), a bad value, an empty or
    repeated axis, ``sigma_w2`` with an init other than ``"gaussian"`` or ``None`` inside an axis.
    """
    if not isinstance(grid, Mapping):
        raise ValueError(f"grid must be a mapping of parameter → list of values; got {type(grid).__name__}")
    axes: dict[str, tuple[Any, ...]] = {}
    fixed = dict(DEFAULTS)
    for name, values in grid.items():
        if name not in DEFAULTS:
            raise ValueError(f"unknown sweep parameter {name!r}; valid choices are {', '.join(map(repr, PARAMETERS))}")
        if isinstance(values, (list, tuple)):
            checked = tuple(_check_value(name, v) for v in values)
            if not checked:
                raise ValueError(f"grid axis {name!r} is empty; give at least one value")
            if None in checked:
                raise ValueError(f"grid axis {name!r} contains None; leave the parameter out for its default")
            if len(set(checked)) != len(checked):
                raise ValueError(f"grid axis {name!r} repeats a value: {list(checked)!r}")
            axes[name] = checked
            fixed.pop(name)
        else:
            fixed[name] = _check_value(name, values)
    inits = axes.get("init", (fixed.get("init"),))
    has_sigma = "sigma_w2" in axes or fixed.get("sigma_w2") is not None
    if has_sigma and any(i != "gaussian" for i in inits):
        raise ValueError(f"sigma_w2 sets the weight variance of init='gaussian' only; got init {list(inits)!r} "
                         "(the other schemes fix σ_w² themselves)")
    return Grid(axes, fixed)


def _canonical(point: Mapping[str, Any], seed: int, device: str) -> str:
    body = {"point": dict(sorted(point.items())), "seed": seed, "device": device, "schema": SCHEMA}
    return json.dumps(body, sort_keys=True, allow_nan=False, separators=(",", ":"))


def point_key(point: Mapping[str, Any], seed: int = 0, device: str = "cpu", distances: bool = True) -> str:
    """The point's name: 16 hex digits of the SHA-256 of its canonical description (and, when the KS and W₁
    distances are skipped, of that choice: such a record is not the same record)."""
    text = _canonical(point, seed, device) + ("" if distances else "|no-distances")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def point_seed(point: Mapping[str, Any], seed: int = 0, device: str = "cpu") -> int:
    """The point's Monte Carlo seed, in [0, 2³¹): the first 31 bits of the SHA-256 of its canonical
    description (so that it fits the 32-bit integers of netCDF-3)."""
    digest = hashlib.sha256(_canonical(point, seed, device).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFF_FFFF
