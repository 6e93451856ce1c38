"""The width extrapolation of ``validation/claims/bn_batch_spectrum.py`` (deep matrix-free moment checks)."""
from __future__ import annotations

import math

import pytest

from validation.claims.bn_batch_spectrum import DEEP_BIAS_C, SIZES, _finite_variance, _width_extrapolation


def test_extrapolation_recovers_an_exact_multiplicative_excess():
    """Points on m(N) = m∞ exp(c L/N) give back ln m∞ and c to rounding."""
    m_inf, c, depth = 3.7, 8.6, 20
    pts = [(depth / n, m_inf * math.exp(c * depth / n), 0.05 * m_inf) for n in (256, 512, 1024)]
    a, se_a, c_fit, se_c = _width_extrapolation(pts)
    assert a == pytest.approx(math.log(m_inf), abs=1e-12) and c_fit == pytest.approx(c, rel=1e-10)
    assert se_a > 0 and se_c > 0


def test_two_point_extrapolation_standard_error():
    """Two widths: a = (x₂y₁ − x₁y₂)/(x₂ − x₁), SE² = (x₂²σ₁² + x₁²σ₂²)/(x₂ − x₁)² with σ = se/mean."""
    (x1, m1, s1), (x2, m2, s2) = (0.0195, 1.05, 0.02), (0.039, 1.4, 0.07)
    a, se_a, _, _ = _width_extrapolation([(x1, m1, s1), (x2, m2, s2)])
    y1, y2, v1, v2 = math.log(m1), math.log(m2), s1 / m1, s2 / m2
    assert a == pytest.approx((x2 * y1 - x1 * y2) / (x2 - x1), rel=1e-12)
    assert se_a == pytest.approx(math.hypot(x2 * v1, x1 * v2) / (x2 - x1), rel=1e-12)


def test_deep_sweeps_are_configured_in_every_size():
    for size, cfg in SIZES.items():
        deep = cfg["deep"]
        assert deep["trials"] >= 20 and deep["probes"] >= 1, size
        for act, batch, depth, widths in deep["sweeps"]:
            assert act in ("linear", "relu", "tanh") and depth <= 20 and _finite_variance(1, batch)
            assert list(widths) == sorted(widths)
    assert DEEP_BIAS_C[1] < DEEP_BIAS_C[2] < DEEP_BIAS_C[3]
