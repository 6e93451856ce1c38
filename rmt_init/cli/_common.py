"""What every subcommand of ``rmt-init`` shares: the one-line-error parser, output-path checks, atomic
figure writes, JSON output and the refusal of options a job would ignore."""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import numpy as np

from .. import _files
from .._files import jsonable

PROG = "rmt-init"


class CliError(ValueError):
    """Bad input found by a subcommand: printed as one line ``rmt-init: error: …``, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``prog: error: message``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def add_output_arguments(parser: argparse.ArgumentParser, figure: str | None, json_help: str) -> None:
    """``--out FILE`` and ``--no-plot`` (when the job draws ``figure``) and ``--json``; defaults suppressed so
    that the job knows which were given (see :func:`given`)."""
    none = argparse.SUPPRESS
    if figure is not None:
        parser.add_argument("--out", default=none, metavar="FILE",
                            help=f"figure path; its extension sets the format (default {figure})")
        parser.add_argument("--no-plot", action="store_true", default=none, help="do not draw the figure")
    parser.add_argument("--json", action="store_true", default=none, help=json_help)


def add_network_arguments(parser: Any, bias_help: str = "bias variance σ_b² (default 0)") -> None:
    """The options that pick a network's activation and initialisation (``law``, ``spectrum``, ``compare``), with
    suppressed defaults; :func:`default_init` resolves ``--init`` from them."""
    none = argparse.SUPPRESS
    parser.add_argument("--activation", default=none,
                        help="torch.nn activation name: linear, relu, leaky_relu, tanh, hardtanh, erf, sigmoid, "
                        "selu, gelu (default relu)")
    parser.add_argument("--init", default=none,
                        help="torch.nn.init scheme: kaiming_normal, xavier_uniform, orthogonal, torch_default, … "
                        "(default kaiming_normal unless --weights or --sigma-w2 is given)")
    parser.add_argument("--init-arg", type=parse_keyword, action="append", default=none, metavar="NAME=VALUE",
                        help="keyword argument of the init scheme, e.g. gain=1.5, mode=fan_out (repeatable)")
    parser.add_argument("--weights", choices=("gaussian", "orthogonal"), default=none,
                        help="weight ensemble instead of --init (with --sigma-w2; default: its critical value)")
    parser.add_argument("--sigma-w2", type=float, default=none, help="weight variance σ_w² (with --weights)")
    parser.add_argument("--sigma-b2", type=float, default=none, help=bias_help)


def default_init(args: argparse.Namespace) -> str | None:
    """``--init``, or kaiming_normal when none of --init, --weights, --sigma-w2 is given."""
    if args.init is None and args.weights is None and args.sigma_w2 is None:
        return "kaiming_normal"
    return args.init


def given(args: argparse.Namespace, defaults: dict[str, Any]) -> set[str]:
    """Fill the defaults of the options not given and return the names of those given."""
    names = {name for name in defaults if hasattr(args, name)}
    for name in set(defaults) - names:
        setattr(args, name, defaults[name])
    return names


def refuse_figure_options(args: argparse.Namespace, names: set[str], options: Iterable[str]) -> None:
    """``--out``/``--scale``… with ``--no-plot`` would be ignored: refuse them."""
    if getattr(args, "no_plot", False):
        for name in options:
            if name in names:
                raise CliError(f"--{name.replace('_', '-')} sets the figure, which --no-plot does not write")


def figure_format(path: str) -> str:
    """The image format of ``path`` (its extension; ``png`` without one), checked against matplotlib's formats.

    Raises ``ValueError`` naming the path and the supported formats.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()
    extension = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    if extension not in supported:
        raise CliError(
            f"--out {path!r}: unknown figure format {extension!r}; valid formats are {', '.join(sorted(supported))}"
        )
    return extension


def check_writable(path: str, option: str = "--out", example: str = "figure.png") -> None:
    """Refuse, before any work, a path that cannot be written: empty, an existing directory, a missing or
    non-directory parent, a parent without write permission."""
    if not path:
        raise CliError(f"{option} must be a file path; got ''")
    if os.path.isdir(path):
        raise CliError(f"{option} {path!r} is a directory; give a file path such as {os.path.join(path, example)!r}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise CliError(f"{option} {path!r}: the directory {os.path.dirname(path) or '.'!r} {what}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise CliError(f"{option} {path!r}: the directory {os.path.dirname(path) or '.'!r} is not writable")


def check_output_path(path: str, example: str = "figure.png") -> str:
    """:func:`check_writable` for a figure, plus its format (returned)."""
    check_writable(path, "--out", example)
    return figure_format(path)


def atomic_write(path: str, write: Callable[[Any], None], binary: bool = True) -> str:
    """Call ``write(handle)`` on a temporary file next to ``path`` and rename it onto ``path``
    (:func:`rmt_init._files.atomic_write`: never half-written; mode 0o666 less the umask)."""
    _files.atomic_write(path, write, "wb" if binary else "w")
    return path


def save_figure(fig: Any, path: str, dpi: int = 150) -> str:
    """Write a matplotlib figure atomically (:func:`atomic_write`) in the format of ``path``'s extension and
    close it."""
    import matplotlib.pyplot as plt

    fmt = figure_format(path)
    try:
        return atomic_write(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi))
    finally:
        plt.close(fig)


def use_agg() -> None:
    """Draw off-screen (the command line never opens a window)."""
    import matplotlib

    matplotlib.use("Agg")


def print_json(record: dict[str, Any]) -> None:
    """One JSON document on stdout (non-finite numbers as ``null``)."""
    json.dump(jsonable(record), sys.stdout, indent=2, ensure_ascii=False, allow_nan=False)
    sys.stdout.write("\n")


def parse_widths(text: str) -> tuple[int, ...]:
    """``"784,512,10"`` → ``(784, 512, 10)`` (argparse type; a bad item is a one-line error)."""
    try:
        return tuple(int(item) for item in text.replace(" ", "").split(",") if item)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers such as 784,512,10; got {text!r}")


def parse_keyword(text: str) -> tuple[str, Any]:
    """``"mode=fan_out"`` / ``"gain=1.5"`` → ``("mode", "fan_out")`` / ``("gain", 1.5)`` (argparse type)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE such as gain=1.5 or mode=fan_out; got {text!r}")
    value = value.strip()
    try:
        number: Any = float(value)
        return key.strip(), int(number) if number.is_integer() and value.lstrip("+-").isdigit() else number
    except ValueError:
        return key.strip(), value


def fmt(value: float | None, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (``—`` for None)."""
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}"
