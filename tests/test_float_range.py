"""Deep laws far from 1: exact where float64 can hold them, refused (ValueError) where it cannot."""
from __future__ import annotations

import math

import numpy as np
import pytest

import rmt_init

SLOPE = 0.01  # torch.nn.LeakyReLU's default negative slope


@pytest.mark.parametrize("init", ["xavier_normal", "orthogonal"])
def test_deep_ordered_leaky_relu_law_is_exact_below_1e_minus_50(init):
    """σ_w² = 1 (xavier gain 1, square), E φ'² = (1 + a²)/2: the mean is ((1 + a²)/2)^L exactly (Pennington et
    al. 2018: the mean of a free product is the product of the factors' means). Its sixth moment is ~1e−350,
    which used to underflow in the float S-series and break the edge search (math domain error)."""
    depth = 200
    law = rmt_init.jacobian_spectrum(depth, "leaky_relu", init=init)
    mean = ((1 + SLOPE**2) / 2) ** depth
    assert law.mean() == pytest.approx(mean, rel=1e-12)
    m6 = law.moment(6, method="exact")
    assert 0 < float(m6) < 1e-300 or float(m6) == 0.0  # below float range as a float, but exact:
    assert float(rmt_init.theory.free._log_of_positive(m6)) < math.log(1e-300)
    lo, hi = law.support
    assert 0 <= lo < hi < 1e-50 and math.isfinite(hi)
    # the edge is at least every m_k^{1/k}
    assert hi >= law.moment(2) ** 0.5
    x = np.linspace(0, hi, 9)[1:-1]
    assert np.all(np.isfinite(law.pdf(x))) and np.all(law.pdf(x) >= 0)


def test_law_outside_the_float_range_is_refused_with_its_scale():
    law = rmt_init.jacobian_spectrum(1000, "leaky_relu", init="xavier_normal")
    assert float(law.moment(1, method="exact")) == pytest.approx(((1 + SLOPE**2) / 2) ** 1000, rel=1e-10)
    for call in (lambda: law.support, lambda: law.pdf(1e-300), lambda: law.ppf(0.5)):
        with pytest.raises(ValueError, match="float64 range"):
            call()
