"""Figures: deep laws on log axes, atoms drawn by mass, no spurious lines, readable at paper size, bad input
refused, ``rmt_init.plot`` reachable after ``import rmt_init`` (issue 11, items 3, 8, 9, 12)."""
from __future__ import annotations

import functools
import math
import os
import subprocess
import sys
import types
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import rmt_init
from rmt_init import fuss_catalan, jacobian_spectrum, marchenko_pastur, plot
from rmt_init.theory.laws import Law

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@functools.lru_cache(maxsize=None)
def relu(depth: int):
    """The law of a ReLU network's Jacobian (one per depth: its tables are built once)."""
    return jacobian_spectrum(depth, "relu", init="kaiming_normal", nonlinearity="relu")


def all_texts(ax) -> list:
    """Every visible, non-empty text of the figure of ``ax`` (tick labels drawn, legend, title, annotations)."""
    fig = ax.figure
    fig.canvas.draw()
    return [t for t in fig.findobj(matplotlib.text.Text) if t.get_visible() and t.get_text().strip()]


# -------------------------------------------------------------------------------- package attributes
def test_plot_is_an_attribute_after_import_rmt_init_without_importing_matplotlib():
    """``import rmt_init; rmt_init.plot.compare(...)`` (the README) raised AttributeError; importing the package
    must still not import matplotlib or torch (fresh interpreter)."""
    code = (
        "import sys, rmt_init\n"
        "assert 'matplotlib' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)\n"
        "assert 'rmt_init.plot' not in sys.modules\n"
        "assert callable(rmt_init.plot.compare) and callable(rmt_init.plot.density)\n"
        "assert 'plot' in dir(rmt_init) and 'montecarlo' in dir(rmt_init)\n"
        "try:\n    rmt_init.no_such_name\nexcept AttributeError as e:\n    assert 'no_such_name' in str(e)\n"
        "else:\n    raise SystemExit('no AttributeError')\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_theory_all_lists_exactly_its_public_names():
    theory = rmt_init.theory
    public = {n for n, v in vars(theory).items() if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert len(theory.__all__) == len(set(theory.__all__))
    assert set(theory.__all__) == public
    for name in ("fuss_catalan", "jacobian_spectrum", "Law", "SpectralLaw", "free_product", "mean_field"):
        assert name in theory.__all__


# -------------------------------------------------------------------------------- bad input
def test_bad_input_names_the_argument():
    law = marchenko_pastur(4.0)
    samples = law.sample(400, rng=0)
    with pytest.raises(TypeError, match="law"):
        plot.density(None)
    with pytest.raises(TypeError, match="law"):
        plot.compare(None, samples)
    with pytest.raises(TypeError, match="law"):
        plot.compare("fuss-catalan", samples)
    with pytest.raises(ValueError, match="bins.*0"):
        plot.compare(law, samples, bins=0)
    with pytest.raises(ValueError, match="bins"):
        plot.compare(law, samples, bins=2.5)
    with pytest.raises(ValueError, match="scale.*'cubic'"):
        plot.density(law, scale="cubic")
    with pytest.raises(ValueError, match="scale"):
        plot.compare(law, samples, scale="cubic")
    with pytest.raises(ValueError, match="n must"):
        plot.density(law, n=0)
    with pytest.raises(ValueError, match="atom_tol"):
        plot.compare(law, samples, atom_tol=-1.0)
    with pytest.raises(TypeError, match="singular_values"):
        plot.density(law, singular_values="yes")
    with pytest.raises(ValueError, match="samples"):
        plot.compare(law, None)


class _PlainLaw(Law):
    """A law of the protocol that is not a law of squared singular values (uniform on (0, 1))."""

    @property
    def support(self):
        return (0.0, 1.0)

    def _pdf(self, x):
        return np.ones_like(x)


class _BrokenLaw(_PlainLaw):
    """A density that fails (NaN) everywhere: the log view cannot be computed."""

    def _pdf(self, x):
        return np.full_like(x, np.nan)


def test_singular_values_need_a_spectral_law():
    with pytest.raises(ValueError, match="singular_values"):
        plot.density(_PlainLaw(), singular_values=True)
    assert plot.density(_PlainLaw()).get_xscale() == "linear"


def test_log_view_falls_back_when_the_density_cannot_be_evaluated():
    assert plot.density(_BrokenLaw()).get_xscale() == "linear"  # auto: falls back
    with pytest.raises(ValueError, match="scale='log'"):
        plot.density(_BrokenLaw(), scale="log")


# -------------------------------------------------------------------------------- deep laws, log axes
def test_deep_laws_are_drawn_as_the_density_of_log_lambda():
    """Fuss–Catalan depth 100 (median ~1e−30, top edge ~273): on a linear axis only the top tail shows. The
    automatic view is λ·ρ(λ) on a log λ axis starting at 1e−300 (the floor; λ·ρ has not fallen to 1e−4 of
    its peak there)."""
    law = fuss_catalan(100)
    ax = plot.density(law)
    assert ax.get_xscale() == "log"
    assert "ln λ" in ax.get_ylabel()
    x, y = ax.get_lines()[0].get_data()
    assert x[0] >= plot.LOG_VIEW_MIN and x[0] < 1e-299 and x[-1] < law.upper_edge
    np.testing.assert_allclose(y, x * law.pdf(x), rtol=1e-12)
    lo, hi = ax.get_xlim()
    assert lo == pytest.approx(x[0], rel=1e-9) and hi == pytest.approx(x[-1], rel=1e-9)
    # what the axis shows is the mass above its left end: ∫ y d(ln x) = 1 − F(x₀); trapezoid on the drawn
    # grid, measured 1.0886e-3 vs F(x₀) = 1.0830e-3 at depth 100 (3e−6 apart): tolerance 3e−5
    shown = np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(np.log(x)))
    assert abs((1.0 - shown) - law.cdf(x[0])) < 3e-5
    # the same for singular values: the density of ln σ
    ax = plot.density(law, singular_values=True)
    assert ax.get_xscale() == "log" and "ln σ" in ax.get_ylabel()


def test_log_view_starts_where_the_density_of_ln_lambda_is_negligible():
    """Fuss–Catalan depth 3: λ·ρ(λ) ~ λ^{1/4} at 0, so it is 1e−4 of its peak near λ ~ 1e−16; the view
    starts one coarse grid step (0.5 decade) below that; the mass left of it is F(x₀) ≈ 5e−5 (measured)."""
    law = fuss_catalan(3)
    ax = plot.density(law, scale="log")
    x, y = ax.get_lines()[0].get_data()
    assert 1e-19 < x[0] < 1e-16
    assert y[0] < 1e-4 * y.max() < y[np.searchsorted(x, 1e-15)]
    assert law.cdf(x[0]) < 1e-4


@pytest.mark.parametrize(
    "law, depth, log",
    [
        (fuss_catalan, 3, False),  # 4.2 decades hold the middle 80 % of the mass
        (fuss_catalan, 5, False),  # 6.3
        (fuss_catalan, 6, True),  # 7.3
        (fuss_catalan, 20, True),
        (relu, 4, False),  # 4.5
        (relu, 6, False),  # 6.5
        (relu, 8, True),  # 8.5
    ],
)
def test_auto_scale_by_the_decades_the_mass_spans(law, depth, log):
    """Decided on λ, so that the σ view of the same law agrees (σ spans half as many decades)."""
    for singular_values in (False, True):
        ax = plot.density(law(depth), n=101, singular_values=singular_values)
        assert ax.get_xscale() == ("log" if log else "linear")


def test_scale_can_be_forced_and_an_axes_with_a_drawing_keeps_its_scale():
    assert plot.density(fuss_catalan(100), scale="linear", n=101).get_xscale() == "linear"
    assert plot.density(fuss_catalan(2), scale="log", n=101).get_xscale() == "log"
    _, ax = plt.subplots()
    ax.hist(fuss_catalan(20).sample(500, rng=0), bins=20)  # a linear histogram drawn first
    assert plot.density(fuss_catalan(20), ax=ax, n=101).get_xscale() == "linear"


def test_log_tick_labels_are_plain_numbers():
    """Not 2×10⁰, 3×10⁰: an axis over one decade (Marchenko–Pastur ratio 4: λ in [1, 9]) reads 1, 2, … ; an
    axis over hundreds of decades has at most 8 decade ticks, at a round step."""
    ax = plot.density(marchenko_pastur(4.0), scale="log")
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels(which="both") if t.get_text()]
    assert labels and all("times" not in s and "×" not in s for s in labels), labels
    assert {"1", "2", "3"} <= set(labels), labels
    ax = plot.density(fuss_catalan(100))
    ax.figure.canvas.draw()
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    exponents = np.log10(ticks)
    assert 3 <= len(ticks) <= 8
    assert np.allclose(exponents % 50, 0.0), exponents


