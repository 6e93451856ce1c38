"""Figures of spectral laws (matplotlib). Every function takes ``ax=`` and returns the Axes.

``density(law)`` draws the density of the squared singular values (or, with ``singular_values=True``, of
the singular values σ = √λ, density 2σρ(σ²)). ``compare(law, result)`` overlays it on a Monte Carlo
histogram with the numbers of :func:`rmt_init.compare.compare` under the axes.

Two views, chosen by ``scale``:

* ``"linear"``: ρ(λ) against λ. Densities that diverge at an edge (Fuss–Catalan at 0) are clipped at the
  top of a y-range set by the density away from the edges, and marked "↑ diverges" ("↑ off scale" for a
  tall finite peak).
* ``"log"``: the density of t = ln λ, λ·ρ(λ), against λ on a logarithmic axis (equal areas are equal
  masses on that axis). Deep products spread their mass over many decades (the median of the Fuss–Catalan
  law of depth 100 is ~1e−30, its top edge ~273), and on a linear axis only the top tail is visible.
  The axis starts where λ·ρ(λ) has fallen below 1e−4 of its peak (never below λ = 1e−300).
* ``"auto"`` (default): ``"log"`` when the middle 80 % of the continuous mass spans more than
  :data:`AUTO_LOG_DECADES` decades of λ, else ``"linear"``. The span grows by about one decade per layer:
  measured 4.2 / 6.3 / 7.3 / 97 decades for Fuss–Catalan depth 3 / 5 / 6 / 100, 4.5 / 6.5 / 7.5 for ReLU
  networks of depth 4 / 6 / 7, so Fuss–Catalan laws from depth 6 and ReLU networks from depth 7 are drawn
  on log axes. The decision is made on λ also when σ is drawn, so both views of a law agree. An Axes that
  already holds a drawing on a linear axis (a histogram) keeps it.

Atoms are drawn on a second y-axis on the right, "atom mass" from 0 to 1, as stems whose height is their
mass (so an atom of mass 0.0084 and one of 0.966 look as different as they are), each labelled with its
mass. On a log axis an atom at 0 cannot be placed: it is drawn as a "◀" at the left edge of the axes.

Figures made here (``ax=None``) are single-column paper size (3.5 in wide) with every text at ≥ 8 pt.
"""
from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np

from ._validate import check_choice, check_int, check_real
from .theory.laws import Law, SingularValueLaw, SpectralLaw

__all__ = ["AUTO_LOG_DECADES", "compare", "density", "evaluation_grid", "log_density_grid", "mass_axis"]

#: ``scale="auto"`` draws on a log axis when the middle 80 % of the continuous mass spans more decades than this
AUTO_LOG_DECADES = 7.0
#: the log view starts where λ·ρ(λ) falls below this fraction of its peak …
LOG_VIEW_FLOOR = 1e-4
#: … but never below this λ (the smallest normal float64 is 2.2e−308)
LOG_VIEW_MIN = 1e-300
SCALES = ("auto", "linear", "log")
#: a law whose support is unbounded above (a power-law tail, e.g. ``bn_jacobian_spectrum``) is drawn up to its
#: quantile at 1 − this
TAIL_QUANTILE = 1e-4
#: font sizes (points) of the figures: readable when a figure is printed 3.5 in wide
FONT_LABEL = 9.0
FONT_TEXT = 8.0
PAPER_WIDTH = 3.5
_MASS_AXIS = "_rmt_init_mass_axis"


# ---------------------------------------------------------------------------------------------------- checks
def _check_law(name: str, law: Any) -> Law:
    if not isinstance(law, Law):
        raise TypeError(
            f"{name} must be a spectral law of rmt_init (e.g. rmt_init.fuss_catalan(3)); got {type(law).__name__}"
        )
    return law


def _shown_law(law: Law, singular_values: bool) -> Law:
    if not isinstance(singular_values, (bool, np.bool_)):
        raise TypeError(f"singular_values must be True or False; got {singular_values!r}")
    if not singular_values:
        return law
    if isinstance(law, SingularValueLaw):
        return law
    if isinstance(law, SpectralLaw):
        return law.singular_value_law()
    raise ValueError(
        f"singular_values=True needs a law of squared singular values (a SpectralLaw); got {type(law).__name__}"
    )


