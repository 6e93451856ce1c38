"""Command line: ``rmt-init`` (also ``python -m rmt_init``).

``rmt-init`` with no subcommand runs the main job (:mod:`rmt_init.cli.main_job`): the predicted Jacobian law of
a deep ReLU network (depth 10, width 256, ``kaiming_normal_``) against real ``torch.nn`` networks, without and
with train-mode batch norm; it prints a table of checks with their tolerances and verdicts and writes one
figure (``--out``, default ``rmt_init_main.png``; ``--no-plot``; ``--json``). Its exit status is 0 when every
check passes, 1 otherwise.

Subcommands (one module each, ``rmt-init SUBCOMMAND --help``):

* ``law`` (:mod:`~rmt_init.cli.law`): summary and figure of one law — ``jacobian_spectrum``, Fuss–Catalan,
  Marchenko–Pastur; ``spectrum`` is the same with Fuss–Catalan as default;
* ``compare`` (:mod:`~rmt_init.cli.compare`): a network configuration → Monte Carlo, theory, the comparison
  numbers and a figure;
* ``audit`` (:mod:`~rmt_init.cli.audit`): every ``torch.nn.init`` scheme × activation at a depth, as a table
  (terminal, CSV, Markdown) and a heat map;
* ``sweep`` (:mod:`~rmt_init.cli.sweep`): a grid (TOML file or flags) → Monte Carlo and theory at every point,
  one xarray dataset (netCDF/Zarr) and an HTML report, resumable, on local processes or a Dask cluster;
* ``validate`` (:mod:`~rmt_init.cli.validate`): the validation suite, with its Markdown and HTML report.

Every job checks its arguments before any work: a bad value, an option the job would ignore, or an output path
that cannot be written is one line on stderr (``rmt-init: error: …``) with exit status 2, and nothing is
printed or written. Files are written atomically (a temporary file renamed onto the path). ``--json`` prints
one JSON document instead of the text. Progress of long work goes to stderr, only on a terminal. When the
reader of the output goes away (``rmt-init | head -2``) the job stops quietly with status 1, as a Unix tool
stopped by SIGPIPE does.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from .. import __version__
from . import audit, compare, law, sweep, validate
from ._common import (
    PROG,
    CliError,
    Parser,
    add_output_arguments,
    check_output_path,
    figure_format,
    given,
    print_json,
    refuse_figure_options,
    save_figure,
)
from .law import summary_lines

__all__ = ["main", "build_parser", "figure_format", "check_output_path", "summary_lines", "MAIN_FIGURE"]

MAIN_FIGURE = "rmt_init_main.png"
MAIN_DEFAULTS: dict[str, Any] = {"out": MAIN_FIGURE, "no_plot": False, "json": False}

_DESCRIPTION = """\
Random-matrix theory of neural-network initialization: predicted Jacobian spectra against real torch networks.

Without a subcommand, rmt-init runs the main job: the predicted Jacobian law of a depth-10, width-256 ReLU
network (kaiming_normal_) against real torch networks, without and with batch norm (train mode): a table of
checks with tolerances and verdicts, and one figure (--out, default rmt_init_main.png); about 20 s of CPU time.
"""
_EPILOG = """\
Every subcommand has --help and --json; those that draw take --out FILE and --no-plot. Examples:
  rmt-init law --depth 50 --activation tanh --init xavier_normal
  rmt-init compare --depth 6 --width 128 --activation tanh --init orthogonal
  rmt-init audit --depth 50 --markdown audit.md
  rmt-init sweep --depth 2,4,8 --width 64,128 --init kaiming_normal,orthogonal --out sweep.nc
  rmt-init validate --size smoke
"""


def build_parser() -> argparse.ArgumentParser:
    """``rmt-init [--out FILE] [--no-plot] [--json] [SUBCOMMAND [options]]``."""
    parser = Parser(prog=PROG, description=_DESCRIPTION, epilog=_EPILOG,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"rmt_init {__version__}")
    add_output_arguments(parser, MAIN_FIGURE, "print the main job's results as one JSON document")
    commands = parser.add_subparsers(title="subcommands", metavar="{law,compare,audit,sweep,validate,spectrum}",
                                     parser_class=Parser)
    law.add_parsers(commands, Parser)
    compare.add_parser(commands)
    audit.add_parser(commands)
    sweep.add_parser(commands)
    validate.add_parser(commands)
    return parser


def status(message: str) -> None:
    """Say what long work is under way, on stderr, only on a terminal (never in captured or piped output)."""
    if sys.stderr.isatty():
        print(f"rmt-init: {message}…", file=sys.stderr, flush=True)


def _run_main(args: argparse.Namespace, names: set[str]) -> int:
    from . import main_job

    refuse_figure_options(args, names, ("out",))
    if not args.no_plot:
        check_output_path(args.out)
    status("sampling torch networks and computing the laws")
    result = main_job.run(progress="auto")
    passed = all(ch.passed for ch in result.checks if ch.passed is not None)
    if not args.json:
        print("\n".join(main_job.lines(result)))
        sys.stdout.flush()
    figure = None
    if not args.no_plot:
        status("drawing the figure")
        figure = save_figure(main_job.draw(result), args.out)
    if args.json:
        print_json(main_job.record(result) | {"figure": figure})
    elif figure:
        print(f"wrote {figure}")
    return 0 if passed else 1


def _exit_quietly_on_broken_pipe() -> int:
    """The reader of stdout went away (``rmt-init | head``): stop without a traceback. stdout is pointed
    at devnull so that Python's final flush does not raise again (the recipe of the Python documentation,
    "Note on SIGPIPE" in the signal module)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (e.g. captured)
        pass
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rmt-init`` with ``argv`` (default: the command line); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a one-line argparse error
        return stop.code if isinstance(stop.code, int) else 2
    command = getattr(args, "command", None)
    try:
        if command is None:
            names = given(args, MAIN_DEFAULTS)
            code = _run_main(args, names)
        elif command in ("law", "spectrum"):
            names = given(args, {**law.DEFAULTS, "law": args.default_law})
            code = law.run(args, names, status)
        else:
            module = {"compare": compare, "audit": audit, "sweep": sweep, "validate": validate}[command]
            names = given(args, module.DEFAULTS)
            code = module.run(args, names, status)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        return _exit_quietly_on_broken_pipe()
    except (CliError, ValueError) as error:  # bad input: one clear line, no traceback
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. the disk filled up while writing a file
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
