"""Where a sweep keeps its results: one small JSON file per finished point in ``<out>.parts/`` (written
atomically, so an interrupted sweep leaves whole parts only), the assembly of the parts into one
``xarray.Dataset``, and the atomic write of that dataset to netCDF (scipy engine, netCDF-3) or Zarr.

JSON keeps every float exactly (``repr`` round-trips), so a dataset assembled from parts holds the numbers the
points computed, bit for bit.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .._files import TMP_PREFIX, atomic_write, atomic_write_text
from .grid import SCHEMA, Grid
from .point import MOMENT_VARIABLES, MOMENTS, SCALARS

__all__ = ["parts_dir", "write_part", "read_part", "assemble", "write_dataset", "check_format", "output_format",
           "FORMATS"]

FORMATS = ("netcdf", "zarr")


def parts_dir(out: str | os.PathLike[str]) -> Path:
    """``<out>.parts``: the folder of the finished points of the sweep written to ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".parts")


_atomic_text = atomic_write_text


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    def one(v: Any) -> Any:
        if isinstance(v, list):
            return [one(x) for x in v]
        if isinstance(v, float) and not math.isfinite(v):
            return None if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return v

    return {k: one(v) for k, v in record.items()}


def _from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [_from_json(x) for x in value]
    if value is None:
        return math.nan
    if value in ("inf", "-inf"):
        return float(value)
    return value


def write_part(folder: Path, key: str, point: dict[str, Any], record: dict[str, Any]) -> Path:
    """Write one finished point to ``folder/<key>.json`` atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key}.json"
    body = {"schema": SCHEMA, "key": key, "point": point, "record": _jsonable(record)}
    _atomic_text(path, json.dumps(body, sort_keys=True) + "\n")
    return path


def read_part(folder: Path, key: str, point: dict[str, Any]) -> dict[str, Any] | None:
    """The stored record of ``point`` if its part exists, is readable and describes this very point."""
    try:
        body = json.loads((folder / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if body.get("schema") != SCHEMA or body.get("key") != key or body.get("point") != point:
        return None
    record = body.get("record")
    if not isinstance(record, dict) or any(name not in record for name in SCALARS + MOMENT_VARIABLES):
        return None
    return {k: _from_json(v) for k, v in record.items()}


def assemble(grid: Grid, records: Iterable[tuple[dict[str, Any], dict[str, Any]]], attrs: dict[str, Any]) -> Any:
    """One ``xarray.Dataset`` with one dimension per grid axis (and ``moment`` for the moment numbers) from
    ``(point, record)`` pairs; the fixed parameters go to ``attrs["fixed"]`` (JSON text)."""
    import xarray as xr

    names = list(grid.axes)
    shape = grid.shape
    index = {name: {v: i for i, v in enumerate(values)} for name, values in grid.axes.items()}
    scalars = {name: np.full(shape, np.nan) for name in SCALARS}
    moments = {name: np.full(shape + (MOMENTS,), np.nan) for name in MOMENT_VARIABLES}
    notes = np.full(shape, "", dtype=object)
    done = np.zeros(shape, dtype=np.int8)
    for point, record in records:
        at = tuple(index[name][point[name]] for name in names)
        for name in SCALARS:
            scalars[name][at] = record[name]
        for name in MOMENT_VARIABLES:
            moments[name][at] = record[name]
        notes[at] = record.get("note", "")
        done[at] = 1
    data: dict[str, Any] = {name: (names, values) for name, values in scalars.items()}
    data |= {name: (names + ["moment"], values) for name, values in moments.items()}
    data["note"] = (names, notes.astype(str))
    data["done"] = (names, done)
    coords: dict[str, Any] = {name: list(values) for name, values in grid.axes.items()}
    coords["moment"] = np.arange(1, MOMENTS + 1)
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs) | {"fixed": json.dumps(grid.fixed, sort_keys=True)})
    ds["seed"] = ds["seed"].fillna(-1).astype(np.int32)
    return ds


def output_format(out: str | os.PathLike[str]) -> str:
    """``"zarr"`` for a path ending in ``.zarr``, otherwise ``"netcdf"``."""
    return "zarr" if str(out).rstrip("/").endswith(".zarr") else "netcdf"


def check_format(out: str | os.PathLike[str]) -> str:
    """The format of ``out`` (:func:`output_format`); ``ValueError`` for Zarr when zarr is not installed."""
    fmt = output_format(out)
    if fmt == "zarr":
        try:
            import zarr  # noqa: F401
        except ImportError as error:
            raise ValueError(f"writing {str(out)!r} needs the zarr package (pip install zarr); "
                             "or give a netCDF path such as 'sweep.nc'") from error
    return fmt


def write_dataset(ds: Any, out: str | os.PathLike[str]) -> Path:
    """Write ``ds`` to ``out`` atomically: netCDF-3 through scipy (no netCDF4 library needed), or Zarr for a
    ``.zarr`` path (needs the ``zarr`` package); a temporary file or folder next to ``out`` is renamed onto it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if check_format(out) == "zarr":
        tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, suffix=".zarr", dir=out.parent))
        old = out.with_name(f".old-{os.getpid()}-{out.name}")
        try:
            shutil.rmtree(tmp)
            ds.to_zarr(tmp, mode="w")
            if out.exists():
                os.replace(out, old)
            os.replace(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.rmtree(old, ignore_errors=True)
        return out
    data = ds.to_netcdf(engine="scipy")  # the file's bytes (netCDF-3), written in one atomic step
    atomic_write(out, lambda handle: handle.write(bytes(data)), "wb")
    return out