# -------------------------------------------------------------------------------- atoms
def _atom_markers(ax):
    """(x, y) of the atom markers on the mass axis."""
    mass_ax = plot.mass_axis(ax)
    return [(float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in mass_ax.get_lines()]


def test_atoms_are_as_high_as_their_mass():
    """The hard-tanh network of Pennington et al. 2017 with orthogonal weights has atoms of mass 0.0084 (at 0)
    and 0.966 (at ≈1.03); they were stems of the same height."""
    law = jacobian_spectrum(4, "hardtanh", weights="orthogonal", sigma_w2=1.0005, sigma_b2=1e-3)
    assert len(law.atoms) == 2 and law.atoms[0][1] < 0.05 < 0.9 < law.atoms[1][1]
    ax = plot.density(law, n=201)
    mass_ax = plot.mass_axis(ax)
    assert mass_ax.get_ylim() == (0.0, 1.05) and mass_ax.get_ylabel() == "atom mass"
    markers = _atom_markers(ax)
    assert markers == [pytest.approx((loc, mass)) for loc, mass in law.atoms]
    labels = [t.get_text() for t in mass_ax.texts]
    assert labels == [f"atom mass {law.atoms[0][1]:.3g}", f"atom mass {law.atoms[1][1]:.3g}"]


def test_atom_at_zero_on_a_log_axis_is_drawn_at_the_left_edge():
    ax = plot.density(relu(16), n=201)
    assert ax.get_xscale() == "log"
    (x, y), = _atom_markers(ax)
    assert (x, y) == (0.0, 0.5)  # x in axes coordinates: the left edge
    assert [t.get_text() for t in plot.mass_axis(ax).texts] == ["atom at 0, mass 0.5"]


def test_one_mass_axis_for_several_laws():
    _, ax = plt.subplots()
    plot.density(marchenko_pastur(4.0), ax=ax, scale="linear")
    plot.density(marchenko_pastur(2.0), ax=ax, scale="linear")
    assert len(ax.figure.axes) == 2
    assert sorted(y for _, y in _atom_markers(ax)) == [0.5, 0.75]
    assert ax.get_ylim()[1] >= 1.25 * marchenko_pastur(4.0).pdf(1.8)  # the first law stays in view


class _HeavyAtomAtADivergence(Law):
    """An atom of mass 0.97 at 0 and the density 0.015/√x on (0, 1) (mass 0.03), diverging at the atom."""

    @property
    def support(self):
        return (0.0, 1.0)

    @property
    def atoms(self):
        return ((0.0, 0.97),)

    def _pdf(self, x):
        return 0.015 / np.sqrt(x)


@pytest.mark.parametrize("law", [relu(4), _HeavyAtomAtADivergence()], ids=["relu4", "heavy-atom"])
def test_atom_label_does_not_overlap_the_divergence_mark(law):
    """ReLU depth 4: ρ diverges at 0 where the atom of mass 1/2 sits; the labels were drawn on each other.
    A heavy atom puts its label at the height of the mark."""
    ax = plot.density(law, n=201)
    texts = [t for t in all_texts(ax) if t.get_text().startswith(("↑", "atom mass "))]
    assert sorted(t.get_text() for t in texts) == [f"atom mass {law.atoms[0][1]:.3g}", "↑ diverges"]
    renderer = ax.figure.canvas.get_renderer()
    first, second = (t.get_window_extent(renderer) for t in texts)
    assert not first.overlaps(second)


# -------------------------------------------------------------------------------- compare figures
def test_compare_histogram_has_no_edge_lines_and_the_right_area():
    """Bars without outlines (a bar's outline drew a vertical line at λ = 0 that reads as an atom), heights
    count/(total·width): area = the fraction of samples off the atom (1/2 ± 3·0.008: binomial at n = 4000)."""
    law = relu(3)
    samples = law.sample(4000, rng=2).reshape(4, -1)
    ax = plot.compare(law, samples)
    bars = ax.patches
    assert len(bars) == 80
    assert all(bar.get_linewidth() == 0.0 for bar in bars)
    area = sum(bar.get_height() * bar.get_width() for bar in bars)
    assert abs(area - 0.5) < 3 * math.sqrt(0.25 / 4000)
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["theory", "Monte Carlo", "atom at 0: theory, MC"]
    summary = [t.get_text() for t in ax.texts if t.get_text().startswith("KS")]
    assert len(summary) == 1 and "(4 trials × 1000)" in summary[0].replace("\n", " ")
    (_, theory), (_, mc) = _atom_markers(ax)
    # the MC marker is the atom's measured mass as rmt_init.compare decides it: law samples at the atom are
    # exactly 0, and the continuous samples next to it (a few in the 1e-9 window: the density diverges
    # there) are not taken as the atom
    assert theory == 0.5 and mc == pytest.approx(np.mean(samples == 0.0))


def test_compare_on_a_log_axis():
    """Fuss–Catalan depth 20 samples: the histogram of ln λ (area = 1 less the samples left of the axis) under
    λ·ρ(λ)."""
    law = fuss_catalan(20)
    samples = law.sample(4000, rng=3).reshape(4, -1)
    ax = plot.compare(law, samples)
    assert ax.get_xscale() == "log"
    lo = ax.get_lines()[0].get_xdata()[0]
    bars = ax.patches
    area = sum(bar.get_height() * math.log1p(bar.get_width() / bar.get_x()) for bar in bars)
    inside = np.mean(samples >= lo)
    assert area == pytest.approx(inside, abs=1e-9)
    assert abs(inside - law.sf(lo)) < 4 * math.sqrt(law.sf(lo) * law.cdf(lo) / 4000) + 1e-3


def test_paper_size_figures_have_readable_text():
    """A figure made here is 3.5 in wide (one column) and every text in it is at least 8 pt; titles and the
    numbers under the axes stay inside the figure."""
    law = relu(4)
    samples = law.sample(2000, rng=1).reshape(2, -1)
    for ax in (plot.density(law, n=201), plot.compare(law, samples), plot.density(fuss_catalan(100), n=201)):
        fig = ax.figure
        assert fig.get_figwidth() == pytest.approx(3.5)
        texts = all_texts(ax)
        assert texts
        small = [(t.get_text(), t.get_fontsize()) for t in texts if t.get_fontsize() < 8.0]
        assert not small, small
        renderer = fig.canvas.get_renderer()
        ticks = {id(t) for a in fig.axes for t in a.get_xticklabels(which="both") + a.get_yticklabels(which="both")}
        for t in (t for t in texts if id(t) not in ticks):  # tick labels outside the view limits are not drawn
            box = t.get_window_extent(renderer)
            assert box.x0 >= -1 and box.x1 <= fig.bbox.width + 1, t.get_text()
            assert box.y0 >= -1 and box.y1 <= fig.bbox.height + 1, t.get_text()


def test_a_point_mass_is_drawn_on_axes_from_zero():
    """An orthogonal linear network's Jacobian is a point mass at 1: no continuous part, so no density sets the
    axes; they were matplotlib's empty-plot default, a density axis from −0.05."""
    law = jacobian_spectrum(3, "linear", weights="orthogonal")
    assert law.atoms == ((1.0, 1.0),) and law.intervals == ()
    ax = plot.density(law)
    assert ax.get_ylim() == (0.0, 1.0) and ax.get_xlim() == (0.0, 1.5)
    assert _atom_markers(ax) == [(1.0, 1.0)]
