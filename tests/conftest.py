"""Shared fixtures: no test leaks mpmath's working precision into the next one."""
from __future__ import annotations

import mpmath
import pytest


@pytest.fixture(autouse=True)
def _restore_mpmath_precision():
    # mpmath's precision is global state: a test that sets mp.dps (instead of using mpmath.workdps) would change
    # the precision, and the cost, of every mpmath reference computed after it (a 150-digit setting once made a
    # later quadrature overflow in mpmath's erfc). Restore it after every test.
    prec = mpmath.mp.prec
    yield
    mpmath.mp.prec = prec
