"""xρ(x) far below a spectrum next to a hard edge at 0, from a few solved points (docs/derivations.md §11.12).

Deep batch-norm Jacobian laws (:mod:`rmt_init.theory.bn_spectrum`) hold much of their mass many decades below their
mean: relu, B = 16, depth 20 has 0.27 of its continuous mass below 1e−3 and 0.017 below 1e−40 × the mean. There
``ln xρ`` is a smooth, slowly bending function of ``s = ln x`` (its slope went 0.036 → 0.0498 between 1e−36 and 1e−84
on that law, towards 0.05), so it is tabulated once on knots in ``s`` — spaced geometrically, fine next to the
top where it bends — interpolated by a cubic spline, and every knot interval is checked at its midpoint against
the solver and split until the spline is within :data:`TOLERANCE` there. A power-law fit over one decade (what
this replaces) missed the bend and put 0.0031 too much mass below 1e−40 × the mean on that law.
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.interpolate import CubicSpline

TOLERANCE = 1e-6  # |Δ ln xρ| at a knot interval's midpoint (or |Δ xρ| ≤ the noise floor) before it is accepted
FIRST_STEP = 0.5  # decades between the first two knots …
GROWTH = 1.15  # … growing by this factor per knot
UNSOLVED_MASS = 1e-13  # an unsolved knot may end the knots only if the mass below the last solved one is below this
ROUNDS = 12  # interval halvings at most (2⁻¹² of a knot step); more: FloatingPointError


class DeepTail:
    """``xρ(s)`` for ``s ≤ top`` from a cubic spline of ``ln xρ`` on solved knots; below the last knot (where
    xρ falls to the noise floor, or the smallest normal float) the power law of the last two knots.

    ``error`` is the largest |Δ ln xρ| the accepted midpoint checks measured (before those midpoints joined the
    knots, so an upper estimate of the spline's error), leaving out those accepted as |Δ xρ| ≤ the noise floor.
    """

    def __init__(self, knots: np.ndarray, log_xr: np.ndarray, error: float) -> None:
        order = np.argsort(knots)
        self.knots = knots[order]
        self.log_xr = log_xr[order]
        self.error = float(error)
        self._spline = CubicSpline(self.knots, self.log_xr)
        ds = self.knots[1] - self.knots[0]
        self.bottom_slope = max((self.log_xr[1] - self.log_xr[0]) / ds, 0.0)

    def __call__(self, s: np.ndarray) -> np.ndarray:
        s = np.asarray(s, float)
        low = s < self.knots[0]
        out = np.empty(s.shape)
        out[~low] = np.exp(self._spline(np.minimum(s[~low], self.knots[-1])))
        out[low] = np.exp(self.log_xr[0] + self.bottom_slope * (s[low] - self.knots[0]))
        return out


def build_deep_tail(xr_at: Callable[[np.ndarray], np.ndarray], top: float, floor: float, noise: float) -> DeepTail:
    """Tabulate ``xρ = xr_at(s)`` (the solver; NaN where unsolved) from ``top`` down to ``floor`` (both in s = ln x).

    Knots at ``top − Σ_k FIRST_STEP·GROWTH^k`` decades and at ``floor``, stopping at the first whose xρ is ≤ ``noise`` (0 for the
    law) or below ``floor``, or at an unsolved one where the power law of the two knots above puts less than
    :data:`UNSOLVED_MASS` below them (else FloatingPointError). Each interval's midpoint is solved; where the spline misses it by more than
    :data:`TOLERANCE` in ln xρ (and by more than ``noise`` in xρ) the midpoint becomes a knot and its two halves are
    checked again. Raises FloatingPointError if a checked midpoint is unsolved or the checks do not pass within
    :data:`ROUNDS` halvings.
    """
    decade = math.log(10.0)
    knots = [top]
    step = FIRST_STEP * decade
    while knots[-1] - step > floor:
        knots.append(knots[-1] - step)
        step *= GROWTH
    knots.append(floor)  # the last interval is checked like the others
    s = np.array(knots)
    xr = xr_at(s)
    bad = ~(np.isfinite(xr) & (xr > noise))
    if bad[0] or bad[1]:
        raise FloatingPointError(f"xρ is not resolved at the deep tail's top knots (x = {math.exp(top):.3g}): {xr[:2]}")
    end = int(np.argmax(bad)) if bad.any() else s.size
    if end < s.size and np.isnan(xr[end]):
        # an unsolved knot ends the knots only where the mass below the last solved one is negligible (the power law
        # of the last two knots continues there); else the tail below is unknown
        slope = math.log(xr[end - 1] / xr[end - 2]) / (s[end - 1] - s[end - 2])
        if not (slope > 0 and xr[end - 1] / slope <= UNSOLVED_MASS):
            raise FloatingPointError(f"the solver reached no solution at x = {math.exp(float(s[end])):.3g} while "
                                     "tabulating the law's deep tail")
    s, xr = s[:end], xr[:end]
    logs = np.log(xr)
    check = np.ones(s.size - 1, bool)  # intervals (i, i + 1), in the order of s (descending)
    worst = 0.0
    for _ in range(ROUNDS):
        spline = CubicSpline(s[::-1], logs[::-1])
        mid = 0.5 * (s[:-1] + s[1:])[check]
        xm = xr_at(mid)
        if not np.all(np.isfinite(xm)):
            raise FloatingPointError(f"the solver reached no solution at x = {math.exp(float(mid[~np.isfinite(xm)][0])):.3g} "
                                     "while tabulating the law's deep tail")
        predicted = spline(mid)
        with np.errstate(divide="ignore"):
            miss = np.abs(predicted - np.log(xm))
        fails = (miss > TOLERANCE) & (np.abs(np.exp(predicted) - xm) > noise)
        within = miss <= TOLERANCE  # (the others passed on the noise floor: |Δ xρ| ≤ noise)
        worst = max(worst, float(np.max(miss[within], initial=0.0)))
        keep = xm > noise  # a midpoint at the noise floor (within the last interval) is no knot
        # every solved midpoint joins the knots; the halves of the intervals that failed are checked again
        new_s = np.concatenate([s, mid[keep]])
        new_log = np.concatenate([logs, np.log(xm[keep])])
        order = np.argsort(-new_s)
        s, logs = new_s[order], new_log[order]
        failed_mids = mid[fails & keep]
        if failed_mids.size == 0:
            return DeepTail(s, logs, worst)
        # an interval of the new knots is checked again if one of its ends is a failed midpoint
        at = np.isin(s, failed_mids)
        check = at[:-1] | at[1:]
    raise FloatingPointError(f"the deep tail's spline did not reach |Δ ln xρ| ≤ {TOLERANCE:g} within {ROUNDS} halvings "
                             f"(worst miss {float(np.max(miss)):.3g})")
