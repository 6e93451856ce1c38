"""``rmt-init audit``: which init should I use? Every ``torch.nn.init`` scheme × activation at a depth.

For each pair (square layers, torch's default arguments of the scheme, the kaiming gain matched to the
activation as in ``jacobian_spectrum``; biases N(0, σ_b²)), from the theory only:

* ``sigma_w2`` (fan_in × entry variance), ``q_star`` and ``chi1`` of the mean-field fixed point and the phase
  (ordered χ₁ < 1, critical, chaotic; Poole et al. 2016, Schoenholz et al. 2017);
* ``mean`` and ``variance`` of the squared singular values λ of the depth-L Jacobian (exact moments of
  ``jacobian_spectrum``; the mean is χ₁^L), ``rel_variance`` = Var λ/(E λ)² (0 for dynamical isometry: a
  scale-free measure of the spread, growing like L for Gaussian critical networks);
* ``upper_edge`` of the law (its top eigenvalue) — needs the density's geometry. Piecewise-linear activations
  (linear, relu, leaky_relu, hardtanh) and smooth ones at q* = 0 take milliseconds; a smooth activation at
  q* > 0 takes 0.1–1.7 s per distinct law (measured, depth 10, one core), so those edges are computed only
  with ``--edges`` (otherwise empty, and the table says so);
* ``xi_q``, ``xi_c``: the depth scales (Schoenholz et al. 2017, eqs. 4 and 7; inf at criticality);
* ``critical_sigma_w2``: the recommended σ_w² for the activation at this σ_b² (χ₁ = 1 with an attracting
  q*, :func:`rmt_init.theory.critical_sigma_w2`; empty where none exists, e.g. gelu at σ_b² < 0.1729).

Schemes with the same weight law and σ_w² (uniform schemes have the Gaussian law here) share one law, computed
once. Outputs: a terminal table, ``--csv FILE``, ``--markdown FILE``, ``--json``, and a heat map (``--out``) of
log₁₀ E λ = L log₁₀ χ₁ (white = critical, red = exploding, blue = vanishing gradients).
"""
from __future__ import annotations

import argparse
import csv
import io
import math
from typing import Any

from ._common import CliError, add_output_arguments, atomic_write, check_output_path, check_writable, fmt, \
    print_json, refuse_figure_options, save_figure

DEFAULT_FIGURE = "rmt_init_audit.png"
ACTIVATIONS = ("linear", "relu", "leaky_relu", "tanh", "hardtanh", "erf", "sigmoid", "selu", "gelu")
PIECEWISE_LINEAR = ("linear", "relu", "leaky_relu", "hardtanh")
DEFAULTS: dict[str, Any] = {
    "depth": 10,
    "sigma_b2": 0.0,
    "activations": None,
    "inits": None,
    "edges": False,
    "csv": None,
    "markdown": None,
    "out": DEFAULT_FIGURE,
    "no_plot": False,
    "json": False,
}
COLUMNS = ("activation", "init", "weights", "sigma_w2", "q_star", "chi1", "phase", "mean", "variance",
           "rel_variance", "upper_edge", "xi_q", "xi_c", "critical_sigma_w2", "error", "edge_error")


