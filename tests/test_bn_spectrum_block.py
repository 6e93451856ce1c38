"""BN batch Jacobian: public names, the largest eigenvalue's extreme-value law and the per-example block law
(docs/derivations.md §11.8–§11.9)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import rmt_init
from rmt_init import theory


def test_public_names_import() -> None:
    from rmt_init.theory import BNBatchJacobianLaw, BNGenericJacobianLaw, ChannelLawS  # noqa: F401
    from rmt_init.theory import bn_spectrum

    for name in bn_spectrum.__all__:
        assert getattr(theory, name) is getattr(bn_spectrum, name)
        assert name in theory.__all__
    assert issubclass(BNGenericJacobianLaw, BNBatchJacobianLaw)
    assert rmt_init.bn_jacobian_spectrum is bn_spectrum.bn_jacobian_spectrum
