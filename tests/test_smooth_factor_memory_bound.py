"""A smooth factor whose quadrature would not fit in memory refuses with a ValueError instead of being killed.

The law of d(z) = φ'(√q z)² is integrated on panels of half its analytic strip, which shrinks like 1/√q
(rmt_init.theory.gaussian_image.MAX_PANELS). A depth-1000 gelu residual stream reaches q ≈ 2e16: its factor asked
for 3.6e9 panels (a 27 GiB array) and the process was killed for memory.
"""
from __future__ import annotations

import pytest

import rmt_init
from rmt_init.theory import gaussian_image


def test_a_factor_beyond_the_panel_bound_raises_naming_q() -> None:
    with pytest.raises(ValueError, match=r"gelu'\(√q z\)², q=1e\+12.*36000000 panels.*MAX_PANELS"):
        rmt_init.jacobian_spectrum(1, "gelu", residual=0.05, q0=1e12)


def test_a_factor_below_the_bound_is_built() -> None:
    """q = 1e4 needs 3600 panels: built, and its law's mean is the exact one (finite, positive)."""
    law = rmt_init.jacobian_spectrum(1, "gelu", residual=0.05, q0=1e4)
    assert law.mean() > 0 and law.mean() < float("inf")
    assert gaussian_image.MAX_PANELS >= 3600