# ---------------------------------------------------------------------------------------------------- grids
def _finite_intervals(law: Law) -> tuple[tuple[float, float], ...]:
    """``law.intervals`` with an infinite upper end replaced by the quantile at 1 − :data:`TAIL_QUANTILE` (a law
    with a power-law tail has no top edge to draw up to); intervals lying wholly above it are dropped."""
    intervals = tuple(law.intervals)
    if all(math.isfinite(b) for _, b in intervals):
        return intervals
    top = float(law.ppf(1.0 - TAIL_QUANTILE, method="table"))
    out = []
    for a, b in intervals:
        b = b if math.isfinite(b) else top
        if math.isfinite(b) and b > a:
            out.append((a, b))
    return tuple(out)


def evaluation_grid(law: Law, n: int = 801) -> np.ndarray:
    """Points inside each interval of the continuous part, clustered at both edges (cosine spacing)."""
    n = check_int("n", n, minimum=3)
    pieces = []
    for a, b in _finite_intervals(law):
        theta = np.linspace(0.0, np.pi, n)[1:-1]
        pieces.append(a + (b - a) * 0.5 * (1.0 - np.cos(theta)))
    return np.concatenate(pieces) if pieces else np.array([])


def _x_pdf(law: Law, x: np.ndarray) -> np.ndarray:
    """x·pdf(x), with non-finite values (a density failing far below its range) as NaN."""
    with np.errstate(all="ignore"):
        y = x * np.asarray(law.pdf(x), dtype=float)
    y[~np.isfinite(y)] = np.nan
    return y


def _log_view(law: Law, coarse: int = 600) -> tuple[float, float] | None:
    """The log view of ``law``'s continuous part on a coarse grid in t = ln x: ``(x_low, decades)``, where
    ``x_low`` is where the axis starts (x·pdf(x) below :data:`LOG_VIEW_FLOOR` of its peak; not below
    :data:`LOG_VIEW_MIN`, nor below the continuous part's lowest point) and ``decades`` is log10 of the
    ratio of the 90 % and 10 % quantiles of the continuous part (trapezoid rule in t, quantiles interpolated
    between grid points; a step of (log10 x_max + 300)/599 ≈ 0.5 decade when the part starts at 0).
    ``None`` when there is nothing to show on a log axis (no continuous part on x > 0, or a density that
    is nowhere finite and positive)."""
    intervals = [(a, b) for a, b in _finite_intervals(law) if b > 0.0]
    if not intervals:
        return None
    lowest = max(intervals[0][0], LOG_VIEW_MIN)
    top = intervals[-1][1]
    if not (top > lowest):
        return None
    t = np.linspace(math.log(lowest), math.log(top), coarse)[1:-1]
    x = np.exp(t)
    try:
        g = _x_pdf(law, x)
    except (ArithmeticError, ValueError):
        return None
    bad = ~np.isfinite(g)
    if bad.all():
        return None
    if bad.any():  # start above the last point where the density failed
        start = int(np.nonzero(bad)[0][-1]) + 1
        t, x, g = t[start:], x[start:], g[start:]
    peak = float(np.max(g)) if g.size else 0.0
    if not peak > 0.0:
        return None
    first = int(np.argmax(g >= LOG_VIEW_FLOOR * peak))
    first = max(first - 1, 0)
    t, g = t[first:], g[first:]
    cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (g[1:] + g[:-1]) * np.diff(t))])
    if cumulative[-1] <= 0.0:
        return None
    q10, q90 = np.interp([0.1 * cumulative[-1], 0.9 * cumulative[-1]], cumulative, t)
    return float(math.exp(t[0])), float((q90 - q10) / math.log(10.0))


