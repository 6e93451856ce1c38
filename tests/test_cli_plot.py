"""The law figure of the command line (``rmt-init spectrum``) and the density plots."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from rmt_init import cli, fuss_catalan, marchenko_pastur, plot


def test_spectrum_prints_summary_and_writes_figure(tmp_path, capsys):
    out = tmp_path / "figure.png"
    assert cli.main(["spectrum", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Fuss–Catalan law of depth 3" in text
    assert "9.48148" in text  # the edge 256/27
    assert "1, 4, 22, 140, 969" in text  # Fuss–Catalan numbers of order 3
    assert out.exists() and out.stat().st_size > 10_000
    assert not [p for p in os.listdir(tmp_path) if p != "figure.png"]  # no temp file left behind


def test_spectrum_subcommand_marchenko_pastur(tmp_path, capsys):
    assert cli.main(["spectrum", "--law", "marchenko-pastur", "--ratio", "4", "--no-plot"]) == 0
    text = capsys.readouterr().out
    assert "[(0.0, 0.75)]" in text and "1, 5, 29, 185, 1257" in text


def test_bad_input_is_one_clear_line(capsys):
    assert cli.main(["spectrum", "--depth", "0", "--no-plot"]) == 2
    assert "depth must be an integer >= 1; got 0" in capsys.readouterr().err


def test_density_plot_returns_axes_with_atoms_and_clipping():
    import matplotlib.pyplot as plt

    ax = plot.density(marchenko_pastur(4.0))
    line = ax.get_lines()[0]
    x, y = line.get_data()
    assert np.all(np.isfinite(y)) and x.min() > 1.0 and x.max() < 9.0
    assert any("atom mass 0.75" in t.get_text() for t in plot.mass_axis(ax).texts)
    ax2 = plot.density(fuss_catalan(3), singular_values=True)
    assert ax2.get_ylim()[1] < 10  # the divergence at 0 does not set the y-range
    assert ax2.get_xlabel().startswith("singular value")
    plt.close("all")


def test_clipped_edge_says_diverges_only_when_the_density_does():
    """Fuss–Catalan (ρ ~ x^{−3/4} at 0) diverges; Marchenko–Pastur at ratio 0.98 has a tall but finite
    peak at its soft lower edge, and a rectangular product's continuous part starts above 0: 'off scale'."""
    from rmt_init import rectangular_product

    def texts(law):
        ax = plot.density(law)
        return [t.get_text() for t in ax.texts + (plot.mass_axis(ax).texts if plot.mass_axis(ax) else [])]

    assert "↑ diverges" in texts(fuss_catalan(3))
    assert "↑ off scale" in texts(marchenko_pastur(0.98))
    rect = texts(rectangular_product([100, 130, 160]))
    assert "↑ diverges" not in rect and any(t.startswith("atom") for t in rect)
    matplotlib.pyplot.close("all")
