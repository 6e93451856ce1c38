"""The hard-edge table skips its deep probes where the law's mass below them is that of a factor's underflow atom.

FreeProductLaw._hard_edge estimates the edge exponent from the density at 1e2 and 1e10 × the smallest normal float.
Depth-1 gelu's factor puts the mass P of d < 1e−280 at d = 0; the axis solution bounds the law's mass below the
probes by 2 Re(1 + w(iη)) ≈ 2P there, within the rank bound 2P on what that atom changes, and the probes are skipped
(docs/derivations.md §2.6 (f)). Where they had read density 0 (σ_b² = 0.5) the table must equal the probed one; where
they had read a value (σ_b² = 0.3) that value must be noise (its sign or size changing with the η-path), and the table
now built must agree with F from an independent quadrature of the density far below the old table's end.
"""

import math

import numpy as np
import pytest

from rmt_init.theory import jacobian_spectrum
from rmt_init.theory._free_tables import _EDGE_FLOOR, FreeProductTables

_HIGH_PROBE = 1e10 * _EDGE_FLOOR


def test_skipped_only_where_the_mass_below_is_the_atoms():
    shallow = jacobian_spectrum(1, "gelu", sigma_b2=0.5)
    shallow.support
    assert shallow._deep_probes_displaced(_HIGH_PROBE)
    deeper = jacobian_spectrum(2, "gelu", sigma_b2=0.3)  # F(1e−298) ≈ 1e−10 ≫ P = 3.7e−18: probed as before
    deeper.support
    assert deeper.numerical[0].factor.underflow_mass > 0.0
    assert not deeper._deep_probes_displaced(_HIGH_PROBE)
    tanh = jacobian_spectrum(1, "tanh", sigma_b2=0.5)  # no underflow atom
    tanh.support
    assert tanh.numerical[0].factor.underflow_mass == 0.0
    assert not tanh._deep_probes_displaced(_HIGH_PROBE)


def test_skipped_table_equals_the_probed_one(monkeypatch):
    skipped = jacobian_spectrum(1, "gelu", sigma_b2=0.5)
    skipped.support
    assert skipped._deep_probes_displaced(_HIGH_PROBE)
    edge = skipped._hard_edge
    probed = jacobian_spectrum(1, "gelu", sigma_b2=0.5)
    probed.support
    monkeypatch.setattr(FreeProductTables, "_deep_probes_displaced", lambda self, x: False)
    xj = float(probed._raw_cdf_tables[0][0][1])
    deep = probed._pdf_vectorised(np.array([1e2 * _EDGE_FLOOR, _HIGH_PROBE]))
    assert not np.any(deep > 0)  # unresolved there: the probed table's exponent comes from the upper pair too
    reference = probed._hard_edge
    assert edge is not None and reference is not None and xj > 0
    np.testing.assert_array_equal(edge.log_x, reference.log_x)
    np.testing.assert_array_equal(edge.cumulative, reference.cumulative)
    assert edge.exponent == reference.exponent


@pytest.fixture(scope="module")
def gelu_03():
    law = jacobian_spectrum(1, "gelu", sigma_b2=0.3)
    law.support
    return law


def test_the_skipped_readings_were_noise(gelu_03):
    x = np.array([1e2 * _EDGE_FLOOR])
    readings = []
    for ratio in (0.25, 0.125):
        t, ok, _ = gelu_03._continue_eta(x, ratio)
        readings.append(float(-np.exp(t.real[0]) * np.sin(t.imag[0]) / math.pi))
    # a resolved density would agree between the two η-paths; these differ by more than their own size
    assert abs(readings[0] - readings[1]) > 0.5 * max(abs(readings[0]), abs(readings[1]))
    assert gelu_03._deep_probes_displaced(_HIGH_PROBE)


def test_table_agrees_with_an_independent_quadrature(gelu_03):
    edge = gelu_03._hard_edge
    assert edge is not None and edge.log_x[0] < math.log(1e-100)  # the probed table stopped at 1.1e−14
    nodes, _, above = gelu_03._raw_cdf_tables[0]
    top = float(nodes[1])
    g, gw = np.polynomial.legendre.leggauss(16)

    def reference(x: float) -> float:
        ends = np.linspace(math.log(x), math.log(top), int(math.ceil(8 * math.log10(top / x))) + 1)
        half = 0.5 * np.diff(ends)
        s = (0.5 * (ends[1:] + ends[:-1]))[:, None] + half[:, None] * g[None, :]
        xs = np.exp(s)
        above_x = float(((xs * gelu_03._pdf_vectorised(xs)) * gw[None, :]).sum(axis=1) @ half)
        return gelu_03._interval_masses[0] - float(above[1]) - above_x

    for x, probed_value in ((1e-20, 0.012050), (1e-32, 0.0019172)):
        exact = reference(x)
        table = float(gelu_03.cdf(np.array([x]))[0])
        assert abs(table - exact) <= 1e-10
        assert abs(probed_value - exact) > 1e-4  # the table from the noise exponent was this far off


def test_refined_step_in_four_equals_the_forty(monkeypatch):
    """A failed η-step redone in 4 sub-steps first (laws with tangent steps) reaches the root the 40 reach
    (docs/derivations.md §2.6 (g)): depth-1 gelu at σ_b² = 1, the first pass of its cdf tables (x = 0.023 fails a step)."""
    import rmt_init.theory._free_solver as free_solver

    class _Captured(Exception):
        pass

    law = jacobian_spectrum(1, "gelu", sigma_b2=1.0)
    law.support
    captured = []

    def capture(x):
        captured.append(np.array(x, float))
        raise _Captured

    with monkeypatch.context() as patch:
        patch.setattr(law, "_pdf_vectorised", capture)
        with pytest.raises(_Captured):
            law._raw_cdf_tables
    x = captured[0]
    redone = []
    original = type(law)._refine

    def counting(self, *args):
        calls = []
        newton = self._newton
        self._newton = lambda *a, **k: calls.append(1) or newton(*a, **k)
        try:
            out = original(self, *args)
        finally:
            del self._newton
        redone.append(len(calls))
        return out

    monkeypatch.setattr(type(law), "_refine", counting)
    fresh = jacobian_spectrum(1, "gelu", sigma_b2=1.0)
    fresh.support
    four = fresh._pdf_vectorised(x)
    assert redone and all(n == 4 for n in redone)  # every failed step converged in the 4 sub-steps (not the 40)
    monkeypatch.setattr(free_solver, "_REFINE_FIRST", 0)
    forty_law = jacobian_spectrum(1, "gelu", sigma_b2=1.0)
    forty_law.support
    forty = forty_law._pdf_vectorised(x)
    np.testing.assert_allclose(four, forty, rtol=1e-12, atol=0.0)
