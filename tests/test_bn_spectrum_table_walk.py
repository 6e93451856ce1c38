"""The cdf table's tail search of the BN batch Jacobian law (docs/derivations.md §11) against a one-point-at-a-time walk.

``BNBatchJacobianLaw._log_table`` ends its table in s = ln x where the mass beyond, estimated from the local power law
of xρ, drops below 1e−13: stepping a sixteenth of a decade at a time from ln(mean) ± 2. The law evaluates the density
on chunks of that step sequence at once; the reference here is the plain walk — one step, one two-point density call
(xρ at s and its neighbour one step further out), the stopping rule applied — on a separate instance of the same law
(so the solver's remembered solutions follow the plain walk's own path). Both must stop at the same step: the
table's first and last panel ends are those points (for a gap above 0 the bottom end is the lower edge instead).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init.theory.bn_spectrum import _PANELS_PER_DECADE, _TAIL_MASS, bn_jacobian_spectrum

STEP = math.log(10.0) / _PANELS_PER_DECADE


def _plain_walk(law, start: float, direction: float, bottom: float | None) -> tuple[int, bool]:
    """(steps taken, whether the density vanished one step further out) by the stopping rule, one point at a time."""
    s, k = start, 0
    scale = float(law.mean())
    while True:
        x = np.exp(np.array([s, s + direction * STEP]))
        xr = x * law._pdf_vectorised(x)
        slope = abs(math.log(xr[1] / xr[0]) / STEP) if np.all(xr > 0) else math.inf
        if direction > 0:
            if not math.isfinite(slope):
                return k, True
            if xr[0] <= 0 or xr[0] / max(slope, 1e-3) < _TAIL_MASS or s > math.log(scale) + 800.0:
                return k, False
        elif xr[0] / max(slope, 1e-3) < _TAIL_MASS or s < bottom:
            return k, False
        s += direction * STEP
        k += 1


@pytest.mark.parametrize("activation, batch, depth", [("linear", 8, 2), ("linear", 16, 3)])
def test_table_ends_match_the_plain_walk(activation: str, batch: int, depth: int) -> None:
    law = bn_jacobian_spectrum(depth, activation, batch)
    ends = law._log_table[0]
    reference = bn_jacobian_spectrum(depth, activation, batch)
    log_mean = math.log(float(reference.mean()))
    k_hi, empty = _plain_walk(reference, log_mean + 2.0, 1.0, None)
    top = log_mean + 2.0 + (k_hi + empty) * STEP
    assert round((ends[-1] - (log_mean + 2.0)) / STEP) == k_hi + empty
    assert ends[-1] == pytest.approx(top, abs=1e-9)  # repeated addition against one product: rounding only
    edge = reference.lower_edge
    if edge > 0:  # a gap above the atom at 0 (linear, B = 8, depth 2): the table starts at the edge
        assert law.lower_edge == edge
        assert ends[0] == pytest.approx(math.log(edge), abs=1e-12)
    else:  # a hard edge at 0 (linear, B = 16, depth 3): the downward walk
        k_lo, _ = _plain_walk(reference, log_mean - 2.0, -1.0, math.log(np.finfo(float).tiny) + 2.0)
        assert k_lo > 10  # the walk goes decades below the mean (xρ ∝ x^κ with a small κ)
        assert round(((log_mean - 2.0) - ends[0]) / STEP) == k_lo