def _names(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def add_parser(commands: Any) -> None:
    from .._vocabulary import INITS

    none = argparse.SUPPRESS
    p = commands.add_parser(
        "audit", help="which init should I use? every torch.nn.init scheme × activation at a depth: σ_w², q*, "
        "χ₁, the law's mean/variance/edge, depth scales, the critical σ_w²; table (terminal, CSV, Markdown) and heat map",
        description="The init-scheme table: for every torch.nn.init scheme and activation at a depth, σ_w², q*, χ₁ "
        "and the phase, the mean, variance and top edge of the Jacobian law, the depth scales, and the "
        "recommended (critical) σ_w². Example: rmt-init audit --depth 50 --markdown audit.md",
    )
    p.add_argument("--depth", type=int, default=none, metavar="L", help=f"layers (default {DEFAULTS['depth']})")
    p.add_argument("--sigma-b2", type=float, default=none, help="bias variance σ_b² (default 0)")
    p.add_argument("--activations", type=_names, default=none, metavar="A,B,…",
                   help=f"activations (default {','.join(ACTIVATIONS)})")
    p.add_argument("--inits", type=_names, default=none, metavar="A,B,…",
                   help=f"torch.nn.init schemes (default {','.join(INITS)})")
    p.add_argument("--edges", action="store_true", default=none,
                   help="also compute the top edge of smooth activations' laws at q* > 0 (seconds each)")
    p.add_argument("--csv", default=none, metavar="FILE", help="write the table as CSV")
    p.add_argument("--markdown", default=none, metavar="FILE", help="write the table as Markdown")
    add_output_arguments(p, DEFAULT_FIGURE, "print the table as one JSON document")
    p.set_defaults(command="audit")


def audit_rows(depth: int, sigma_b2: float, activations: tuple[str, ...], inits: tuple[str, ...], edges: bool,
               status: Any = None) -> list[dict[str, Any]]:
    """One row per (activation, init): the columns of :data:`COLUMNS` (see the module docstring)."""
    from ..theory import critical_sigma_w2, depth_scales, jacobian_spectrum

    rows: list[dict[str, Any]] = []
    edge_cache: dict[tuple, float | str] = {}  # the edge, or why it could not be computed
    for act in activations:
        try:
            critical: float | None = critical_sigma_w2(act, sigma_b2)
        except ValueError:
            critical = None
        for init in inits:
            row: dict[str, Any] = {name: None for name in COLUMNS}
            row.update(activation=act, init=init)
            try:
                law = jacobian_spectrum(depth, act, init=init, sigma_b2=sigma_b2)
            except ValueError as err:
                row["error"] = str(err).split(";")[0]
                rows.append(row)
                continue
            sw2, q, chi = float(law.sigma_w2[0]), float(law.q_star[0]), float(law.chi1)
            mean, var = float(law.mean()), float(law.var())
            row.update(weights=law.ensemble, sigma_w2=sw2, q_star=q, chi1=chi, mean=mean, variance=var,
                       rel_variance=var / mean**2 if mean > 0 else None, critical_sigma_w2=critical)
            row["phase"] = "critical" if law.is_critical else ("ordered" if chi < 1.0 else "chaotic")
            # at a critical point the σ_w² of a scheme can differ from the exact critical value by rounding
            # (√2² = 2.0000000000000004), which puts a homogeneous net's q* at infinity: use the exact value
            at = critical if (law.is_critical and critical is not None) else sw2
            try:
                xi = depth_scales(act, at, sigma_b2)
                row.update(xi_q=xi.xi_q, xi_c=xi.xi_c)
            except ValueError:
                pass
            key = (act, law.ensemble, sw2)
            fast = act in PIECEWISE_LINEAR or q == 0.0
            if key not in edge_cache and (fast or edges) and law.has_density:
                if not fast and status is not None:
                    status(f"top edge of {act} with {law.ensemble} weights, σ_w² = {sw2:.4g}")
                try:
                    edge_cache[key] = float(law.upper_edge)
                except (ValueError, ArithmeticError) as err:  # e.g. moments below the float range (deep sigmoid)
                    edge_cache[key] = f"top edge not computed: {err}"
            edge = edge_cache.get(key)
            row["upper_edge" if isinstance(edge, float) else "edge_error"] = edge
            rows.append(row)
    return rows


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return fmt(value, 4)
    return str(value)


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The terminal table (the recommended σ_w² once per activation, below its rows)."""
    shown = ("activation", "init", "sigma_w2", "q_star", "chi1", "phase", "mean", "variance", "upper_edge",
             "xi_q", "xi_c")
    head = ("activation", "init", "σ_w²", "q*", "χ₁", "phase", "E λ", "Var λ", "top edge", "ξ_q", "ξ_c")
    widths = (10, 15, 7, 8, 7, 8, 10, 10, 9, 7, 7)
    out = ["  ".join(f"{h:<{w}}" for h, w in zip(head, widths))]
    last = None
    for row in rows:
        if last is not None and row["activation"] != last["activation"]:
            out.append(_recommendation(last))
        if row["error"]:
            out.append(f"{row['activation']:<10}  {row['init']:<15}  {row['error']}")
        else:
            out.append("  ".join(f"{_cell(row[c]):<{w}}" for c, w in zip(shown, widths)))
        last = row
    if last is not None:
        out.append(_recommendation(last))
    return out


def _recommendation(row: dict[str, Any]) -> str:
    crit = row["critical_sigma_w2"]
    if crit is None:
        return f"  → {row['activation']}: no attracting critical σ_w² at this σ_b²"
    return f"  → {row['activation']}: critical σ_w² = {fmt(crit, 6)} (χ₁ = 1; recommended)"


def csv_text(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else (repr(v) if isinstance(v, float) else v)) for k, v in row.items()})
    return buffer.getvalue()


def markdown_text(rows: list[dict[str, Any]], depth: int, sigma_b2: float) -> str:
    head = ("activation", "init", "σ_w²", "q*", "χ₁", "phase", "E λ", "Var λ", "top edge", "ξ_q", "ξ_c",
            "critical σ_w²")
    cols = ("activation", "init", "sigma_w2", "q_star", "chi1", "phase", "mean", "variance", "upper_edge", "xi_q",
            "xi_c", "critical_sigma_w2")
    lines = [f"Jacobian laws at depth {depth}, σ_b² = {fmt(sigma_b2)} (rmt-init audit)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        if row["error"]:
            lines.append(f"| {row['activation']} | {row['init']} | " + " | ".join([""] * (len(head) - 3))
                         + f" | {row['error']} |")
        else:
            lines.append("| " + " | ".join(_cell(row[c]).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def draw(rows: list[dict[str, Any]], depth: int, sigma_b2: float) -> Any:
    """Heat map of log₁₀ E λ (activation × init), σ_w² written in each cell, critical cells outlined."""
    import matplotlib.pyplot as plt
    import numpy as np

    acts = list(dict.fromkeys(r["activation"] for r in rows))
    inits = list(dict.fromkeys(r["init"] for r in rows))
    values = np.full((len(acts), len(inits)), np.nan)
    for r in rows:
        if r["mean"] is not None and r["mean"] > 0:
            values[acts.index(r["activation"]), inits.index(r["init"])] = math.log10(r["mean"])
    finite = values[np.isfinite(values)]
    # colours saturate at 10^±4 so that one extreme row (sigmoid: 10^−13) does not wash out the others
    bound = min(4.0, max(1.0, float(np.abs(finite).max()) if finite.size else 1.0))
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(inits), 1.2 + 0.45 * len(acts)), layout="constrained")
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="0.85")
    image = ax.imshow(values, cmap=cmap, vmin=-bound, vmax=bound, aspect="auto")
    for r in rows:
        i, j = acts.index(r["activation"]), inits.index(r["init"])
        if r["sigma_w2"] is None:
            ax.text(j, i, "—", ha="center", va="center", fontsize=7)
            continue
        dark = np.isfinite(values[i, j]) and abs(values[i, j]) > 0.6 * bound
        ax.text(j, i, f"{r['sigma_w2']:.3g}", ha="center", va="center", fontsize=7,
                color="white" if dark else "black")
        if r["phase"] == "critical":
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="k", lw=1.5))
    ax.set_xticks(range(len(inits)), inits, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(acts)), acts, fontsize=8)
    bar = fig.colorbar(image, ax=ax, shrink=0.9, extend="both")
    bar.set_label(f"log₁₀ E λ = {depth}·log₁₀ χ₁", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    ax.set_title(f"Jacobian mean squared singular value at depth {depth}, σ_b² = {fmt(sigma_b2)}\n"
                 "(cell: σ_w²; outlined: critical, χ₁ = 1; grey: undefined)", fontsize=8)
    return fig


def run(args: argparse.Namespace, given: set[str], status: Any) -> int:
    from .._validate import check_choice, check_int, check_real
    from .._vocabulary import INITS

    refuse_figure_options(args, given, ("out",))
    depth = check_int("depth", args.depth, minimum=1)
    sigma_b2 = check_real("sigma_b2", args.sigma_b2, low=0.0)
    activations = ACTIVATIONS if args.activations is None else args.activations
    inits = INITS if args.inits is None else args.inits
    if not activations or not inits:
        raise CliError("--activations and --inits need at least one name each")
    from .._vocabulary import ACTIVATIONS as KNOWN

    activations = tuple(check_choice("activation", a, KNOWN) for a in activations)
    inits = tuple(check_choice("init", i, INITS) for i in inits)
    for option, path in (("--csv", args.csv), ("--markdown", args.markdown)):
        if path is not None:
            check_writable(path, option, "audit" + (".csv" if option == "--csv" else ".md"))
    if not args.no_plot:
        check_output_path(args.out)
    rows = audit_rows(depth, sigma_b2, activations, inits, args.edges, status)
    written = []
    if args.csv:
        written.append(atomic_write(args.csv, lambda h: h.write(csv_text(rows)), binary=False))
    if args.markdown:
        written.append(atomic_write(args.markdown, lambda h: h.write(markdown_text(rows, depth, sigma_b2)),
                                    binary=False))
    if not args.no_plot:
        written.append(save_figure(draw(rows, depth, sigma_b2), args.out))
    if args.json:
        print_json({"job": "audit", "depth": depth, "sigma_b2": sigma_b2, "edges": args.edges, "rows": rows,
                    "files": written})
        return 0
    print(f"Jacobian laws at depth {depth}, σ_b² = {fmt(sigma_b2)}: every init scheme × activation (theory, N → ∞)")
    for line in table_lines(rows):
        print(line)
    failed = sorted({f"{r['activation']} ({r['edge_error']})" for r in rows if r["edge_error"]})
    if failed:
        print("top edge failed for: " + "; ".join(failed))
    if not args.edges and any(r["upper_edge"] is None and r["sigma_w2"] is not None and not r["edge_error"]
                              for r in rows):
        print("top edge left empty for smooth activations at q* > 0 (seconds per law): add --edges")
    for path in written:
        print(f"wrote {path}")
    return 0
