"""``rmt-init law``: summarise and plot one spectral law — the Jacobian law of a deep network
(``jacobian_spectrum``), a Fuss–Catalan law or a Marchenko–Pastur law.

``rmt-init spectrum`` is the same command with ``--law fuss-catalan`` as its default (the job ``rmt-init``
ran before the main job existed). An option that does not apply to the chosen law (``--ratio`` with a
Jacobian law, ``--activation`` with Fuss–Catalan, …) or to the job (``--out``/``--scale`` with
``--no-plot``) is refused before any work.
"""
from __future__ import annotations

import argparse
import math
import textwrap
from typing import Any

from ._common import (
    CliError,
    add_network_arguments,
    add_output_arguments,
    check_output_path,
    default_init,
    fmt,
    parse_widths,
    print_json,
    refuse_figure_options,
    save_figure,
)

LAWS = ("jacobian", "fuss-catalan", "marchenko-pastur")
SCALES = ("auto", "linear", "log")
DEFAULT_FIGURE = "rmt_init_law.png"
#: the value of each option when it is not given (``depth``: per law, see :data:`DEFAULT_DEPTH`)
DEFAULTS: dict[str, Any] = {
    "law": "jacobian",
    "depth": None,
    "activation": "relu",
    "init": None,
    "init_arg": [],
    "weights": None,
    "sigma_w2": None,
    "sigma_b2": 0.0,
    "widths": None,
    "ratio": 0.5,
    "variance": 1.0,
    "out": DEFAULT_FIGURE,
    "scale": "auto",
    "no_plot": False,
    "json": False,
}
DEFAULT_DEPTH = {"jacobian": 10, "fuss-catalan": 3}
_JACOBIAN_ONLY = ("activation", "init", "init_arg", "weights", "sigma_w2", "sigma_b2", "widths")
#: the laws each law-specific option applies to
APPLIES_TO = {
    "depth": ("jacobian", "fuss-catalan"),
    "ratio": ("marchenko-pastur",),
    "variance": ("marchenko-pastur",),
    **{name: ("jacobian",) for name in _JACOBIAN_ONLY},
}


def add_law_arguments(parser: argparse.ArgumentParser, default_law: str) -> None:
    """The options of ``law`` (and ``spectrum``), all with suppressed defaults (see :data:`DEFAULTS`)."""
    none = argparse.SUPPRESS
    parser.add_argument("--law", choices=LAWS, default=none, help=f"the spectral law (default {default_law})")
    parser.add_argument("--depth", type=int, default=none, metavar="L",
                        help="layers (jacobian, default 10) or Gaussian factors (fuss-catalan only, default 3)")
    jac = parser.add_argument_group("jacobian law (jacobian_spectrum)")
    add_network_arguments(jac)
    jac.add_argument("--widths", type=parse_widths, default=none, metavar="N0,…,NL",
                     help="layer widths for rectangular layers (depth + 1 numbers; default square)")
    mp = parser.add_argument_group("marchenko-pastur law")
    mp.add_argument("--ratio", type=float, default=none, help=f"p/n (default {DEFAULTS['ratio']})")
    mp.add_argument("--variance", type=float, default=none, help=f"entry variance (default {DEFAULTS['variance']})")
    fig = parser.add_argument_group("output")
    fig.add_argument("--scale", choices=SCALES, default=none,
                     help="figure x-axis: linear in λ, or log with the density of ln λ; auto picks log when the "
                     "middle 80%% of the law spans more than 7 decades (deep laws) (default auto)")
    add_output_arguments(fig, DEFAULT_FIGURE, "print the summary as one JSON document")


def add_parsers(commands: Any, parser_class: type) -> None:
    law = commands.add_parser(
        "law", help="one spectral law — jacobian_spectrum (depth, activation, init or σ_w²/σ_b², widths), "
        "Fuss–Catalan, Marchenko–Pastur: summary and figure",
        description="Summarise and plot one spectral law: the Jacobian law of a deep network at initialisation "
        "(jacobian_spectrum: depth, activation, init scheme or weights/σ_w²/σ_b², widths), a Fuss–Catalan or a "
        "Marchenko–Pastur law. Example: rmt-init law --depth 50 --activation tanh --init xavier_normal",
    )
    add_law_arguments(law, "jacobian")
    law.set_defaults(command="law", default_law="jacobian")
    spectrum = commands.add_parser(
        "spectrum", help="the same as law, with Fuss–Catalan as the default law",
        description="The same as 'rmt-init law' with --law fuss-catalan as its default.",
    )
    add_law_arguments(spectrum, "fuss-catalan")
    spectrum.set_defaults(command="spectrum", default_law="fuss-catalan")


