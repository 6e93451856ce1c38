"""rmt_init: random-matrix theory of neural-network initialization.

Spectral laws of J Jᵀ for deep-network Jacobians (theory) and a PyTorch Monte Carlo engine that samples
the same objects, meeting in :func:`compare`.
"""
from .theory import (
    FussCatalan,
    Law,
    MarchenkoPastur,
    SingularValueLaw,
    SpectralLaw,
    bn_gradient_growth,
    critical_sigma_w2,
    finite_width_moments,
    free_product,
    fuss_catalan,
    jacobian_spectrum,
    lyapunov_exponents,
    marchenko_pastur,
    mean_field,
    rectangular_product,
)

from .compare import Comparison, compare

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "compare",
    "FussCatalan",
    "Law",
    "MarchenkoPastur",
    "SingularValueLaw",
    "SpectralLaw",
    "bn_gradient_growth",
    "critical_sigma_w2",
    "finite_width_moments",
    "free_product",
    "fuss_catalan",
    "jacobian_spectrum",
    "lyapunov_exponents",
    "mean_field",
    "marchenko_pastur",
    "rectangular_product",
]
