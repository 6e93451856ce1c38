"""A soft-edge cdf table that its cosine series cannot resolve refuses instead of returning a wrong mass.

``SoftEdgeTable`` doubles N up to 1024 nodes; where the density has a spike narrower than the grid (a single gelu
residual block at q0 = 1e4, α = 0.5: N = 1024 stopped with mass 1.0038 and an error estimate of 2.8e−3, and the
law's cdf was normalised by that mass) it now raises FloatingPointError, and the residual law takes the generic
adaptive tables (mass 1 − 3e−15 on that law).
"""
import math

import numpy as np
import pytest

from rmt_init.theory.residual import SoftEdgeTable


def _semicircle(x, a=1.0, b=3.0):
    c, r = 0.5 * (a + b), 0.5 * (b - a)
    return np.where(np.abs(x - c) < r, 2.0 / (math.pi * r * r) * np.sqrt(np.maximum(r * r - (x - c) ** 2, 0.0)), 0.0)


def test_smooth_density_is_resolved():
    table = SoftEdgeTable(_semicircle, 1.0, 3.0)
    assert abs(table.mass - 1.0) < 1e-12
    # the semicircle's cdf at its centre is 1/2 by symmetry
    assert abs(table.cdf(np.array([2.0]))[0] - 0.5) < 1e-12


def test_unresolved_spike_refuses():
    width = 2e-3  # about the spacing of 1024 cosine nodes over [1, 3] (≈ 3e-3 in x there): seen, not resolved

    def spiky(x):
        return 0.5 * _semicircle(x) + 0.5 * np.exp(-0.5 * ((x - 2.2) / width) ** 2) / (width * math.sqrt(2 * math.pi))

    with pytest.raises(FloatingPointError, match="not resolved"):
        SoftEdgeTable(spiky, 1.0, 3.0)
