"""Figures of spectral laws (matplotlib). Every function takes ``ax=`` and returns the Axes.

``compare(law, result)`` overlays the theory on a Monte Carlo histogram with the numbers of
:func:`rmt_init.compare.compare` in the legend.

``density(law)`` draws the density of the squared singular values (or, with
``singular_values=True``, of the singular values σ = √λ, density 2σρ(σ²)); atoms are drawn as
stems whose height is labelled with their mass. Densities that diverge at an edge (Fuss–Catalan at
0) are clipped at the top of a y-range set by the density away from the edges, and marked.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .theory.laws import Law, SpectralLaw

__all__ = ["compare", "density", "evaluation_grid"]


def evaluation_grid(law: Law, n: int = 801) -> np.ndarray:
    """Points inside each interval of the continuous part, clustered at both edges (cosine spacing)."""
    pieces = []
    for a, b in law.intervals:
        theta = np.linspace(0.0, np.pi, n)[1:-1]
        pieces.append(a + (b - a) * 0.5 * (1.0 - np.cos(theta)))
    return np.concatenate(pieces) if pieces else np.array([])


def _diverges_at(law: Law, x: float) -> bool:
    """Whether the density grows without bound at the interval end nearest ``x`` (probed 1e−6 and 1e−10 of
    the interval inside it: a power-law divergence grows there, a finite peak, e.g. a rectangular law's
    soft lower edge, does not)."""
    ends = [(abs(x - e), e, 1.0 if e == a else -1.0, b - a) for a, b in law.intervals for e in (a, b)]
    if not ends:
        return False
    _, e, inward, width = min(ends)
    near, nearer = law.pdf(np.array([e + inward * 1e-6 * width, e + inward * 1e-10 * width]))
    return bool(np.isfinite(near) and nearer > 10.0 * near)


def density(
    law: Law,
    ax: Any = None,
    singular_values: bool = False,
    n: int = 801,
    label: str | None = None,
    atom_color: str | None = None,
    **line_kwargs: Any,
):
    """Plot the density of ``law`` (squared singular values, or singular values) and its atoms.

    Returns the matplotlib Axes.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    shown = law.singular_value_law() if singular_values and isinstance(law, SpectralLaw) else law
    x = evaluation_grid(shown, n)
    y = shown.pdf(x)
    (line,) = ax.plot(x, y, label=label or repr(law), **line_kwargs)
    # y-range: ignore 2% of each interval's width at its ends, where densities may diverge
    if x.size:
        keep = np.zeros(x.shape, dtype=bool)
        for a, b in shown.intervals:
            keep |= (x >= a + 0.02 * (b - a)) & (x <= b - 0.02 * (b - a))
        core = y[keep]
        top = 1.25 * float(np.max(core)) if core.size else float(np.max(y))
        if np.max(y) > top:
            ax.set_ylim(0.0, top)
            edge = x[np.argmax(y)]
            text = "↑ diverges" if _diverges_at(shown, edge) else "↑ off scale"
            ax.annotate(text, xy=(edge, top), xytext=(edge, 0.9 * top), ha="left", fontsize=8)
        else:
            ax.set_ylim(0.0, top)
    for location, mass in shown.atoms:
        ymax = ax.get_ylim()[1]
        ax.vlines(location, 0.0, 0.8 * ymax, color=atom_color or line.get_color(), lw=2)
        ax.plot([location], [0.8 * ymax], "o", color=atom_color or line.get_color())
        ax.annotate(f"atom {mass:.3g}", xy=(location, 0.8 * ymax), xytext=(4, 4), textcoords="offset points", fontsize=8)
    ax.set_xlabel("singular value σ" if singular_values else "squared singular value λ = σ²")
    ax.set_ylabel("density")
    return ax


def compare(
    law: Law,
    result: Any,
    ax: Any = None,
    singular_values: bool = False,
    bins: int = 80,
    label: str | None = None,
    atom_tol: float = 1e-9,
):
    """Theory density over the Monte Carlo histogram, atoms as markers, ``compare`` numbers in the legend.

    ``result``: a ``rmt_init.montecarlo`` result or an array of squared singular values. Samples that
    belong to an atom (within ``atom_tol`` × the largest sample, as in :func:`rmt_init.compare.compare`)
    are left out of the histogram, which is scaled to the remaining fraction of samples, so that it
    estimates the continuous part of the law drawn as a line; each atom is a marker at its mass (theory,
    filled) next to the Monte Carlo fraction (open), read on a second axis on the right. Returns the Axes.
    """
    import matplotlib.pyplot as plt

    from .compare import compare as compare_numbers
    from .compare import samples_of

    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 4.2))
    kind = "singular" if singular_values else "squared"
    numbers = compare_numbers(law, result, kind=kind, atom_tol=atom_tol)
    data = samples_of(result)
    scale = float(data.max()) if data.max() > 0 else 1.0
    at_atom = np.zeros(data.shape, dtype=bool)
    for loc, _ in law.atoms:
        at_atom |= np.abs(data - loc) <= atom_tol * max(scale, abs(loc))
    continuous = data[~at_atom]
    if singular_values:
        continuous = np.sqrt(continuous)
    if continuous.size:
        weights = np.full(continuous.size, 1.0 / data.size)
        edges = np.linspace(0.0, float(continuous.max()) * 1.0001, bins + 1)
        ax.hist(continuous, bins=edges, weights=weights / np.diff(edges)[0], color="0.78", edgecolor="0.6",
                lw=0.4, label=f"Monte Carlo ({numbers.n_trials} trials × {data.shape[1]})")
    density(law, ax=ax, singular_values=singular_values, label=label or "theory", atom_color="none", color="C3", lw=1.8)
    # density() draws atom stems in the given colour ("none": invisible); draw mass markers instead
    for text in list(ax.texts):
        if text.get_text().startswith("atom"):
            text.remove()
    if law.atoms:
        mass_ax = ax.twinx()
        for loc, mass in law.atoms:
            x = math.sqrt(loc) if singular_values else loc
            mc = mass + numbers.atom_errors[x]
            mass_ax.plot([x], [mass], "D", color="C3", ms=7, label=f"atom at {x:g}: mass {mass:.3g}")
            mass_ax.plot([x], [mc], "D", mfc="none", color="k", ms=9, label=f"MC fraction {mc:.3g}")
        mass_ax.set_ylim(0.0, 1.05)
        mass_ax.set_ylabel("atom mass")
        handles, labels = mass_ax.get_legend_handles_labels()
    else:
        handles, labels = [], []
    h0, l0 = ax.get_legend_handles_labels()
    summary = (
        f"KS {numbers.ks:.3f}   W₁ {numbers.wasserstein1:.3g}\n"
        f"mean {100 * numbers.moment_errors[1]:+.1f}% ± {100 * numbers.moment_stderrs[1]:.1f}%   "
        f"m₂ {100 * numbers.moment_errors[2]:+.1f}% ± {100 * numbers.moment_stderrs[2]:.1f}%\n"
        f"top edge {100 * numbers.edge_error:+.1f}%"
    )
    from matplotlib.patches import Patch

    ax.legend(h0 + handles + [Patch(color="none")], l0 + labels + [summary], fontsize=7.5, loc="upper right", frameon=False)
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(getattr(law, "description", repr(law)), 80)), fontsize=8)
    return ax