def log_density_grid(law: Law, n: int = 801, x_low: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The density of t = ln x for the continuous part of ``law``: points ``x`` (cosine-spaced in ln x inside
    each interval, from ``x_low``, default where the density of ln x falls below 1e−4 of its peak) and the
    values x·pdf(x) (the density of ln x: d/dt F(e^t) = e^t ρ(e^t)). Raises ``ValueError`` if the law has
    no continuous part on x > 0 to show."""
    law = _check_law("law", law)
    n = check_int("n", n, minimum=3)
    if x_low is None:
        view = _log_view(law)
        if view is None:
            raise ValueError(f"law {law!r} has no continuous part with a finite density on x > 0 for a log axis")
        x_low = view[0]
    x_low = check_real("x_low", x_low, low=0.0, low_inclusive=False)
    pieces = []
    for a, b in _finite_intervals(law):
        lo = max(a, x_low)
        if b <= lo:
            continue
        theta = np.linspace(0.0, np.pi, n)[1:-1]
        t = math.log(lo) + (math.log(b) - math.log(lo)) * 0.5 * (1.0 - np.cos(theta))
        pieces.append(np.exp(t))
    x = np.concatenate(pieces) if pieces else np.array([])
    x = x[(x > 0.0) & np.isfinite(x)]
    return x, _x_pdf(law, x)


def _choose_scale(shown: Law, scale: str, ax: Any) -> tuple[str, float | None]:
    """The scale to draw ``shown`` on and, for a log view, where its axis starts. The view is computed on
    the law of λ also when σ = √λ is drawn (ln σ = ½ ln λ: the same mass, in half as many decades), so that
    both panels of a law take the same scale and show the same mass."""
    if scale == "linear":
        return "linear", None
    if scale == "auto" and _has_drawing(ax) and ax.get_xscale() != "log":
        return "linear", None  # a histogram drawn on a linear axis keeps it
    squared = shown.squared_law() if isinstance(shown, SingularValueLaw) else shown
    view = _log_view(squared)
    x_low = None if view is None else (view[0] if squared is shown else math.sqrt(view[0]))
    if scale == "log":
        if view is None and not any(loc > 0 for loc, _ in shown.atoms):
            raise ValueError(f"scale='log': {shown!r} has nothing to draw at x > 0; use scale='linear'")
        return "log", x_low
    if _has_drawing(ax) and ax.get_xscale() == "log":
        return "log", x_low
    if view is not None and view[1] > AUTO_LOG_DECADES:
        return "log", x_low
    return "linear", None


def _has_drawing(ax: Any) -> bool:
    return bool(ax.lines or ax.patches or ax.collections)


# ---------------------------------------------------------------------------------------------------- styling
def _style_axes(ax: Any, xlabel: str, ylabel: str) -> None:
    ax.set_xlabel(xlabel, fontsize=FONT_LABEL)
    ax.set_ylabel(ylabel, fontsize=FONT_LABEL)
    ax.tick_params(labelsize=FONT_TEXT)


def _plain_log_formatter() -> Any:
    """Tick labels of a log axis as plain numbers between 1e−3 and 1e4 (``0.01``, ``2``, ``300``) and as powers
    of ten outside (``10⁻³⁰``); which ticks carry a label is matplotlib's choice (all decades, and the
    minor ticks 2…9 when an axis spans less than about a decade)."""
    from matplotlib.ticker import LogFormatterSciNotation

    class PlainLogFormatter(LogFormatterSciNotation):
        def __call__(self, x: float, pos: Any = None) -> str:
            label = super().__call__(x, pos)
            if label and 1e-3 <= abs(x) < 1e4:
                return f"{x:g}"
            return label

    return PlainLogFormatter()


def _use_log_axis(ax: Any) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(_plain_log_formatter())
    ax.xaxis.set_minor_formatter(_plain_log_formatter())


def _log_ticks(ax: Any, most: int = 7) -> None:
    """Decade ticks every 1, 2, 5, 10, 20, 50 or 100 decades, the finest step giving at most ``most`` ticks
    (matplotlib's own choice on an axis spanning hundreds of decades is an odd step such as 47)."""
    from matplotlib.ticker import LogLocator, NullLocator

    lo, hi = ax.get_xlim()
    if not (0.0 < lo < hi):
        return
    span = math.log10(hi) - math.log10(lo)
    step = next((s for s in (1, 2, 5, 10, 20, 50, 100) if span / s <= most), 200)
    if step > 1:
        ax.xaxis.set_major_locator(LogLocator(base=10.0**step, numticks=most + 2))
        ax.xaxis.set_minor_locator(NullLocator())


def mass_axis(ax: Any) -> Any:
    """The right-hand "atom mass" axis on which :func:`density` and :func:`compare` drew the atoms of ``ax``'s
    laws (y from 0 to 1: an atom's stem is as high as its mass), or ``None`` if they drew none."""
    return getattr(ax, _MASS_AXIS, None)


def _mass_axis(ax: Any) -> Any:
    """The right-hand "atom mass" axis of ``ax`` (0 to 1), created once and shared by later calls."""
    mass_ax = getattr(ax, _MASS_AXIS, None)
    if mass_ax is None:
        mass_ax = ax.twinx()
        mass_ax.set_ylim(0.0, 1.05)
        mass_ax.set_ylabel("atom mass", fontsize=FONT_LABEL)
        mass_ax.tick_params(labelsize=FONT_TEXT)
        setattr(ax, _MASS_AXIS, mass_ax)
    return mass_ax


def _atom_x(ax: Any, location: float, log: bool) -> tuple[float, Any, str]:
    """Where an atom is drawn: its location, or (at 0 on a log axis) the left edge of the axes."""
    if log and location <= 0.0:
        return 0.0, ax.get_yaxis_transform(), "<"
    return location, ax.transData, "o"


def _draw_atoms(ax: Any, atoms: Any, log: bool, color: str, prefix: str = "atom mass ") -> list[Any]:
    """Stems of height = mass on the mass axis, a marker at the top, the mass written beside it (after
    ``prefix``)."""
    if not atoms:
        return []
    mass_ax = _mass_axis(ax)
    texts = []
    for location, mass in atoms:
        x, transform, marker = _atom_x(mass_ax, location, log)
        if marker == "o":
            mass_ax.vlines(x, 0.0, mass, color=color, lw=1.5, linestyles=":")
        mass_ax.plot([x], [mass], marker, color=color, ms=6, transform=transform, clip_on=False)
        if marker == "<":
            text = f"atom at 0, mass {mass:.3g}" if prefix else f"at 0: {mass:.3g}"
        else:
            text = f"{prefix}{mass:.3g}"
        # beside the marker, on the side with room (left of atoms in the right half of the axes), and above it
        # when the marker sits on the x-axis
        right_half = marker == "o" and _axes_fraction(mass_ax, x) > 0.55
        texts.append(
            mass_ax.annotate(
                text, xy=(x, mass), xycoords=transform, xytext=(-5 if right_half else 5, 7 if mass < 0.06 else 0),
                textcoords="offset points", va="center", ha="right" if right_half else "left", fontsize=FONT_TEXT,
                color=color,
            )
        )
    return texts


def _axes_fraction(ax: Any, x: float) -> float:
    """Where data coordinate ``x`` lies across the axes (0 left, 1 right)."""
    ax.get_xlim()  # brings pending autoscaling into the view limits
    return float(ax.transAxes.inverted().transform(ax.transData.transform((x, 0.0)))[0])


def _avoid_overlaps(ax: Any, fixed: list[Any], movable: list[Any]) -> None:
    """Move each text of ``movable`` down (in steps of its own height) until it overlaps none of ``fixed``
    and of the texts already placed."""
    if not fixed or not movable:
        return
    ax.figure.draw_without_rendering()  # run the figure's layout engine, so that extents are final
    renderer = ax.figure.canvas.get_renderer()
    placed = [t.get_window_extent(renderer).padded(2) for t in fixed]
    for text in movable:
        for _ in range(8):
            box = text.get_window_extent(renderer)
            if not any(box.overlaps(other) for other in placed):
                break
            x, y = text.xyann  # the offset from the marker, in points
            text.xyann = (x, y - 1.1 * box.height * 72.0 / ax.figure.dpi)
        placed.append(text.get_window_extent(renderer))


def _place_legend(ax: Any, handles: list[Any], labels: list[str], **kwargs: Any) -> Any:
    """A legend in the first of a few corners (upper right first: :func:`density`'s headroom keeps it free)
    where it covers none of the texts of ``ax`` and of its mass axis (matplotlib's ``loc="best"`` does not
    see the texts of a twin axis)."""
    ax.figure.draw_without_rendering()  # run the figure's layout engine, so that extents are final
    renderer = ax.figure.canvas.get_renderer()
    texts = list(ax.texts) + list(getattr(getattr(ax, _MASS_AXIS, None), "texts", []))
    boxes = [t.get_window_extent(renderer) for t in texts]  # the legend box has its own padding
    for loc in ("upper right", "center right", "upper center", "upper left", "lower right"):
        legend = ax.legend(handles, labels, loc=loc, **kwargs)
        box = legend.get_window_extent(renderer)
        if not any(box.overlaps(other) for other in boxes):
            break
    else:
        legend = ax.legend(handles, labels, loc="upper right", **kwargs)
    return legend


def _wrapped(ax: Any, text: str, fontsize: float) -> str:
    """``text`` broken into lines that fit the width of ``ax`` (average glyph ≈ 0.55 em)."""
    width_in = ax.figure.get_figwidth() * ax.get_position().width
    chars = max(20, int(width_in * 72.0 / (0.55 * fontsize)))
    return "\n".join(textwrap.wrap(text, chars))


# ---------------------------------------------------------------------------------------------------- density
def density(
    law: Law,
    ax: Any = None,
    singular_values: bool = False,
    n: int = 801,
    label: str | None = None,
    atom_color: str | None = None,
    scale: str = "auto",
    headroom: float = 1.25,
    **line_kwargs: Any,
) -> Any:
    """Plot the density of ``law`` (squared singular values, or singular values) and its atoms.

    Args:
        law: a law of ``rmt_init`` (e.g. ``rmt_init.fuss_catalan(3)``).
        ax: the matplotlib Axes to draw on (default: a new single-column figure, 3.5 × 2.6 in).
        singular_values: draw the law of σ = √λ (density 2σρ(σ²)) instead of λ.
        n: points per interval of the continuous part.
        label: legend label of the density line (default ``repr(law)``).
        atom_color: colour of the atoms (default: the line's).
        scale: ``"linear"`` (ρ(λ) against λ), ``"log"`` (the density of ln λ, λ·ρ(λ), against λ on a log
            axis) or ``"auto"`` (log when the law spans more than :data:`AUTO_LOG_DECADES` decades; see the
            module docstring).
        headroom: the top of the y-range, as a multiple of the largest density away from the interval ends
            (2 % of each interval's width); a density above it (a divergence) is clipped and marked.
        line_kwargs: passed to ``ax.plot`` for the density line.

    Returns the matplotlib Axes (atoms are on a twin axis, :func:`mass_axis` of it).
    """
    return _density(law, ax, singular_values, n, label, atom_color, scale, headroom, "atom mass ", line_kwargs)


def _density(
    law: Law,
    ax: Any,
    singular_values: bool,
    n: int,
    label: str | None,
    atom_color: str | None,
    scale: str,
    headroom: float,
    atom_prefix: str,
    line_kwargs: dict[str, Any],
) -> Any:
    law = _check_law("law", law)
    shown = _shown_law(law, singular_values)
    n = check_int("n", n, minimum=3)
    scale = check_choice("scale", scale, SCALES)
    headroom = check_real("headroom", headroom, low=1.0)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(PAPER_WIDTH, 2.6), layout="constrained")
    view, x_low = _choose_scale(shown, scale, ax)
    log = view == "log"
    variable = "σ" if singular_values else "λ"
    if log:
        _use_log_axis(ax)
        x, y = log_density_grid(shown, n, x_low) if x_low is not None else (np.array([]), np.array([]))
    else:
        x = evaluation_grid(shown, n)
        y = np.asarray(shown.pdf(x), dtype=float)
    earlier_top = ax.get_ylim()[1] if ax.lines else 0.0  # densities drawn before on these axes stay in view
    (line,) = ax.plot(x, y, label=label or repr(law), **line_kwargs)
    fixed: list[Any] = []
    finite = np.isfinite(y)
    if x.size and finite.any():
        # y-range: ignore 2% of each interval's width (in the drawn variable) at its ends, where densities
        # may diverge
        u = np.log(x) if log else x
        keep = np.zeros(x.shape, dtype=bool)
        for a, b in _finite_intervals(shown):
            if log:
                a, b = math.log(max(a, x[0])), math.log(b) if b > 0 else -np.inf
            keep |= (u >= a + 0.02 * (b - a)) & (u <= b - 0.02 * (b - a))
        core = y[keep & finite]
        top = headroom * float(np.max(core)) if core.size else headroom * float(np.nanmax(y))
        top = max(top, earlier_top)
        ax.set_ylim(0.0, top)
        if np.nanmax(y) > top:
            edge = x[np.nanargmax(y)]
            text = "↑ diverges" if _diverges_at(shown, edge) else "↑ off scale"
            fixed.append(ax.annotate(text, xy=(edge, top), xytext=(3, -3), textcoords="offset points",
                                     ha="left", va="top", fontsize=FONT_TEXT))
    elif not _has_drawing_besides(ax, line):  # atoms only (a point mass): a density axis from 0, λ from 0
        ax.set_ylim(0.0, 1.0)
        locations = [loc for loc, _ in shown.atoms]
        if locations and not log and max(locations) > 0.0:
            ax.set_xlim(0.0, 1.5 * max(locations))
    if log:
        lo, hi = (float(v) for v in ax.dataLim.intervalx)  # everything drawn, without margins
        atoms_at = [loc for loc, _ in shown.atoms if loc > 0]
        if atoms_at:
            lo, hi = min(lo, min(atoms_at) / 1.5), max(hi, max(atoms_at) * 1.5)
        if 0.0 < lo < hi < math.inf:
            ax.set_xlim(lo, hi)
        _log_ticks(ax)
    moved = _draw_atoms(ax, shown.atoms, log, atom_color or line.get_color(), atom_prefix)
    _avoid_overlaps(ax, fixed, moved)
    name = "singular value σ" if singular_values else "squared singular value λ = σ²"
    if log:
        _style_axes(ax, f"{name} (log scale)", f"density of ln {variable}: {variable}·ρ({variable})")
    else:
        _style_axes(ax, name, "density")
    return ax


