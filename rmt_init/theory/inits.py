"""``torch.nn.init`` schemes as weight ensembles with an effective ``σ_w²``.

Every scheme draws the entries of a weight of shape ``(fan_out, fan_in)`` (``nn.Linear`` layout) with mean
zero and a per-entry variance ``v(fan_in, fan_out)``; mean-field theory only needs the ensemble (Gaussian,
uniform or Haar-orthogonal) and the effective ``σ_w² = fan_in · v`` of the convention
``Var(W_ij) = σ_w²/fan_in``. The semantics below are those of the PyTorch 2.x source (``torch/nn/init.py``,
``torch/nn/modules/linear.py``):

=================== ============ ============================ ===================================
scheme              ensemble     per-entry variance v         source
=================== ============ ============================ ===================================
gaussian(σ_w²)      gaussian     σ_w²/fan_in                  mean-field convention
xavier_normal(g)    gaussian     2g²/(fan_in + fan_out)       Glorot & Bengio 2010
xavier_uniform(g)   uniform      2g²/(fan_in + fan_out)       Glorot & Bengio 2010
kaiming_normal      gaussian     gain²/fan_mode               He et al. 2015, arXiv 1502.01852
kaiming_uniform     uniform      gain²/fan_mode               He et al. 2015
lecun_normal        gaussian     1/fan_in                     LeCun et al. 1998, "Efficient BackProp"
lecun_uniform       uniform      1/fan_in                     LeCun et al. 1998
orthogonal(g)       orthogonal   g²/max(fan_in, fan_out)      Saxe et al. 2014, arXiv 1312.6120
torch_default       uniform      1/(3 fan_in)                 ``nn.Linear``: kaiming_uniform_(a=√5)
=================== ============ ============================ ===================================

with ``gain = calculate_gain(nonlinearity, a)`` and torch's kaiming defaults ``a = 0``, ``mode = "fan_in"``,
``nonlinearity = "leaky_relu"`` (⇒ gain² = 2, σ_w² = 2). A uniform law ``U(−b, b)`` has variance ``b²/3``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from rmt_init._validate import check_choice, check_int, check_real
from rmt_init._vocabulary import GAIN_NONLINEARITIES as TORCH_GAIN_NONLINEARITIES
from rmt_init._vocabulary import INIT_ALIASES, INIT_ENSEMBLES, INIT_KWARGS, INITS

__all__ = ["calculate_gain", "InitScheme", "init_scheme", "TORCH_GAIN_NONLINEARITIES"]


_MODES = ("fan_in", "fan_out")
# Keyword arguments each scheme accepts, with torch's defaults; the plain Gaussian takes its σ_w².
_KWARGS: dict[str, dict[str, object]] = {**INIT_KWARGS, "gaussian": {"sigma_w2": 1.0}}


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain of ``torch.nn.init.calculate_gain`` — same names, same values:

    linear / conv* / conv_transpose* / sigmoid → 1; tanh → 5/3; relu → √2;
    leaky_relu → ``√(2/(1 + a²))`` with ``a = param`` (default 0.01); selu → 3/4.

    ``param`` is used only for leaky_relu, as in torch (which ignores it otherwise). Differences from torch:
    names are matched case-insensitively and a non-number ``param`` for leaky_relu raises the package's
    ``ValueError`` message (torch raises ``ValueError`` too). Example (docs/derivations.md T29): ``calculate_gain("leaky_relu",
    0.2) = √(2/1.04) = 1.386750…``.
    """
    name = check_choice("nonlinearity", nonlinearity, TORCH_GAIN_NONLINEARITIES)
    if name in ("tanh",):
        return 5.0 / 3.0
    if name == "relu":
        return math.sqrt(2.0)
    if name == "selu":
        return 3.0 / 4.0
    if name == "leaky_relu":
        slope = 0.01 if param is None else check_real("param (leaky_relu negative_slope)", param)
        return math.sqrt(2.0) / math.hypot(1.0, slope)  # √(2/(1 + a²)) without overflow of a² (a = 1e300)
    return 1.0


def _gain_squared(nonlinearity: str, param: float | None = None) -> float:
    """``calculate_gain(nonlinearity, param)²`` computed without the square root: relu → 2 exactly, not
    ``√2² = 2.0000000000000004`` (which would put a kaiming-initialised ReLU network a hair off criticality and
    send its mean-field q* to infinity); leaky_relu → ``2/(1 + a²)``."""
    name = check_choice("nonlinearity", nonlinearity, TORCH_GAIN_NONLINEARITIES)
    if name == "leaky_relu":
        slope = 0.01 if param is None else check_real("param (leaky_relu negative_slope)", param)
        return 2.0 / (1.0 + slope * slope) if abs(slope) < 1e150 else calculate_gain(name, slope) ** 2
    if name == "relu":
        return 2.0
    return calculate_gain(name, param) ** 2


