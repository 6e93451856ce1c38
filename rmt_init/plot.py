"""Figures of spectral laws (matplotlib). Every function takes ``ax=`` and returns the Axes.

``density(law)`` draws the density of the squared singular values (or, with
``singular_values=True``, of the singular values σ = √λ, density 2σρ(σ²)); atoms are drawn as
stems whose height is labelled with their mass. Densities that diverge at an edge (Fuss–Catalan at
0) are clipped at the top of a y-range set by the density away from the edges, and marked.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .theory.laws import Law, SpectralLaw

__all__ = ["density", "evaluation_grid"]


def evaluation_grid(law: Law, n: int = 801) -> np.ndarray:
    """Points inside each interval of the continuous part, clustered at both edges (cosine spacing)."""
    pieces = []
    for a, b in law.intervals:
        theta = np.linspace(0.0, np.pi, n)[1:-1]
        pieces.append(a + (b - a) * 0.5 * (1.0 - np.cos(theta)))
    return np.concatenate(pieces) if pieces else np.array([])


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
            ax.annotate("↑ diverges", xy=(edge, top), xytext=(edge, 0.9 * top), ha="left", fontsize=8)
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
