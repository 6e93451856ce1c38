"""Command line: ``rmt-init``.

``rmt-init`` with no arguments runs the main job on a small default: it prints the summary of the
Fuss–Catalan law of depth 3 (the spectrum of a product of three Gaussian matrices, Bjorck et al. 2018,
Fig. 7) and writes a figure of its squared-singular-value and singular-value densities.

``rmt-init spectrum --law {fuss-catalan,marchenko-pastur} [--depth L] [--ratio c] [--out FILE]``
does the same for any law of the foundation.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Sequence

from . import __version__
from .theory import fuss_catalan, marchenko_pastur
from .theory.laws import SpectralLaw

DEFAULT_FIGURE = "rmt_init_spectrum.png"


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


def write_figure(law: SpectralLaw, title: str, path: str) -> str:
    """Write the two-panel density figure atomically (temp file, then rename) and return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import plot

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    plot.density(law, ax=axes[0])
    plot.density(law, ax=axes[1], singular_values=True)
    axes[0].set_title("squared singular values")
    axes[1].set_title("singular values")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    suffix = os.path.splitext(path)[1] or ".png"
    with tempfile.NamedTemporaryFile(dir=directory, suffix=suffix, delete=False) as handle:
        temporary = handle.name
    try:
        fig.savefig(temporary, dpi=120)
        os.replace(temporary, path)
    finally:
        plt.close(fig)
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def _spectrum(args: argparse.Namespace) -> int:
    law, title = _law_from_args(args)
    print(title)
    for line in summary_lines(law):
        print("  " + line)
    if not args.no_plot:
        print(f"wrote {write_figure(law, title, args.out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rmt-init", description="Random-matrix theory of network initialization.")
    parser.add_argument("--version", action="version", version=f"rmt_init {__version__}")
    commands = parser.add_subparsers(dest="command")
    spectrum = commands.add_parser("spectrum", help="summarise and plot a spectral law (the default job)")
    _add_spectrum_arguments(spectrum)
    _add_spectrum_arguments(parser)  # `rmt-init` alone runs `spectrum` with its defaults
    return parser


def _add_spectrum_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--law", choices=["fuss-catalan", "marchenko-pastur"], default="fuss-catalan")
    parser.add_argument("--depth", type=int, default=3, help="number of Gaussian factors (Fuss–Catalan)")
    parser.add_argument("--ratio", type=float, default=0.5, help="p/n (Marchenko–Pastur)")
    parser.add_argument("--variance", type=float, default=1.0, help="entry variance (Marchenko–Pastur)")
    parser.add_argument("--out", default=DEFAULT_FIGURE, help=f"figure path (default {DEFAULT_FIGURE})")
    parser.add_argument("--no-plot", action="store_true", help="print the summary only")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _spectrum(args)
    except ValueError as error:  # bad input: one clear line, no traceback
        print(f"rmt-init: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
