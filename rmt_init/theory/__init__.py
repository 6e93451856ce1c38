from rmt_init.theory.finite import (
    ConditionNumberGrowth,
    FiniteWidthMoments,
    LogNormSquaredLaw,
    TopSingularValueGrowth,
    condition_number_growth,
    finite_width_moments,
    log_norm_squared_law,
    lyapunov_exponents,
    lyapunov_variances,
    top_singular_value_growth,
)
