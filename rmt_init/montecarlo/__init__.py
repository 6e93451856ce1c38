"""Monte Carlo engine (torch + numpy; never imports :mod:`rmt_init.theory`).

Samples the objects the theory predicts: singular values of random matrix products
(:func:`product_spectrum`, QR-stabilised for deep products) and input-output Jacobians of real
``torch.nn`` networks at initialisation (:func:`network_jacobian_spectrum`), with per-layer
activation/gradient statistics, or those statistics alone at the cost of one backward pass
(:func:`network_layer_stats`), or the moments of the Jacobian spectrum by matrix-free Hutchinson traces
(:func:`network_jacobian_moments`, never forming the batch Jacobian); results are :class:`SpectrumResult` / :class:`LayerStatsResult` objects
(``.samples``, ``.growth_rates``, ``.gradient_growth()``, ``.to_xarray()``; printing one shows a short
summary). :func:`chained_jacobian` is the exact Jacobian of a ``torch.nn.Sequential`` of the
:data:`SUPPORTED_MODULES`; any other module is refused with a ``ValueError``. :func:`delta_orthogonal_` is the
delta-orthogonal conv kernel of Xiao et al. 2018 in ``torch.nn.init`` style (``weights="delta_orthogonal"`` for
conv nets in :func:`network_jacobian_spectrum`).
"""
from .delta_orthogonal import delta_orthogonal_
from .engine import BATCHNORM_MODES, LAYER_STATS, network_jacobian_spectrum, structural_zero_count
from .ensembles import WeightInit, sample_matrices, weight_init
from .jacobian_moments import PROBES, JacobianMomentsResult, network_jacobian_moments
from .jacobians import ELEMENTWISE_ACTIVATIONS, SUPPORTED_MODULES, chained_jacobian
from .layer_stats import layer_statistics, network_layer_stats
from .model_jacobian import MODEL_JACOBIAN_METHODS, model_jacobian_spectrum
from .matrix_free import (
    FORWARD_MODES,
    JacobianOperator,
    SLQEstimate,
    lanczos_squared_singular_values,
    stochastic_lanczos_quadrature,
)
from .networks import Erf, build_conv, build_mlp, make_activation
from .products import product_spectrum, qr_log_singular_values
from .results import GrowthEstimate, LayerStatsResult, ModelSpectrumResult, SpectrumResult
from .architectures import ResidualMLP, TransformerMLPBlock, cifar_resnet, resnet20, resnet56, resnet110
from .initialize import INITIALIZE_SCHEMES, initialize_
from .model_stats import MODEL_STATS, ModelStatsResult, model_layer_stats

__all__ = [
    # entry points
    "product_spectrum",
    "network_jacobian_spectrum",
    "network_jacobian_moments",
    "network_layer_stats",
    "chained_jacobian",
    # results
    "SpectrumResult",
    "LayerStatsResult",
    "GrowthEstimate",
    "JacobianMomentsResult",
    # building blocks
    "WeightInit",
    "delta_orthogonal_",
    "weight_init",
    "sample_matrices",
    "build_mlp",
    "build_conv",
    "make_activation",
    "Erf",
    "layer_statistics",
    "qr_log_singular_values",
    "structural_zero_count",
    # matrix-free Jacobian spectra
    "JacobianOperator",
    "SLQEstimate",
    "lanczos_squared_singular_values",
    "stochastic_lanczos_quadrature",
    # vocabularies
    "BATCHNORM_MODES",
    "LAYER_STATS",
    "ELEMENTWISE_ACTIVATIONS",
    "FORWARD_MODES",
    "PROBES",
    "SUPPORTED_MODULES",
    # any nn.Module
    "model_jacobian_spectrum",
    "ModelSpectrumResult",
    "MODEL_JACOBIAN_METHODS",
    # reference architectures, whole-model initialization, per-module statistics of any model
    "cifar_resnet",
    "resnet20",
    "resnet56",
    "resnet110",
    "ResidualMLP",
    "TransformerMLPBlock",
    "initialize_",
    "INITIALIZE_SCHEMES",
    "model_layer_stats",
    "ModelStatsResult",
    "MODEL_STATS",
]