@dataclass(frozen=True)
class InitScheme:
    """A ``torch.nn.init`` scheme as a weight ensemble (build with :func:`init_scheme`).

    Attributes:
        name: canonical scheme name (one of ``rmt_init._vocabulary.INITS``).
        ensemble: ``"gaussian"``, ``"uniform"`` or ``"orthogonal"``.
        gain: the scheme's gain ``g`` (per-entry variance ``g²/fan``; ``√σ_w²`` for ``gaussian``).
        mode: which fan divides ``g²``: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` (= (fan_in + fan_out)/2,
            Xavier) or ``"fan_max"`` (= max(fan_in, fan_out), orthogonal rows/columns of unit norm).
        params: the scheme's keyword arguments after validation (e.g. kaiming's a, mode, nonlinearity).
        gain_squared: ``g²`` computed exactly where it is known in closed form (kaiming relu: 2, not
            ``√2²``; ``gaussian``: σ_w²); :meth:`entry_variance` uses it.

    Example (docs/derivations.md T27): ``init_scheme("torch_default").sigma_w2(256, 256) == 1/3`` (bound ``1/√fan_in``).
    """

    name: str
    ensemble: Literal["gaussian", "uniform", "orthogonal"]
    gain: float
    mode: Literal["fan_in", "fan_out", "fan_avg", "fan_max"]
    params: tuple[tuple[str, object], ...] = ()
    gain_squared: float = float("nan")

    def __post_init__(self) -> None:
        if math.isnan(self.gain_squared):
            object.__setattr__(self, "gain_squared", self.gain**2)

    def _fan(self, fan_in: int, fan_out: int) -> float:
        if self.mode == "fan_in":
            return float(fan_in)
        if self.mode == "fan_out":
            return float(fan_out)
        if self.mode == "fan_avg":
            return 0.5 * (fan_in + fan_out)
        return float(max(fan_in, fan_out))

    def entry_variance(self, fan_in: int, fan_out: int) -> float:
        """Per-entry variance ``gain²/fan_mode`` of a ``(fan_out, fan_in)`` weight (torch semantics)."""
        fan_in = check_int("fan_in", fan_in)
        fan_out = check_int("fan_out", fan_out)
        return self.gain_squared / self._fan(fan_in, fan_out)

    def std(self, fan_in: int, fan_out: int) -> float:
        """Per-entry standard deviation ``√entry_variance``."""
        return math.sqrt(self.entry_variance(fan_in, fan_out))

    def sigma_w2(self, fan_in: int, fan_out: int) -> float:
        """Effective ``σ_w² = fan_in × entry_variance`` (the mean-field weight variance).

        Examples: kaiming defaults → 2; xavier (square) → g²; orthogonal square → g².
        """
        return check_int("fan_in", fan_in) * self.entry_variance(fan_in, fan_out)

    def bound(self, fan_in: int, fan_out: int) -> float:
        """Half-width ``b = √(3 v)`` of the uniform law ``U(−b, b)`` (uniform ensembles only).

        Examples (docs/derivations.md T28): xavier_uniform → ``g√(6/(fan_in + fan_out))``; torch_default → ``1/√fan_in``.
        """
        if self.ensemble != "uniform":
            raise ValueError(
                f"bound is defined for uniform ensembles only; scheme {self.name!r} is {self.ensemble!r} "
                "(uniform schemes: xavier_uniform, kaiming_uniform, lecun_uniform, torch_default)"
            )
        return math.sqrt(3.0 * self.entry_variance(fan_in, fan_out))


def init_scheme(name: str, **kwargs: object) -> InitScheme:
    """The :class:`InitScheme` for a ``torch.nn.init`` name (trailing underscore optional) and its kwargs.

    Accepted keyword arguments (torch defaults): ``gaussian(sigma_w2=1.0)``, ``xavier_*(gain=1.0)``,
    ``kaiming_*(a=0, mode="fan_in", nonlinearity="leaky_relu")``, ``orthogonal(gain=1.0)``; ``lecun_*`` and
    ``torch_default`` take none. ``lecun_normal``/``lecun_uniform`` equal torch's
    ``kaiming_*_(nonlinearity="linear")``; ``torch_default`` is ``nn.Linear``'s ``kaiming_uniform_(a=√5)``.
    Raises ``ValueError`` for unknown names or keyword arguments and bad values.

    Example: ``init_scheme("kaiming_normal", nonlinearity="relu").std(100, 50) == √(2/100)``.
    """
    canon = check_choice("init", name, INITS, INIT_ALIASES)
    allowed = _KWARGS[canon]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        valid = ", ".join(repr(k) for k in allowed) or "none"
        raise ValueError(
            f"unknown argument(s) {', '.join(map(repr, unknown))} for init {canon!r}; valid arguments: {valid}"
        )
    opts = {**allowed, **kwargs}
    ensemble = INIT_ENSEMBLES[canon]
    if canon == "gaussian":
        sw2 = check_real("sigma_w2", opts["sigma_w2"], low=0.0)
        return InitScheme(canon, ensemble, math.sqrt(sw2), "fan_in", (("sigma_w2", sw2),), sw2)
    if canon in ("xavier_normal", "xavier_uniform", "orthogonal"):
        # torch rejects a negative std/bound for xavier; orthogonal_ just multiplies by the gain.
        gain = check_real("gain", opts["gain"], low=None if canon == "orthogonal" else 0.0)
        mode = "fan_max" if canon == "orthogonal" else "fan_avg"
        return InitScheme(canon, ensemble, abs(gain), mode, (("gain", gain),))
    if canon in ("kaiming_normal", "kaiming_uniform"):
        a = check_real("a", opts["a"])
        mode = check_choice("mode", opts["mode"], _MODES)
        nonlin = check_choice("nonlinearity", opts["nonlinearity"], TORCH_GAIN_NONLINEARITIES)
        gain = calculate_gain(nonlin, a)
        params = (("a", a), ("mode", mode), ("nonlinearity", nonlin))
        return InitScheme(canon, ensemble, gain, mode, params, _gain_squared(nonlin, a))
    if canon in ("lecun_normal", "lecun_uniform"):
        return InitScheme(canon, ensemble, 1.0, "fan_in", ())
    # torch_default: kaiming_uniform_(a=√5) ⇒ gain² = 2/(1 + 5) = 1/3
    return InitScheme(canon, ensemble, calculate_gain("leaky_relu", math.sqrt(5.0)), "fan_in", (), 1.0 / 3.0)
