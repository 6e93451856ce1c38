"""Infinite- and finite-width theory (numpy, scipy, mpmath only; never imports torch)."""
from .activations import (
    Activation,
    DerivativeSquaredLaw,
    bivariate_gaussian_expectation,
    derivative_moments,
    derivative_sq_law,
    gaussian_expectation,
    get_activation,
)
from .batchnorm import BatchNormComparison, bn_gradient_growth, bn_structural_zeros, bn_vs_no_bn
from .fuss_catalan import FussCatalan, fuss_catalan
from .inits import InitScheme, calculate_gain, init_scheme
from .laws import Law, LogLaw, SingularValueLaw, SpectralLaw
from .marchenko_pastur import MarchenkoPastur, marchenko_pastur
from .meanfield import (
    CriticalPoint,
    DepthScales,
    MeanFieldState,
    c_map,
    c_star,
    c_trajectory,
    chi1,
    critical_point_from_q,
    critical_sigma_w2,
    depth_scales,
    mean_field,
    q_map,
    q_star,
    q_trajectory,
)
from .free import (
    DiscreteS,
    FreeProductLaw,
    MomentS,
    RationalS,
    change_dimension,
    dirac_s,
    free_product,
    marchenko_pastur_s,
    rectangular_product,
    s_transform,
    two_point_s,
)
from .jacobian import JacobianLaw, jacobian_spectrum
from .conv import (
    CONV_WEIGHTS,
    ConvJacobianLaw,
    ConvMoments,
    conv_fourier_blocks,
    conv_jacobian_spectrum,
    conv_linear_moments,
    conv_position_spread,
)
from .cifar_resnet import MASKS, CifarResNetMeanField, cifar_resnet_mean_field
from .residual_bn import (
    BNResidualMeanField,
    bn_residual_alphas,
    bn_residual_depth_parameter,
    bn_residual_mean_field,
)
from .residual import (
    ResidualBlockS,
    ResidualJacobianLaw,
    ResidualLimitS,
    ResidualMeanField,
    residual_block_law,
    residual_depth_parameter,
    residual_limit_law,
    residual_mean_field,
)
from .finite import (
    ConditionNumberGrowth,
    FiniteWidthMoments,
    LogNormSquaredLaw,
    TopSingularValueGrowth,
    condition_number_growth,
    finite_width_moments,
    log_norm_squared_law,
    lyapunov_exponents,
    lyapunov_variances,
    relu_zero_fraction,
    top_singular_value_growth,
)
from .bn_spectrum import (
    BNBatchJacobianLaw,
    BNGenericJacobianLaw,
    BNJacobianMoments,
    BNPerExampleLaw,
    ChannelLawS,
    InverseChiSquareS,
    LargestEigenvalueLaw,
    bn_jacobian_moments,
    bn_jacobian_spectrum,
    bn_per_example_mean,
)
from .bn_per_example import BNPerExampleExactLaw, bn_per_example_moments

#: the public names of the theory, in the order of the imports above (tests check that it lists every public
#: name imported here and nothing else)
__all__ = [
    # activations
    "Activation",
    "DerivativeSquaredLaw",
    "bivariate_gaussian_expectation",
    "derivative_moments",
    "derivative_sq_law",
    "gaussian_expectation",
    "get_activation",
    # batch normalization
    "BatchNormComparison",
    "bn_gradient_growth",
    "bn_structural_zeros",
    "bn_vs_no_bn",
    # classical laws and the law protocol
    "FussCatalan",
    "fuss_catalan",
    "InitScheme",
    "calculate_gain",
    "init_scheme",
    "Law",
    "LogLaw",
    "SingularValueLaw",
    "SpectralLaw",
    "MarchenkoPastur",
    "marchenko_pastur",
    # mean field
    "CriticalPoint",
    "DepthScales",
    "MeanFieldState",
    "c_map",
    "c_star",
    "c_trajectory",
    "chi1",
    "critical_point_from_q",
    "critical_sigma_w2",
    "depth_scales",
    "mean_field",
    "q_map",
    "q_star",
    "q_trajectory",
    # free probability
    "DiscreteS",
    "FreeProductLaw",
    "MomentS",
    "RationalS",
    "change_dimension",
    "dirac_s",
    "free_product",
    "marchenko_pastur_s",
    "rectangular_product",
    "s_transform",
    "two_point_s",
    # network Jacobians
    "JacobianLaw",
    "jacobian_spectrum",
    # convolutional networks
    "CONV_WEIGHTS",
    "ConvJacobianLaw",
    "ConvMoments",
    "conv_fourier_blocks",
    "conv_jacobian_spectrum",
    "conv_linear_moments",
    "conv_position_spread",
    # CIFAR ResNets (conv, zero padding, option-A shortcuts)
    "MASKS",
    "CifarResNetMeanField",
    "cifar_resnet_mean_field",
    # batch norm in residual branches
    "BNResidualMeanField",
    "bn_residual_alphas",
    "bn_residual_depth_parameter",
    "bn_residual_mean_field",
    # residual networks
    "ResidualBlockS",
    "ResidualJacobianLaw",
    "ResidualLimitS",
    "ResidualMeanField",
    "residual_block_law",
    "residual_depth_parameter",
    "residual_limit_law",
    "residual_mean_field",
    # finite width
    "ConditionNumberGrowth",
    "FiniteWidthMoments",
    "LogNormSquaredLaw",
    "TopSingularValueGrowth",
    "condition_number_growth",
    "finite_width_moments",
    "relu_zero_fraction",
    "log_norm_squared_law",
    "lyapunov_exponents",
    "lyapunov_variances",
    "top_singular_value_growth",
    # batch Jacobian spectrum with BN
    "BNBatchJacobianLaw",
    "BNGenericJacobianLaw",
    "BNJacobianMoments",
    "BNPerExampleLaw",
    "ChannelLawS",
    "InverseChiSquareS",
    "LargestEigenvalueLaw",
    "bn_jacobian_moments",
    "bn_jacobian_spectrum",
    "bn_per_example_mean",
    # exact per-example block law of linear BN networks (any depth)
    "BNPerExampleExactLaw",
    "bn_per_example_moments",
]
