"""Elementary functions evaluated without cancellation where the laws need them.

``log_sinc(y) = log(sin y / y)`` and ``cot_minus_inverse(y) = cot y − 1/y`` for 0 ≤ y < π. Near
y = 0 the direct formulas cancel; there both come from factorially convergent Taylor series with no
cancellation of their own (each series is dominated by its first term):

    sin y / y − 1     = Σ_{n≥1} (−1)^n y^{2n} / (2n+1)!            → log_sinc = log1p(·)
    y cos y − sin y   = Σ_{n≥1} (−1)^n 2n y^{2n+1} / (2n+1)!       → cot y − 1/y = (·) / (y sin y)

(Abramowitz & Stegun 4.3.65–4.3.66). The series are used for y < 1.2 with 12 terms (truncation below
1.2^24/25! ≈ 1e-23 relative to the first term); beyond, the direct formulas lose nothing (|log(sin y
/ y)| > 0.25 and |cot y − 1/y| > 0.4 there). Checked against mpmath at 40 digits: relative error
≤ 6e-16 on (0, 3].
"""
from __future__ import annotations

from math import factorial

import numpy as np

__all__ = ["log_sinc", "cot_minus_inverse", "log_sinc_and_cot"]

_SERIES_CUTOFF = 1.2
_TERMS = 12
_SINC = np.array([(-1) ** n / factorial(2 * n + 1) for n in range(1, _TERMS + 1)])
_YCOS_MINUS_SIN = np.array([(-1) ** n * 2 * n / factorial(2 * n + 1) for n in range(1, _TERMS + 1)])
_BOTH = np.stack([_SINC, _YCOS_MINUS_SIN])


def _series_over_y2(coefficients: np.ndarray, y2: np.ndarray) -> np.ndarray:
    """Σ_{k≥1} c_k y^{2k−2} (Horner in y²): the even series divided by y²."""
    acc = np.full_like(y2, coefficients[-1])
    for c in coefficients[-2::-1]:  # in place: the same operations without a temporary per term
        np.multiply(acc, y2, out=acc)
        np.add(acc, c, out=acc)
    return acc


def log_sinc(y: np.ndarray) -> np.ndarray:
    """log(sin y / y) for 0 ≤ y < π, to a few ulps including y → 0 (where it is −y²/6)."""
    y = np.asarray(y, float)
    small = y < _SERIES_CUTOFF
    out = np.empty_like(y)
    y2 = y[small] ** 2
    out[small] = np.log1p(_series_over_y2(_SINC, y2) * y2)
    big = ~small
    out[big] = np.log(np.sin(y[big]) / y[big])
    return out


def cot_minus_inverse(y: np.ndarray) -> np.ndarray:
    """cot y − 1/y for 0 ≤ y < π, to a few ulps including y → 0 (where it is −y/3; 0 at y = 0)."""
    y = np.asarray(y, float)
    small = y < _SERIES_CUTOFF
    out = np.empty_like(y)
    ys = y[small]
    # (y cos y − sin y)/(y sin y) = T(y²) · y · (y / sin y), T = series / y³: no underflow for tiny y.
    positive = np.where(ys > 0, ys, 1.0)
    ratio = positive / np.sin(positive)
    out[small] = np.where(ys > 0, _series_over_y2(_YCOS_MINUS_SIN, ys**2) * ys * ratio, 0.0)
    big = ~small
    out[big] = 1.0 / np.tan(y[big]) - 1.0 / y[big]
    return out


def log_sinc_and_cot(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(log_sinc(y), cot_minus_inverse(y))`` in one pass: the same formulas, values bit for bit, with the
    split into series and direct ranges, the squares and the gathers shared (on 10³ points the per-call
    overhead of the two separate functions cost more than their arithmetic)."""
    y = np.asarray(y, float)
    small = y < _SERIES_CUTOFF
    log_out = np.empty_like(y)
    cot_out = np.empty_like(y)
    ys = y[small]
    y2 = ys**2
    # both series by one Horner recursion on a (2, m) array: half the array operations, the same values
    acc = np.empty((2,) + y2.shape)
    acc[:] = _BOTH[:, -1:]
    for k in range(_TERMS - 2, -1, -1):
        np.multiply(acc, y2, out=acc)
        np.add(acc, _BOTH[:, k : k + 1], out=acc)
    log_out[small] = np.log1p(acc[0] * y2)
    positive = np.where(ys > 0, ys, 1.0)
    ratio = positive / np.sin(positive)
    cot_out[small] = np.where(ys > 0, acc[1] * ys * ratio, 0.0)
    big = ~small
    yb = y[big]
    log_out[big] = np.log(np.sin(yb) / yb)
    cot_out[big] = 1.0 / np.tan(yb) - 1.0 / yb
    return log_out, cot_out
