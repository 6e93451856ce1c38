"""Names users already know, shared by the theory and the Monte Carlo subpackages.

Activation names follow ``torch.nn.functional`` (``relu``, ``leaky_relu``, ``tanh``, ``hardtanh``, …);
initialisation names follow ``torch.nn.init`` without the trailing underscore (``kaiming_normal``
for ``torch.nn.init.kaiming_normal_``). Both subpackages validate against these tuples so that a
name accepted by the theory is accepted by the Monte Carlo engine and vice versa.
"""
from __future__ import annotations

ACTIVATIONS: tuple[str, ...] = (
    "linear",
    "relu",
    "leaky_relu",
    "tanh",
    "hardtanh",
    "erf",
    "sigmoid",
    "selu",
    "gelu",
)
ACTIVATION_ALIASES: dict[str, str] = {
    "identity": "linear",
    "hard_tanh": "hardtanh",
}

INITS: tuple[str, ...] = (
    "gaussian",
    "xavier_normal",
    "xavier_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "orthogonal",
    "torch_default",
)
INIT_ALIASES: dict[str, str] = {
    "normal": "gaussian",
    "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform",
    "he_normal": "kaiming_normal",
    "he_uniform": "kaiming_uniform",
    "default": "torch_default",
}

WEIGHT_ENSEMBLES: tuple[str, ...] = ("gaussian", "uniform", "orthogonal")

#: The weight ensemble each init scheme draws from (shared by theory.inits and montecarlo.ensembles).
INIT_ENSEMBLES: dict[str, str] = {
    "gaussian": "gaussian",
    "xavier_normal": "gaussian",
    "xavier_uniform": "uniform",
    "kaiming_normal": "gaussian",
    "kaiming_uniform": "uniform",
    "lecun_normal": "gaussian",
    "lecun_uniform": "uniform",
    "orthogonal": "orthogonal",
    "torch_default": "uniform",
}

#: The names ``torch.nn.init.calculate_gain`` accepts.
GAIN_NONLINEARITIES: tuple[str, ...] = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)

#: Keyword arguments each init scheme accepts, with torch.nn.init's defaults (``gaussian`` takes none
#: here; the theory adds its ``sigma_w2``).
INIT_KWARGS: dict[str, dict[str, object]] = {
    "gaussian": {},
    "xavier_normal": {"gain": 1.0},
    "xavier_uniform": {"gain": 1.0},
    "kaiming_normal": {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
    "kaiming_uniform": {"a": 0.0, "mode": "fan_in", "nonlinearity": "leaky_relu"},
    "lecun_normal": {},
    "lecun_uniform": {},
    "orthogonal": {"gain": 1.0},
    "torch_default": {},
}


#: torch ``nonlinearity`` that the kaiming schemes use for each activation when the caller gives none
#: (shared by the theory and the Monte Carlo networks so that ``init="kaiming_normal"`` means the same σ_w²
#: in both): relu → "relu" (σ_w² = 2), linear → "linear", tanh → "tanh" (gain 5/3), sigmoid → "sigmoid",
#: selu → "linear" (torch's advice for self-normalising nets), leaky_relu → "leaky_relu" with ``a`` = its
#: slope; hardtanh, erf and gelu (unknown to ``calculate_gain``) keep torch's default "leaky_relu", a = 0.
KAIMING_NONLINEARITY: dict[str, str] = {
    "relu": "relu",
    "linear": "linear",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "selu": "linear",
}


def kaiming_defaults(activation: str, negative_slope: float = 0.01) -> dict[str, object]:
    """Kaiming ``nonlinearity``/``a`` matched to a canonical activation name (see :data:`KAIMING_NONLINEARITY`)."""
    if activation == "leaky_relu":
        return {"nonlinearity": "leaky_relu", "a": float(negative_slope)}
    if activation in KAIMING_NONLINEARITY:
        return {"nonlinearity": KAIMING_NONLINEARITY[activation]}
    return {}
