"""rmt_init: random-matrix theory of neural-network initialization.

Spectral laws of J Jᵀ for deep-network Jacobians (theory) and a PyTorch Monte Carlo engine that samples
the same objects, meeting in :func:`compare`.

The submodules ``rmt_init.theory``, ``rmt_init.plot`` (figures; matplotlib is imported only when a
figure is drawn) and ``rmt_init.montecarlo`` (imports torch) are attributes of the package after
``import rmt_init``; the last two are imported on first use, so that ``import rmt_init`` stays fast.
"""
import importlib as _importlib
from typing import Any as _Any
from .theory import (
    FussCatalan,
    Law,
    MarchenkoPastur,
    SingularValueLaw,
    SpectralLaw,
    bn_gradient_growth,
    critical_sigma_w2,
    finite_width_moments,
    relu_zero_fraction,
    free_product,
    fuss_catalan,
    jacobian_spectrum,
    lyapunov_exponents,
    marchenko_pastur,
    mean_field,
    rectangular_product,
)
from .theory import bn_jacobian_spectrum

from .compare import Comparison, compare
from .sweeps import sweep  # the function; its modules are rmt_init.sweeps.grid, .point, .store, .run, .report

__version__ = "0.1.0"

#: submodules imported on first attribute access (PEP 562), not by ``import rmt_init``
_LAZY_SUBMODULES = ("montecarlo", "plot")


def __getattr__(name: str) -> _Any:
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")  # also binds it as a package attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))


__all__ = [
    "Comparison",
    "compare",
    "sweep",
    "FussCatalan",
    "Law",
    "MarchenkoPastur",
    "SingularValueLaw",
    "SpectralLaw",
    "bn_gradient_growth",
    "critical_sigma_w2",
    "finite_width_moments",
    "relu_zero_fraction",
    "free_product",
    "fuss_catalan",
    "jacobian_spectrum",
    "lyapunov_exponents",
    "mean_field",
    "marchenko_pastur",
    "rectangular_product",
    "bn_jacobian_spectrum",
]
