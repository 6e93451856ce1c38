"""``rmt-init sweep``: a grid of network configurations → torch Monte Carlo, the theory and the comparison
numbers at every point (:func:`rmt_init.sweep`), in one ``xarray.Dataset`` written to netCDF (``.nc``) or Zarr
(``.zarr``), with a Markdown and a self-contained HTML report next to it.

The grid comes from a TOML file (``--grid FILE``: a ``[grid]`` table, or top-level keys, mapping each parameter
to a list of values — an axis — or to one value) and/or from flags with comma-separated values
(``--depth 2,4,8 --width 64``); a flag replaces the file's entry. Each finished point is kept in
``<out>.parts/``: an interrupted sweep (Ctrl-C, a lost machine) continues where it stopped when rerun
(``--no-resume`` recomputes). ``--processes [N]`` runs the points on a local process pool, ``--scheduler
tcp://HOST:PORT`` on a Dask cluster (``dask scheduler`` / ``dask worker``, dask-jobqueue, dask-kubernetes).
"""
from __future__ import annotations

import argparse
import json
import os
import tomllib
from pathlib import Path
from typing import Any

from ..report_html import number as fmt
from ._common import CliError, check_writable, print_json

DEFAULT_OUT = "rmt_init_sweep.nc"
DEFAULTS: dict[str, Any] = {
    "grid": None, "depth": None, "width": None, "activation": None, "init": None, "sigma_w2": None,
    "sigma_b2": None, "batchnorm": None, "batch_size": None, "trials": None,
    "out": DEFAULT_OUT, "scheduler": None, "processes": False, "seed": 0, "device": "cpu",
    "no_resume": False, "no_report": False, "no_distances": False, "json": False,
}
#: grid flags and how one comma-separated item is read
_FLAGS: dict[str, Any] = {"depth": int, "width": int, "activation": str, "init": str, "sigma_w2": float,
                          "sigma_b2": float, "batchnorm": str, "batch_size": int, "trials": int}


def _list_of(kind: Any, flag: str) -> Any:
    def parse(text: str) -> list[Any]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"expected comma-separated values such as 2,4,8; got {text!r}")
        try:
            return [kind(item) for item in items]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {'integers' if kind is int else 'numbers'} such as "
                f"{'2,4,8' if kind is int else '0.5,1.0'}; got {text!r}")

    return parse


def _processes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of worker processes such as 4; got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 worker process; got {value}")
    return value


def add_parser(commands: Any) -> None:
    none = argparse.SUPPRESS
    p = commands.add_parser(
        "sweep", help="a grid of configurations (TOML file or flags) → Monte Carlo + theory at every point, "
        "one xarray dataset (netCDF/Zarr), resumable; local processes or a Dask cluster",
        description=__doc__.split("\n\n", 1)[1].replace("``", "") if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Examples:\n  rmt-init sweep --depth 2,4,8 --width 64,128 --activation relu,tanh --trials 10\n"
               "  rmt-init sweep --grid grid.toml --out results.nc --processes 4\n"
               "  rmt-init sweep --grid grid.toml --scheduler tcp://10.0.0.1:8786\n"
               "grid.toml:\n  [grid]\n  depth = [2, 4, 8]\n  width = 128\n  init = [\"kaiming_normal\", "
               "\"orthogonal\"]\n  batchnorm = [\"none\", \"train\"]\n",
    )
    p.add_argument("--grid", default=none, metavar="FILE.toml", help="TOML file with a [grid] table")
    for name, kind in _FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", type=_list_of(kind, name), default=none, metavar="V[,V…]",
                       help=f"values of {name} (an axis of the dataset)")
    p.add_argument("--out", default=none, metavar="FILE",
                   help=f"dataset path, .nc (netCDF, default {DEFAULT_OUT}) or .zarr; reports FILE-stem .md/.html")
    p.add_argument("--scheduler", default=none, metavar="ADDRESS", help="Dask scheduler, e.g. tcp://10.0.0.1:8786")
    p.add_argument("--processes", nargs="?", const=True, type=_processes, default=none, metavar="N",
                   help="run on a local process pool (N workers; default one per CPU)")
    p.add_argument("--seed", type=int, default=none, help="base seed of the per-point seeds (default 0)")
    p.add_argument("--device", choices=("cpu", "cuda"), default=none, help="torch device (default cpu)")
    p.add_argument("--no-resume", action="store_true", default=none,
                   help="recompute points already written in OUT.parts/")
    p.add_argument("--no-report", action="store_true", default=none, help="do not write the .md/.html reports")
    p.add_argument("--no-distances", action="store_true", default=none,
                   help="skip KS and W1 (minutes a point for smooth laws such as tanh's); moments and edge stay")
    p.add_argument("--json", action="store_true", default=none, help="print the results as one JSON document")
    p.set_defaults(command="sweep")


