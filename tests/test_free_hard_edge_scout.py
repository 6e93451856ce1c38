"""The hard-edge table solves full panels only above the highest panel whose lowest node is unresolved.

FreeProductLaw._hard_edge keeps the panels above the highest unresolved one (density not finite and positive) and
puts the mass below them into its exact remainder. Unresolved points are the solver's expensive ones — gelu at depth
1, σ_b² = 1 reads density 0 below ~1e−283, and its 512 table points there took 69 s of the 93 s cdf tables — so the
lowest node of every panel is solved first (:meth:`_edge_panel_density`; top-down, in halving batches, down to the
first batch holding an unresolved node), and the other seven nodes only above the highest unresolved one. Here the
depth-3 linear (Fuss–Catalan) law's density is made 0 below 1e−40: the table must equal the one from every node (the
same panels kept, the same masses), the seven upper nodes of the panels below the cut must not be solved, nor the
lowest nodes of the panels below the batch that met the cut.
"""

import numpy as np

from rmt_init.theory import jacobian_spectrum
from rmt_init.theory._free_tables import FreeProductTables

_CUT = 1e-40  # the table would go down to ~1e−67 (16 decades of F ∝ x^{1/4})


def _law_with_cut(monkeypatch, counter):
    law = jacobian_spectrum(3, "linear")
    law.support
    original = law._pdf_vectorised

    def density(x):
        x = np.asarray(x, float)
        counter.append(int(np.count_nonzero(x < _CUT)))
        return np.where(x < _CUT, 0.0, original(x))

    monkeypatch.setattr(law, "_pdf_vectorised", density)
    return law


def test_scouted_table_equals_the_full_one(monkeypatch):
    below_scouted: list[int] = []
    scouted = _law_with_cut(monkeypatch, below_scouted)._hard_edge
    below_full: list[int] = []
    law = _law_with_cut(monkeypatch, below_full)
    monkeypatch.setattr(FreeProductTables, "_edge_panel_density", lambda self, x, noise: self._pdf_vectorised(x))
    full = law._hard_edge
    assert scouted is not None and full is not None
    assert np.log(_CUT) <= scouted.log_x[0] < np.log(_CUT) + 2.0  # the table stops at the cut (a panel above it)
    np.testing.assert_array_equal(scouted.log_x, full.log_x)
    np.testing.assert_allclose(scouted.cumulative, full.cumulative, rtol=1e-13)
    assert scouted.exponent == full.exponent or abs(scouted.exponent / full.exponent - 1.0) <= 1e-12
    # below the cut, eight nodes per panel in the full table; the scouts run top-down in halving batches and stop at the
    # first batch holding an unresolved node, so at most half of the panels below the cut (here 43 of ~108) have their
    # lowest node solved (and the two lower probes): one node per panel everywhere would be ~108
    panels_below = sum(below_full) // 8
    assert panels_below > 10 and sum(below_scouted) <= panels_below // 2 + 4