def _check_applicable(args: argparse.Namespace, given: set[str]) -> None:
    for name in sorted(given & set(APPLIES_TO)):
        if args.law not in APPLIES_TO[name]:
            laws = " or ".join(f"--law {law}" for law in APPLIES_TO[name])
            raise CliError(f"--{name.replace('_', '-')} applies to {laws}, not to --law {args.law}")
    refuse_figure_options(args, given, ("out", "scale"))


def build_law(args: argparse.Namespace) -> tuple[Any, str]:
    """The law and a one-line title (parameters checked by the theory: ValueError naming the bad one)."""
    from ..theory import fuss_catalan, jacobian_spectrum, marchenko_pastur

    if args.law == "fuss-catalan":
        law = fuss_catalan(args.depth)
        title = (
            f"Fuss–Catalan law of depth {law.depth}: squared singular values of a product of "
            f"{law.depth} square Gaussian matrices (entries of variance 1/N, N → ∞)"
        )
    elif args.law == "marchenko-pastur":
        law = marchenko_pastur(args.ratio, args.variance)
        title = f"Marchenko–Pastur law, ratio {law.ratio:g}, variance {law.variance:g}: eigenvalues of W Wᵀ/n"
    else:
        law = jacobian_spectrum(args.depth, args.activation, init=default_init(args), weights=args.weights,
                                sigma_w2=args.sigma_w2, sigma_b2=args.sigma_b2, widths=args.widths,
                                **dict(args.init_arg))
        title = law.description + " (N → ∞)"
    return law, title


def summary_lines(law: Any) -> list[str]:
    """The numbers users ask of a Fuss–Catalan or Marchenko–Pastur law, one per line."""
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


def jacobian_record(law: Any) -> dict[str, Any]:
    """``law.summary()`` plus the exact moments m1..m4 (the edge only where the law has a density)."""
    record = dict(law.summary())
    record["moments"] = [float(law.moment(k)) for k in range(1, 5)]
    return record


def jacobian_lines(law: Any, record: dict[str, Any]) -> list[str]:
    phase = "critical (χ₁ = 1)" if record["critical"] else ("ordered" if record["chi1"] < 1 else "chaotic")
    sw2 = record["sigma_w2"]
    sw2 = fmt(sw2, 6) if isinstance(sw2, float) else ", ".join(fmt(v, 6) for v in sw2)
    qs = record["q_star"]
    qs = fmt(qs, 6) if isinstance(qs, float) else ", ".join(fmt(v, 6) for v in qs)
    return [
        f"σ_w², σ_b²             {sw2}, {fmt(record['sigma_b2'], 6)}",
        f"q*, χ₁                 {qs}, {fmt(record['chi1'], 6)}: {phase}",
        f"mean, variance of λ    {fmt(record['mean'], 6)}, {fmt(record['variance'], 6)}",
        f"moments m1..m4         {', '.join(fmt(m, 6) for m in record['moments'])}",
        f"upper edge of λ        {fmt(record['upper_edge'], 6)}",
        f"top singular value     {fmt(record['top_singular_value'], 6)}",
        f"atoms (location, mass) {list(record['atoms']) if record['atoms'] else 'none'}",
    ]


def draw(law: Any, title: str, scale: str = "auto") -> Any:
    """Two panels: the density of λ and of σ = √λ (log axes for deep laws with ``scale="auto"``)."""
    import matplotlib.pyplot as plt

    from .. import plot

    fig, axes = plt.subplots(1, 2, figsize=(7.0, 3.0))
    plot.density(law, ax=axes[0], scale=scale)
    plot.density(law, ax=axes[1], singular_values=True, scale=scale)
    axes[0].set_title("squared singular values", fontsize=9)
    axes[1].set_title("singular values", fontsize=9)
    fig.suptitle("\n".join(textwrap.wrap(title, 90)), fontsize=9)  # 90 characters of 9 pt fit 7 in
    fig.tight_layout()
    return fig


def run(args: argparse.Namespace, given: set[str], status: Any) -> int:
    if args.depth is None and args.law in DEFAULT_DEPTH:
        args.depth = DEFAULT_DEPTH[args.law]
    _check_applicable(args, given)
    if not args.no_plot:
        check_output_path(args.out)
    law, title = build_law(args)  # invalid parameters refused before anything is printed
    if args.law == "jacobian":
        record = jacobian_record(law)
        lines = jacobian_lines(law, record)
    else:
        lines = summary_lines(law)
        record = {"moments": [float(law.moment(k)) for k in range(1, 6)], "support": law.support,
                  "atoms": law.atoms, "mean": law.mean(), "variance": law.var()}
    if not args.json:
        print(title)
        for line in lines:
            print("  " + line)
    figure = None
    if not args.no_plot:
        status("drawing the figure")
        figure = save_figure(draw(law, title, args.scale), args.out)
    if args.json:
        print_json({"job": "law", "law": args.law, "title": title, **record, "figure": figure})
    elif figure:
        print(f"wrote {figure}")
    return 0
