"""A smooth factor whose quadrature would not fit in memory refuses with a ValueError instead of being killed.

The law of d(z) = φ'(√q z)² is integrated on panels of half its analytic strip, which shrinks like 1/√q
(rmt_init.theory.gaussian_image.MAX_PANELS). A depth-1000 gelu residual stream reaches q ≈ 2e16: its factor asked
for 3.6e9 panels (a 27 GiB array) and the process was killed for memory. Such factors now keep only the window where
d is not constant (``constant_tails``, tests/test_smooth_large_q.py); a d that varies across its whole piece with a
strip that narrow still needs the panels, and is refused.
"""
from __future__ import annotations

import numpy as np
import pytest

import rmt_init
from rmt_init.theory import gaussian_image
from rmt_init.theory.gaussian_image import AnalyticPiece, GaussianImageS


def _oscillating(k: float):
    """d(z) = 1 + cos(k z)/2 on [−9, 9]: analytic, and nowhere constant (no tail to make an atom of)."""

    def jet(z: np.ndarray):
        z = np.asarray(z, complex)
        return 1.0 + 0.5 * np.cos(k * z), -0.5 * k * np.sin(k * z), -0.5 * k * k * np.cos(k * z)

    return AnalyticPiece(-9.0, 9.0, jet)


def test_a_factor_beyond_the_panel_bound_raises_naming_it() -> None:
    """strip 1e−6: 3.6e7 panels, refused before any array is allocated (the message names the law and the bound)."""
    with pytest.raises(ValueError, match=r"oscillating.*36000000 panels.*MAX_PANELS"):
        GaussianImageS([_oscillating(1e6)], strip=1e-6, name="oscillating d")


def test_a_large_q_factor_is_built_on_its_window() -> None:
    """gelu at q = 1e12 asked for 3.6e7 panels; its constant tails are atoms now: built on ≤ MAX_PANELS panels."""
    law = rmt_init.jacobian_spectrum(1, "gelu", residual=0.05, q0=1e12)
    assert 0 < law.mean() < float("inf")


def test_a_factor_below_the_bound_is_built() -> None:
    """q = 100 needs 360 panels: built on its whole piece (no atoms), and its law's mean is finite and positive."""
    law = rmt_init.jacobian_spectrum(1, "gelu", residual=0.05, q0=100.0)
    assert law.mean() > 0 and law.mean() < float("inf")
    assert gaussian_image.MAX_PANELS >= 360 and gaussian_image.TAIL_ATOMS_FROM >= 360
