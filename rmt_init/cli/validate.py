"""``rmt-init validate``: the validation suite (the ``validation`` package installed with rmt_init; the same as
``python -m validation`` from a checkout) — every claim of the literature the package encodes, checked against
Monte Carlo with derived tolerances; a Markdown and a self-contained HTML report, one JSON record per claim.

Options forward to :func:`validation.runner.main`: ``--size smoke|default|full``, ``--only NAME,…``,
``--resume``, ``--out DIR`` (default ``validation_results/<size>`` in the working directory), ``--device``,
``--scheduler tcp://HOST:PORT`` (each claim a task on a Dask cluster, e.g. the ``full`` size; the workers must
see ``--out``).
The arguments are checked here first, so a bad one is one line (exit status 2) before any work. ``--json``
prints ``summary.json`` (with the report paths) instead of the per-claim progress lines, which then go to
stderr. Exit status: 0 when every claim passes, 1 otherwise, 130 when interrupted (``--resume`` continues).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any

from ._common import CliError, print_json

SIZES = ("smoke", "default", "full")
DEFAULTS: dict[str, Any] = {"size": "default", "only": None, "resume": False, "out": None, "device": "auto",
                            "scheduler": None, "json": False}


def _suite() -> Any:
    try:
        import validation
        from validation import runner
    except ImportError as error:
        raise CliError(f"the validation suite is not installed with this rmt_init ({error}); "
                       "reinstall rmt_init (pip install rmt_init) or run python -m validation from a checkout")
    return validation, runner


def add_parser(commands: Any) -> None:
    none = argparse.SUPPRESS
    p = commands.add_parser(
        "validate", help="the validation suite: each claim of the literature against Monte Carlo, with derived "
        "tolerances; Markdown + HTML report",
        description=__doc__.split("\n\n", 1)[0].replace("``", ""),
        epilog="Examples:\n  rmt-init validate --size smoke\n  rmt-init validate --only network_jacobians,"
               "finite_width --out results/\n  rmt-init validate --size full --resume",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--size", choices=SIZES, default=none, help="problem sizes (default: default)")
    p.add_argument("--only", default=none, metavar="NAME[,NAME…]", help="comma-separated claims to run")
    p.add_argument("--resume", action="store_true", default=none,
                   help="skip claims whose JSON already exists with the same size and configuration")
    p.add_argument("--out", default=none, metavar="DIR", help="output folder (default validation_results/SIZE)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=none, help="torch device (default auto)")
    p.add_argument("--scheduler", default=none, metavar="ADDRESS",
                   help="run each claim as a task on a Dask cluster (tcp://HOST:PORT); the workers must see --out")
    p.add_argument("--json", action="store_true", default=none, help="print summary.json as one JSON document")
    p.set_defaults(command="validate")


def run(args: argparse.Namespace, given: set[str], status: Any) -> int:
    validation, runner = _suite()
    argv = ["--size", args.size, "--device", args.device]
    if args.only is not None:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in validation.CLAIMS]
        if unknown or not names:
            raise CliError(f"--only: unknown claim(s) {', '.join(map(repr, unknown)) or '(none given)'}; "
                           f"valid choices are {', '.join(validation.CLAIMS)}")
        argv += ["--only", ",".join(names)]
    out = args.out if args.out is not None else os.path.join("validation_results", args.size)
    if os.path.exists(out) and not os.path.isdir(out):
        raise CliError(f"--out {out!r} is a file; give a folder")
    parent = os.path.dirname(os.path.abspath(out))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CliError(f"--out {out!r}: {parent!r} is not writable")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise CliError("--device cuda: CUDA is not available here; valid choices are auto, cpu, cuda")
    if args.scheduler is not None:
        if "://" not in args.scheduler:
            raise CliError(f"--scheduler {args.scheduler!r}: give an address such as tcp://10.0.0.1:8786")
        argv += ["--scheduler", args.scheduler]
    argv += ["--out", out] + (["--resume"] if args.resume else [])
    status("running the validation suite")
    sys.stdout.flush()
    redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
    with redirect:
        code = runner.main(argv)
    if args.json:
        try:
            with open(os.path.join(out, "summary.json"), encoding="utf-8") as handle:
                summary = json.load(handle)
        except (OSError, ValueError):  # interrupted before the summary was written
            summary = {"passed": False, "interrupted": True}
        print_json({"job": "validate", "out": out, "report": os.path.join(out, "report.md"),
                    "html": os.path.join(out, "report.html"), "exit_status": code} | summary)
    return code
