"""Command line: ``rmt-init``.

``rmt-init`` with no arguments runs the main job on a small default: it prints the summary of the
Fuss–Catalan law of depth 3 (the spectrum of a product of three Gaussian matrices, Bjorck et al. 2018,
Fig. 7) and writes a figure of its squared-singular-value and singular-value densities.

``rmt-init [spectrum] [--law {fuss-catalan,marchenko-pastur}] [--depth L] [--ratio c] [--variance v]
[--out FILE] [--scale {auto,linear,log}] [--no-plot]`` does the same for any law of the foundation.
Options may be given before or after ``spectrum``. An option that does not apply to the chosen law
(``--ratio`` with Fuss–Catalan, ``--depth`` with Marchenko–Pastur) or to the job (``--out``,
``--scale`` with ``--no-plot``) is refused, as is a figure path that cannot be written; these checks run
before any work, so an error leaves nothing printed and no file behind. Errors are one line
(``rmt-init: error: …``) and exit with status 2. When the reader of the output goes away
(``rmt-init | head -2``) the job stops quietly with status 1, as a Unix tool stopped by SIGPIPE does (the
rest of the job, the figure included, is not done).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import textwrap
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .theory import fuss_catalan, marchenko_pastur
from .theory.laws import SpectralLaw

DEFAULT_FIGURE = "rmt_init_spectrum.png"
LAWS = ("fuss-catalan", "marchenko-pastur")
SCALES = ("auto", "linear", "log")
#: the value of each option when it is not given (the parsers themselves use ``argparse.SUPPRESS``, so that a
#: subcommand's defaults never overwrite an option given before it, and so that given options are known)
DEFAULTS: dict[str, Any] = {
    "law": "fuss-catalan",
    "depth": 3,
    "ratio": 0.5,
    "variance": 1.0,
    "out": DEFAULT_FIGURE,
    "scale": "auto",
    "no_plot": False,
}
#: the laws each law-specific option applies to
_APPLIES_TO = {"depth": ("fuss-catalan",), "ratio": ("marchenko-pastur",), "variance": ("marchenko-pastur",)}
_FIGURE_OPTIONS = ("out", "scale")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line, ``prog: error: message``, exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog.split()[0]} --help)\n")


def _law_from_args(args: argparse.Namespace) -> tuple[SpectralLaw, str]:
    if args.law == "fuss-catalan":
        law = fuss_catalan(args.depth)
        title = (
            f"Fuss–Catalan law of depth {law.depth}: squared singular values of a product of "
            f"{law.depth} square Gaussian matrices (entries of variance 1/N, N → ∞)"
        )
    else:
        law = marchenko_pastur(args.ratio, args.variance)
        title = (
            f"Marchenko–Pastur law, ratio {law.ratio:g}, variance {law.variance:g}: eigenvalues of W Wᵀ/n"
        )
    return law, title


def summary_lines(law: SpectralLaw) -> list[str]:
    """The numbers users ask of a spectrum, one per line."""
    lo, hi = law.support
    lines = [
        f"support (λ)            [{lo:.6g}, {hi:.6g}]",
        f"top singular value     {math.sqrt(hi):.6g}",
        f"mean, variance of λ    {law.mean():.6g}, {law.var():.6g}",
        f"moments m1..m5         {', '.join(f'{law.moment(k):.6g}' for k in range(1, 6))}",
        f"atoms (location, mass) {list(law.atoms) if law.atoms else 'none'}",
        f"mean singular value    {law.moment(0.5):.6g}",
    ]
    quantiles = law.ppf([0.1, 0.5, 0.9])
    lines.append("quantiles of λ 10/50/90% " + ", ".join(f"{q:.6g}" for q in quantiles))
    return lines


def figure_format(path: str) -> str:
    """The image format of ``path`` (its extension; ``png`` without one), checked against matplotlib's formats.

    Raises ``ValueError`` naming the path and the supported formats.
    """
    from matplotlib.backend_bases import FigureCanvasBase

    supported = FigureCanvasBase.get_supported_filetypes()
    extension = os.path.splitext(path)[1].lstrip(".").lower() or "png"
    if extension not in supported:
        raise ValueError(
            f"--out {path!r}: unknown figure format {extension!r}; valid formats are {', '.join(sorted(supported))}"
        )
    return extension


def check_output_path(path: str) -> str:
    """Refuse, before any work, a figure path that cannot be written: an existing directory, a missing or
    non-directory parent, a parent without write permission, or an unknown format. Returns the format."""
    if not path:
        raise ValueError("--out must be a file path; got ''")
    if os.path.isdir(path):
        example = os.path.join(path, DEFAULT_FIGURE)
        raise ValueError(f"--out {path!r} is a directory; give a file path such as {example!r}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        what = "is not a directory" if os.path.exists(directory) else "does not exist"
        raise ValueError(f"--out {path!r}: the directory {os.path.dirname(path) or '.'!r} {what}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"--out {path!r}: the directory {os.path.dirname(path) or '.'!r} is not writable")
    return figure_format(path)


def write_figure(law: SpectralLaw, title: str, path: str, scale: str = "auto") -> str:
    """Write the two-panel density figure and return the path.

    The figure is written to a temporary file next to ``path`` and renamed onto it, so that ``path`` is
    never left half-written; the temporary file is created with mode 0o666 less the umask (the permissions
    of any file the user creates), not the 0o600 of :mod:`tempfile`.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot

    fmt = figure_format(path)
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.0))
    plot.density(law, ax=axes[0], scale=scale)
    plot.density(law, ax=axes[1], singular_values=True, scale=scale)
    axes[0].set_title("squared singular values", fontsize=9)
    axes[1].set_title("singular values", fontsize=9)
    fig.suptitle("\n".join(textwrap.wrap(title, 90)), fontsize=9)  # 90 characters of 9 pt fit 7 in
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    temporary = ""
    try:
        for attempt in range(100):
            candidate = os.path.join(directory, f".{base}.{os.getpid()}.{attempt}.tmp")
            try:
                descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # umask applies
            except FileExistsError:
                continue
            temporary = candidate
            break
        else:
            raise OSError(f"could not create a temporary file next to {path!r}")
        with os.fdopen(descriptor, "wb") as handle:
            fig.savefig(handle, format=fmt, dpi=150)
        os.replace(temporary, path)
    finally:
        plt.close(fig)
        if temporary and os.path.exists(temporary):
            os.unlink(temporary)
    return path