def read_grid(path: str) -> dict[str, Any]:
    """The grid of a TOML file: its ``[grid]`` table, or its top-level keys."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise CliError(f"--grid {path!r}: {error.strerror or error}")
    except tomllib.TOMLDecodeError as error:
        raise CliError(f"--grid {path!r}: not valid TOML: {error}")
    grid = data.get("grid", data)
    if not isinstance(grid, dict):
        raise CliError(f"--grid {path!r}: [grid] must be a table of parameter = [values]")
    return dict(grid)


def run(args: argparse.Namespace, given: set[str], status: Any) -> int:
    from ..sweeps import expand, sweep
    from ..sweeps.report import HEADERS, rows

    grid: dict[str, Any] = read_grid(args.grid) if args.grid else {}
    for name in _FLAGS:
        if getattr(args, name) is not None:
            grid[name] = getattr(args, name)
    if not grid:
        raise CliError("no grid: give --grid FILE.toml or at least one of "
                       + ", ".join(f"--{n.replace('_', '-')}" for n in _FLAGS))
    expand(grid)  # bad parameters and values: one line, before any work
    out = Path(args.out)
    if not (str(out).endswith(".nc") or str(out).rstrip("/").endswith(".zarr")):
        raise CliError(f"--out {args.out!r}: give a .nc (netCDF) or .zarr path")
    if str(out).endswith(".nc"):
        check_writable(str(out), "--out", "sweep.nc")
    else:  # a Zarr store is a folder: an existing one is replaced on completion
        parent = out.parent
        if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
            raise CliError(f"--out {args.out!r}: the folder {str(parent)!r} does not exist or is not writable")
    if args.scheduler is not None and "://" not in args.scheduler:
        raise CliError(f"--scheduler {args.scheduler!r}: give an address such as tcp://10.0.0.1:8786")
    if args.scheduler is not None and "processes" in given:
        raise CliError("--processes and --scheduler exclude each other: give one")
    status(f"sweeping {'on ' + args.scheduler if args.scheduler else 'locally'}")
    ds = sweep(grid, out=out, scheduler=args.scheduler, processes=args.processes, resume=not args.no_resume,
               seed=args.seed, device=args.device, distances=not args.no_distances, report=not args.no_report,
               progress="auto")
    stem = out.with_suffix("")
    reports = [] if args.no_report else [str(stem) + ".md", str(stem) + ".html"]
    table = rows(ds)
    if args.json:
        print_json({"job": "sweep", "out": str(out), "reports": reports, "parts": str(out) + ".parts",
                    "points": [dict(zip(HEADERS, row)) for row in table],
                    "fixed": json.loads(ds.attrs["fixed"]), "axes": {a: ds[a].values.tolist() for a in
                                                                     ds.attrs["axes"].split(",") if a},
                    "computed": ds.attrs["computed"], "resumed": ds.attrs["resumed"], "seconds": ds.attrs["seconds"]})
        return 0
    print(f"sweep: {len(table)} points ({ds.attrs['computed']} computed, {ds.attrs['resumed']} resumed) in "
          f"{ds.attrs['seconds']:.1f} s")
    w = max(len("point"), *(len(row[0]) for row in table))
    print(f"{'point':<{w}} {'λmax theory':>11} {'λmax torch':>11} {'± SE':>8} {'KS':>7} {'edge err':>9}")
    for row in table:
        print(f"{row[0]:<{w}} {fmt(row[1]):>11} {fmt(row[2]):>11} {fmt(row[3], 2):>8} {fmt(row[10], 3):>7} "
              f"{fmt(row[11], 3):>9}")
    print(f"wrote {out}" + (f", {reports[0]}, {reports[1]}" if reports else ""))
    return 0
