"""Validation suite for rmt_init: each claim of the literature that the package encodes, checked against
Monte Carlo samples of real matrices and ``torch.nn`` networks, with derived tolerances.

Run with ``rmt-init validate`` (installed with the package) or from the repository root: ``python -m validation [--size smoke|default|full] [--out DIR] [--only NAME,...]
[--resume] [--device auto|cpu|cuda]``. One module per claim in :mod:`validation.claims`; each exposes
``SIZES`` (``{"smoke": {...}, "default": {...}, "full": {...}}``) and ``run(size, device, out_dir) -> dict``
returning the record ``{"claim", "statement", "source", "size", "checks": [{"name", "predicted", "measured",
"stderr", "tolerance", "effect", "passed"}, ...], "passed", "figures", "seconds", "config"}``. Predictions are
finite-N values wherever they are derived (otherwise the check is narrowed, or a stated bias bound is added
to 5 standard errors), and every check records the ``effect`` it resolves, which its tolerance stays below.
"""
CLAIMS: tuple[str, ...] = (
    "bjorck_product_spectra",
    "bjorck_spread_grows",
    "network_jacobians",
    "bn_gradient_explosion",
    "bn_batch_spectrum",
    "finite_width",
    "dynamical_isometry",
    "resnet_statistics",
    "conv_networks",
    "resnet_jacobians",
    "residual_networks",
    "bn_residual_networks",
)
SIZES: tuple[str, ...] = ("smoke", "default", "full")