def _check_applicable(args: argparse.Namespace, given: set[str]) -> None:
    """Refuse options (``given``: the names of those on the command line) that the chosen law or job would
    ignore."""
    for name in sorted(given & set(_APPLIES_TO)):
        if args.law not in _APPLIES_TO[name]:
            laws = " or ".join(f"--law {law}" for law in _APPLIES_TO[name])
            raise ValueError(f"--{name} applies to {laws}, not to --law {args.law}")
    if args.no_plot:
        for name in _FIGURE_OPTIONS:
            if name in given:
                raise ValueError(f"--{name} sets the figure, which --no-plot does not write")


def _spectrum(args: argparse.Namespace, law: SpectralLaw, title: str) -> int:
    print(title)
    for line in summary_lines(law):
        print("  " + line)
    if not args.no_plot:
        print(f"wrote {write_figure(law, title, args.out, scale=args.scale)}")
    return 0


def _add_spectrum_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the spectrum job, all with ``argparse.SUPPRESS`` defaults (see :data:`DEFAULTS`)."""
    none = argparse.SUPPRESS
    parser.add_argument("--law", choices=LAWS, default=none, help=f"the spectral law (default {DEFAULTS['law']})")
    parser.add_argument("--depth", type=int, default=none,
                        help=f"number of Gaussian factors, fuss-catalan only (default {DEFAULTS['depth']})")
    parser.add_argument("--ratio", type=float, default=none,
                        help=f"p/n, marchenko-pastur only (default {DEFAULTS['ratio']})")
    parser.add_argument("--variance", type=float, default=none,
                        help=f"entry variance, marchenko-pastur only (default {DEFAULTS['variance']})")
    parser.add_argument("--out", default=none,
                        help=f"figure path; its extension sets the format (default {DEFAULT_FIGURE})")
    parser.add_argument("--scale", choices=SCALES, default=none,
                        help="figure x-axis: linear in λ, or log with the density of ln λ; auto picks log when the "
                        "middle 80%% of the law spans more than 7 decades: fuss-catalan from --depth 6 (default auto)")
    parser.add_argument("--no-plot", action="store_true", default=none, help="print the summary only")


def build_parser() -> argparse.ArgumentParser:
    """``rmt-init [options] [spectrum [options]]``: the options are shared (a parent parser), so they may be
    given on either side of ``spectrum``; an option given after it wins."""
    options = _Parser(add_help=False)
    _add_spectrum_arguments(options)
    parser = _Parser(
        prog="rmt-init", description="Random-matrix theory of network initialization.", parents=[options]
    )
    parser.add_argument("--version", action="version", version=f"rmt_init {__version__}")
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    commands.add_parser(
        "spectrum", parents=[options], help="summarise and plot a spectral law (the default job)",
        description="Summarise and plot a spectral law (what rmt-init does without a subcommand).",
    )
    return parser


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
    given = {name for name in DEFAULTS if hasattr(args, name)}
    for name in set(DEFAULTS) - given:
        setattr(args, name, DEFAULTS[name])
    try:
        _check_applicable(args, given)
        if not args.no_plot:
            check_output_path(args.out)
        law, title = _law_from_args(args)  # invalid parameters refused before anything is printed
    except ValueError as error:  # bad input: one clear line, no traceback
        print(f"rmt-init: error: {error}", file=sys.stderr)
        return 2
    try:
        status = _spectrum(args, law, title)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        return _exit_quietly_on_broken_pipe()
    except OSError as error:  # e.g. the disk filled up while writing the figure
        print(f"rmt-init: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