def _has_drawing_besides(ax: Any, line: Any) -> bool:
    return bool([a for a in ax.lines if a is not line] or ax.patches or ax.collections)


def _diverges_at(law: Law, x: float) -> bool:
    """Whether the density grows without bound at the interval end nearest ``x`` (probed 1e−6 and 1e−10 of
    the interval inside it: a power-law divergence grows there, a finite peak, e.g. a rectangular law's
    soft lower edge, does not)."""
    # an unbounded interval has no upper end to diverge at; its probes use the width up to the drawn top
    drawn = dict(zip(law.intervals, _finite_intervals(law)))
    ends = [(abs(x - e), e, 1.0 if e == a else -1.0, drawn.get((a, b), (a, b))[1] - a)
            for a, b in law.intervals for e in (a, b) if math.isfinite(e)]
    if not ends:
        return False
    _, e, inward, width = min(ends)
    near, nearer = law.pdf(np.array([e + inward * 1e-6 * width, e + inward * 1e-10 * width]))
    return bool(np.isfinite(near) and nearer > 10.0 * near)


# ---------------------------------------------------------------------------------------------------- compare
def compare(
    law: Law,
    result: Any,
    ax: Any = None,
    singular_values: bool = False,
    bins: int = 80,
    label: str | None = None,
    atom_tol: float = 1e-9,
    scale: str = "auto",
) -> Any:
    """Theory density over the Monte Carlo histogram, atoms on the mass axis, ``compare`` numbers below.

    ``result``: a ``rmt_init.montecarlo`` result or an array of squared singular values. Samples that
    belong to an atom (within ``atom_tol`` × the largest sample, as in :func:`rmt_init.compare.compare`)
    are left out of the histogram, which is scaled to the whole sample count, so that it estimates the
    continuous part of the law drawn as a line; each atom is a stem at its mass (theory, filled marker)
    next to the Monte Carlo fraction (open diamond), read on the "atom mass" axis on the right. On a log
    axis (``scale``, as in :func:`density`) the histogram is of ln λ (log-spaced bins, heights
    count/(total·Δ ln λ)); samples below the axis are counted in the text under it. Returns the Axes.
    """
    from .compare import compare as compare_numbers
    from .compare import samples_of

    law = _check_law("law", law)
    shown = _shown_law(law, singular_values)
    bins = check_int("bins", bins, minimum=1)
    atom_tol = check_real("atom_tol", atom_tol, low=0.0)
    scale = check_choice("scale", scale, SCALES)
    kind = "singular" if singular_values else "squared"
    numbers = compare_numbers(law, result, kind=kind, atom_tol=atom_tol)
    data = samples_of(result)
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(PAPER_WIDTH, 3.2), layout="constrained")
    view, x_low = _choose_scale(shown, scale, ax)
    log = view == "log"
    scale_max = float(data.max()) if data.max() > 0 else 1.0
    at_atom = np.zeros(data.shape, dtype=bool)
    for loc, _ in law.atoms:
        at_atom |= np.abs(data - loc) <= atom_tol * max(scale_max, abs(loc))
    continuous = data[~at_atom]
    if singular_values:
        continuous = np.sqrt(continuous)
    hidden = 0
    if log:
        _use_log_axis(ax)
        lowest = x_low if x_low is not None else LOG_VIEW_MIN
        positive = continuous[continuous > 0.0]
        hidden = int(continuous.size - np.count_nonzero(continuous >= lowest))
        if positive.size and positive.max() > lowest:
            t_edges = np.linspace(math.log(max(lowest, positive.min())), math.log(positive.max() * 1.0001), bins + 1)
            edges = np.exp(t_edges)
            heights = np.histogram(positive, bins=edges)[0] / data.size / np.diff(np.log(edges))
            ax.bar(edges[:-1], heights, width=np.diff(edges), align="edge", color="0.78", linewidth=0,
                   label="Monte Carlo")
    elif continuous.size:
        edges = np.linspace(0.0, float(continuous.max()) * 1.0001, bins + 1)
        heights = np.histogram(continuous, bins=edges)[0] / data.size / np.diff(edges)
        # bars without edge lines: a bar's outline would draw a spurious vertical line at λ = 0
        ax.bar(edges[:-1], heights, width=np.diff(edges), align="edge", color="0.78", linewidth=0,
               label="Monte Carlo")
    # headroom 1.6: room for the legend; the legend says what the atom markers are, their labels give the mass
    _density(law, ax, singular_values, 801, label or "theory", "C3", "log" if log else "linear", 1.6, "",
             {"color": "C3", "lw": 1.6})
    handles, labels = ax.get_legend_handles_labels()
    if law.atoms:
        from matplotlib.legend_handler import HandlerTuple
        from matplotlib.lines import Line2D

        mass_ax = _mass_axis(ax)
        for loc, mass in shown.atoms:
            x, transform, _ = _atom_x(mass_ax, loc, log)
            mc = mass + numbers.atom_errors[loc]
            mass_ax.plot([x], [mc], "D", mfc="none", color="k", ms=8, transform=transform, clip_on=False)
        theory_marker = Line2D([], [], color="C3", marker="o", ls="")
        handles.append((theory_marker, Line2D([], [], color="k", marker="D", mfc="none", ls="")))
        where = f"atom at {shown.atoms[0][0]:g}" if len(shown.atoms) == 1 else "atoms"
        labels.append(f"{where}: theory, MC")
    def relative(k: int) -> str:  # an infinite moment of the law (a power-law tail) is not compared
        if not math.isfinite(numbers.moment_errors[k]):
            return "∞ (law), not compared"
        return f"{100 * numbers.moment_errors[k]:+.1f} ± {100 * numbers.moment_stderrs[k]:.1f}%"

    edge = f"{100 * numbers.edge_error:+.1f}%" if math.isfinite(numbers.edge_error) else "none (unbounded)"
    summary = (
        f"KS {numbers.ks:.3f}, W₁ {numbers.wasserstein1:.3g}, top edge {edge}, "
        f"mean {relative(1)}, m₂ {relative(2)} ({numbers.n_trials} trials × {data.shape[1]})"
    )
    if hidden:
        summary += f"; {hidden} samples below the axis"
    # under the x-axis label, wherever the tick labels put it
    ax.annotate(_wrapped(ax, summary, FONT_TEXT), xy=(0.0, 0.0), xycoords=("axes fraction", ax.xaxis.label),
                xytext=(0, -2), textcoords="offset points", ha="left", va="top", fontsize=FONT_TEXT)
    ax.set_title(_wrapped(ax, getattr(law, "description", repr(law)), FONT_TEXT), fontsize=FONT_TEXT)
    legend_kwargs = dict(fontsize=FONT_TEXT, frameon=False, handlelength=1.6,
                         handler_map={tuple: HandlerTuple(ndivide=None)} if law.atoms else None)
    _place_legend(ax, handles, labels, **legend_kwargs)
    return ax
