"""Activation functions and Gaussian expectations of them.

Everything the mean-field and free-probability code needs to know about an activation ``φ``:

* :class:`Activation` — ``φ``, ``φ'``, ``φ''`` (vectorised numpy) and the kinks where ``φ'`` jumps, with the
  names and default parameters of ``torch.nn.functional``;
* :func:`gaussian_expectation` / :func:`bivariate_gaussian_expectation` — ``E[f(√q z)]`` and
  ``E[f(u₁) g(u₂)]`` for jointly Gaussian ``(u₁, u₂)``, accurate to ~1e−13 also for kinked integrands;
* :func:`derivative_moments` — ``μ_k(q) = E[φ'(√q z)^{2k}]``, in closed form where one exists;
* :func:`derivative_sq_law` — the law of ``d = φ'(√q z)²`` (atoms plus a quadrature rule for the continuous
  part), the input of an S-transform (Pennington, Schoenholz & Ganguli 2017, arXiv 1711.04735, §3).

Notation: ``z ~ N(0, 1)``; pre-activations ``h = √q z`` have variance ``q``.
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from rmt_init._validate import check_choice, check_real
from rmt_init._vocabulary import ACTIVATION_ALIASES, ACTIVATIONS
from rmt_init.theory import _quadrature

__all__ = [
    "Activation",
    "get_activation",
    "gaussian_expectation",
    "bivariate_gaussian_expectation",
    "derivative_moments",
    "DerivativeSquaredLaw",
    "derivative_sq_law",
    "SELU_ALPHA",
    "SELU_SCALE",
]

#: ``torch.nn.SELU`` constants (Klambauer et al. 2017, arXiv 1706.02515), as in ``torch.nn.functional.selu``.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# Parameters (with torch.nn.functional's defaults) each activation accepts.
_PARAM_DEFAULTS: dict[str, dict[str, float]] = {
    "linear": {},
    "relu": {},
    "leaky_relu": {"negative_slope": 0.01},
    "tanh": {},
    "hardtanh": {"min_val": -1.0, "max_val": 1.0},
    "erf": {},
    "sigmoid": {},
    "selu": {},
    "gelu": {},
}
_HOMOGENEOUS = frozenset({"linear", "relu", "leaky_relu"})


def _as_float_array(x: object) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * special.erfc(-x / _SQRT2)


def _normal_pdf(x: np.ndarray) -> np.ndarray:
    return _INV_SQRT_2PI * np.exp(-0.5 * x * x)


def _sech2(x: np.ndarray) -> np.ndarray:
    e = np.exp(-2.0 * np.abs(x))
    return 4.0 * e / (1.0 + e) ** 2


def _tanh_sech2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(tanh x, sech² x) at complex x, from e = exp(−2|Re x|·…) so that sech² keeps its digits in the tails."""
    flip = x.real < 0
    e = np.exp(-2.0 * np.where(flip, -x, x))
    t = (1.0 - e) / (1.0 + e)
    return np.where(flip, -t, t), 4.0 * e / ((1.0 + e) * (1.0 + e))


@dataclass(frozen=True)
class Activation:
    """A scalar activation ``φ`` with its first two derivatives and kinks.

    Names and parameters follow ``torch.nn.functional`` (plus ``"linear"`` and ``"erf"``):

    ============ ===================================== ==========================================
    name         φ(x)                                  parameters (torch defaults)
    ============ ===================================== ==========================================
    linear       x                                     —
    relu         max(x, 0)                             —
    leaky_relu   x if x > 0 else a·x                   negative_slope a = 0.01
    tanh         tanh x                                —
    hardtanh     clip(x, min_val, max_val)             min_val = −1, max_val = 1
    erf          erf x                                 —
    sigmoid      1/(1 + e^{−x})                        —
    selu         λx (x > 0), λα(eˣ − 1) (x ≤ 0)        — (λ = SELU_SCALE, α = SELU_ALPHA)
    gelu         x Φ(x) (exact erf form)               —
    ============ ===================================== ==========================================

    ``dphi`` follows torch's autograd convention at a kink (``relu'(0) = 0``, ``hardtanh'`` is 0 at
    ``min_val``/``max_val``); ``d2phi`` is the almost-everywhere second derivative (the Dirac masses at kinks
    are left out — use Stein's identity ``E[z f(√q z)] = √q E[f'(√q z)]`` where they would matter).

    Build instances with :func:`get_activation`; the constructor validates and canonicalises as well
    (``params`` may be a mapping or a tuple of ``(name, value)`` pairs and is stored as a sorted tuple with
    the defaults filled in, so that equal activations compare and hash equal).

    Example: ``get_activation("leaky_relu", negative_slope=0.2).dphi([-1.0, 2.0])`` → ``[0.2, 1.0]``.
    """

    name: str
    params: tuple[tuple[str, float], ...] = field(default=())

    def __post_init__(self) -> None:
        name = check_choice("activation", self.name, ACTIVATIONS, ACTIVATION_ALIASES)
        given = dict(self.params.items() if isinstance(self.params, Mapping) else self.params)
        defaults = _PARAM_DEFAULTS[name]
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            allowed = ", ".join(repr(k) for k in defaults) or "none"
            raise ValueError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))} for activation {name!r}; "
                f"valid parameters: {allowed}"
            )
        merged = {k: check_real(f"{name} parameter {k}", given.get(k, v)) for k, v in defaults.items()}
        if name == "hardtanh" and not merged["min_val"] < merged["max_val"]:
            raise ValueError(
                f"hardtanh needs min_val < max_val; got min_val={merged['min_val']!r}, "
                f"max_val={merged['max_val']!r}"
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", tuple(sorted(merged.items())))

    # ----------------------------------------------------------------------------------- accessors
    def param(self, key: str) -> float:
        """Value of parameter ``key`` (e.g. ``"negative_slope"``); ``ValueError`` if it has none."""
        for k, v in self.params:
            if k == key:
                return v
        allowed = ", ".join(repr(k) for k, _ in self.params) or "none"
        raise ValueError(f"activation {self.name!r} has no parameter {key!r}; its parameters: {allowed}")

    @property
    def kwargs(self) -> dict[str, float]:
        """Parameters as a dict, ready for ``torch.nn.functional.<name>(x, **kwargs)``."""
        return dict(self.params)

    @property
    def kinks(self) -> tuple[float, ...]:
        """Points where ``φ'`` jumps (empty for smooth activations)."""
        if self.name in ("relu", "leaky_relu", "selu"):
            return (0.0,)
        if self.name == "hardtanh":
            return (self.param("min_val"), self.param("max_val"))
        return ()

    @property
    def is_homogeneous(self) -> bool:
        """True if ``φ(t x) = t φ(x)`` for ``t > 0`` (linear, relu, leaky_relu): then ``φ'`` moments do not depend on q."""
        return self.name in _HOMOGENEOUS

    @property
    def sup_dphi_sq(self) -> float:
        """``sup_x φ'(x)²`` over the real line (the right end of the support of ``φ'(√q z)²`` for every q)."""
        n = self.name
        if n in ("linear", "relu", "hardtanh", "tanh"):
            return 1.0
        if n == "leaky_relu":
            return max(1.0, self.param("negative_slope") ** 2)
        if n == "erf":
            return 4.0 / math.pi
        if n == "sigmoid":
            return 1.0 / 16.0
        if n == "selu":
            return (SELU_SCALE * SELU_ALPHA) ** 2
        # gelu: φ'' = φ_N(x)(2 − x²) vanishes at ±√2; the maximum of |φ'| is at +√2.
        return float((_normal_cdf(np.float64(_SQRT2)) + _SQRT2 * _normal_pdf(np.float64(_SQRT2))) ** 2)

    # ----------------------------------------------------------------------------------- functions
    def phi(self, x: object) -> np.ndarray:
        """``φ(x)``, elementwise, as a float64 array."""
        x = _as_float_array(x)
        n = self.name
        if n == "linear":
            return x.copy()
        if n == "relu":
            return np.maximum(x, 0.0)
        if n == "leaky_relu":
            return np.where(x > 0, x, self.param("negative_slope") * x)
        if n == "tanh":
            return np.tanh(x)
        if n == "hardtanh":
            return np.clip(x, self.param("min_val"), self.param("max_val"))
        if n == "erf":
            return special.erf(x)
        if n == "sigmoid":
            return special.expit(x)
        if n == "selu":
            return np.where(x > 0, SELU_SCALE * x, SELU_SCALE * SELU_ALPHA * np.expm1(np.minimum(x, 0.0)))
        return x * _normal_cdf(x)  # gelu

    def dphi(self, x: object) -> np.ndarray:
        """``φ'(x)``, elementwise (torch's one-sided convention at kinks)."""
        x = _as_float_array(x)
        n = self.name
        if n == "linear":
            return np.ones_like(x)
        if n == "relu":
            return (x > 0).astype(float)
        if n == "leaky_relu":
            return np.where(x > 0, 1.0, self.param("negative_slope"))
        if n == "tanh":
            return _sech2(x)
        if n == "hardtanh":
            return ((x > self.param("min_val")) & (x < self.param("max_val"))).astype(float)
        if n == "erf":
            return _TWO_OVER_SQRT_PI * np.exp(-x * x)
        if n == "sigmoid":
            return special.expit(x) * special.expit(-x)
        if n == "selu":
            return np.where(x > 0, SELU_SCALE, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(x, 0.0)))
        return _normal_cdf(x) + x * _normal_pdf(x)  # gelu

    def d2phi(self, x: object) -> np.ndarray:
        """``φ''(x)`` almost everywhere (zero for piecewise-linear activations; Dirac masses at kinks omitted)."""
        x = _as_float_array(x)
        n = self.name
        if n in ("linear", "relu", "leaky_relu", "hardtanh"):
            return np.zeros_like(x)
        if n == "tanh":
            return -2.0 * np.tanh(x) * _sech2(x)
        if n == "erf":
            return -2.0 * x * _TWO_OVER_SQRT_PI * np.exp(-x * x)
        if n == "sigmoid":
            s, t = special.expit(x), special.expit(-x)
            return s * t * (t - s)
        if n == "selu":
            return np.where(x > 0, 0.0, SELU_SCALE * SELU_ALPHA * np.exp(np.minimum(x, 0.0)))
        return _normal_pdf(x) * (2.0 - x * x)  # gelu

    def __call__(self, x: object) -> np.ndarray:
        return self.phi(x)

    # ------------------------------------------------------------------ analytic continuation
    @property
    def analytic_strip(self) -> float:
        """Half-width (in x) of a strip where ``φ'²`` is analytic and ``φ'(x)² = c`` has no roots other than
        the continuations of real ones, for c in the range of ``φ'²``: tanh π/2 (poles of sech at iπ/2),
        sigmoid π, selu π/2 (``e^{2x}`` has period iπ), erf and gelu 1 (the roots of ``e^{−2x²} = c`` leave
        the axis like π/(2|x|); 1 bounds them where the Gaussian weight still matters). Smooth activations only.
        """
        strips = {"tanh": math.pi / 2, "sigmoid": math.pi, "selu": math.pi / 2, "erf": 1.0, "gelu": 1.0}
        if self.name not in strips:
            raise ValueError(f"{self.name} has no analytic φ' (smooth activations: {sorted(strips)})")
        return strips[self.name]

    def dphi_jet(self, x: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(φ', φ'', φ''')`` at complex ``x``, continued analytically off the real axis (smooth activations;
        selu: its ``x < 0`` branch ``λα eˣ``)."""
        x = np.asarray(x, complex)
        n = self.name
        if n == "tanh":
            t, s = _tanh_sech2(x)
            return s, -2.0 * t * s, s * (4.0 * t * t - 2.0 * s)
        if n == "sigmoid":  # φ' = sech²(x/2)/4
            t, s = _tanh_sech2(0.5 * x)
            return 0.25 * s, -0.25 * t * s, 0.25 * s * (t * t - 0.5 * s)
        if n == "erf":
            d1 = _TWO_OVER_SQRT_PI * np.exp(-x * x)
            return d1, -2.0 * x * d1, (4.0 * x * x - 2.0) * d1
        if n == "selu":
            d1 = SELU_SCALE * SELU_ALPHA * np.exp(x)
            return d1, d1, d1
        if n == "gelu":
            pdf = np.exp(-0.5 * x * x) * _INV_SQRT_2PI
            cdf = 0.5 * special.erfc(-x / _SQRT2)
            return cdf + x * pdf, pdf * (2.0 - x * x), pdf * x * (x * x - 4.0)
        raise ValueError(f"{n} has no analytic φ' (smooth activations: erf, gelu, selu, sigmoid, tanh)")


def get_activation(name: str | Activation, **params: float) -> Activation:
    """Return the :class:`Activation` called ``name`` (torch.nn.functional spelling) with ``params``.

    ``name`` may already be an :class:`Activation`; keyword parameters then override its own. Aliases of
    ``rmt_init._vocabulary`` are accepted (``"identity"`` → linear, ``"hard_tanh"`` → hardtanh).
    Raises ``ValueError`` for an unknown name, an unknown parameter or a bad value.

    Example: ``get_activation("hardtanh").kinks == (-1.0, 1.0)``.
    """
    if isinstance(name, Activation):
        if not params:
            return name
        return Activation(name.name, {**name.kwargs, **params})
    if not isinstance(name, str):
        raise ValueError(
            f"activation must be a name or an Activation; got {name!r}; valid names are "
            + ", ".join(repr(a) for a in ACTIVATIONS)
        )
    return Activation(name, params)


# ============================================================================ Gaussian expectations


def _check_kinks(kinks: Sequence[float], name: str = "kinks") -> tuple[float, ...]:
    if isinstance(kinks, numbers.Real):
        kinks = (kinks,)
    if isinstance(kinks, (str, bytes)) or not isinstance(kinks, Iterable):
        raise TypeError(f"{name} must be a real number or a sequence of real numbers; got {kinks!r}")
    return tuple(check_real(f"{name}[{i}]", k) for i, k in enumerate(kinks))


def _check_callable(name: str, f: object) -> Callable[[np.ndarray], np.ndarray]:
    if not callable(f):
        raise TypeError(f"{name} must be a vectorised function of a float64 array; got {f!r}")
    return f  # type: ignore[return-value]


def _evaluate(name: str, f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """``f(x)`` as a float64 array of the shape of x; ``ValueError`` naming ``f`` if not finite."""
    values = np.asarray(f(x), dtype=float)
    if values.shape != x.shape:
        values = np.broadcast_to(values, x.shape) if values.ndim == 0 else values
    if values.shape != x.shape:
        raise ValueError(f"{name} must return an array of the shape of its argument {x.shape}; got {values.shape}")
    if not np.isfinite(values).all():
        bad = x[~np.isfinite(values)][0]
        raise ValueError(f"{name} must be finite on the real line; {name}({bad!r}) = {values[~np.isfinite(values)][0]!r}")
    return values


def gaussian_expectation(
    f: Callable[[np.ndarray], np.ndarray], q: float = 1.0, kinks: Sequence[float] = ()
) -> float:
    """``E_z[f(√q z)]`` for ``z ~ N(0, 1)``, accurate to ~1e−13 for piecewise-smooth ``f``.

    ``f`` must be vectorised (called once on a float64 array) and analytic between the points listed in
    ``kinks`` (in the argument ``x = √q z``), varying on scales ≳ 1 in ``x`` (true for every supported
    activation, its derivatives, powers and products). The rule is composite Gauss–Legendre in ``z`` with
    panels split at the kinks (see ``_quadrature``): plain Gauss–Hermite converges only algebraically at a kink
    (e.g. for ReLU it gives 1.332 instead of π/(π−1) = 1.467 in the ratio E[φ'²]/Var φ with 201 nodes).

    Example: ``gaussian_expectation(lambda x: np.maximum(x, 0) ** 2, 2.0, kinks=(0,))`` → ``1.0`` (= q/2).
    """
    f = _check_callable("f", f)
    q = check_real("q", q, low=0.0, low_inclusive=False)
    x, w = _quadrature.gaussian_rule_1d(q, _check_kinks(kinks))
    return float(np.dot(w, _evaluate("f", f, x)))


def bivariate_gaussian_expectation(
    f: Callable[[np.ndarray], np.ndarray],
    g: Callable[[np.ndarray], np.ndarray],
    q11: float,
    q12: float,
    q22: float,
    kinks_f: Sequence[float] = (),
    kinks_g: Sequence[float] = (),
) -> float:
    """``E[f(u₁) g(u₂)]`` for ``(u₁, u₂)`` centred Gaussian with covariance ``[[q11, q12], [q12, q22]]``.

    Computed as ``E_{u₁}[f(u₁) E[g(u₂) | u₁]]`` with ``u₂ | u₁ ~ N((q12/q11) u₁, q22 − q12²/q11)``; both
    integrals use the kink-splitting rule of :func:`gaussian_expectation`, and the outer one is refined
    geometrically around the points where a kink of ``g`` crosses the conditional mean (a boundary layer of
    width ~ the conditional standard deviation), so the result stays accurate as the correlation → ±1.
    This is the integral in the correlation map of Poole et al. 2016 (arXiv 1606.05340, eq. 5).

    Example: ``f = g = relu``, ``q11 = q22 = 1``, ``q12 = c`` gives the arc-cosine kernel
    ``(√(1−c²) + (π − arccos c) c)/(2π)`` (Cho & Saul 2009); ``c = 0`` → ``1/(2π)``.
    """
    f, g = _check_callable("f", f), _check_callable("g", g)
    q11 = check_real("q11", q11, low=0.0, low_inclusive=False)
    q22 = check_real("q22", q22, low=0.0, low_inclusive=False)
    q12 = check_real("q12", q12)
    bound = math.sqrt(q11 * q22)
    if abs(q12) > bound * (1.0 + 1e-12):
        raise ValueError(
            f"covariance [[q11, q12], [q12, q22]] must be positive semi-definite: |q12| <= sqrt(q11*q22) = "
            f"{bound!r}; got q12={q12!r}"
        )
    q12 = max(-bound, min(bound, q12))
    rho = q12 / bound
    s2 = math.sqrt(max(q22 * (1.0 - rho) * (1.0 + rho), 0.0))
    kinks_f, kinks_g = _check_kinks(kinks_f, "kinks_f"), _check_kinks(kinks_g, "kinks_g")
    return _bivariate(f, g, math.sqrt(q11), q12 / q11, s2, kinks_f, kinks_g)


def _bivariate(f, g, s1: float, beta: float, s2: float, kinks_f, kinks_g, chunk: int = 256) -> float:
    """Unvalidated core: ``E[f(u₁) g(u₂)]`` with ``u₁ = s1·z₁``, ``u₂ = beta·u₁ + s2·z₂``.

    Callers pass ``s2`` computed as ``√(q₂₂(1−ρ)(1+ρ))`` so that it keeps full relative precision as ρ → ±1.
    """
    scale2 = math.hypot(beta * s1, s2)
    if s2 <= 1e-15 * scale2:
        # (Numerically) perfectly correlated: u2 = beta * u1; kinks of g appear at u1 = k / beta.
        ks = list(kinks_f) + ([k / beta for k in kinks_g] if beta != 0.0 else [])
        x1, w1 = _quadrature.gaussian_rule_1d(s1 * s1, ks)
        return float(np.dot(w1, np.asarray(f(x1), float) * np.asarray(g(beta * x1), float)))
    extra = None
    if kinks_g and beta != 0.0:
        # Outer break points where a kink of g sits at the conditional mean, with graded refinement over
        # the boundary layer of width s2/|beta| (in u1), i.e. s2/(|beta| s1) in z1.
        centres = np.array([[k / beta / s1 for k in kinks_g]])
        width = s2 / (abs(beta) * s1)
        extra = centres
        if width < 2.0:
            extra = np.concatenate([centres, _quadrature.grading_points(centres, width)], axis=1)
    x1, w1 = _quadrature.gaussian_rule(0.0, s1, kinks_f, extra)
    keep = w1[0] > 0.0
    x1, w1 = x1[0][keep], w1[0][keep]
    fx = np.asarray(f(x1), dtype=float)
    inner = np.empty_like(x1)
    for start in range(0, x1.size, chunk):
        sl = slice(start, start + chunk)
        x2, w2 = _quadrature.gaussian_rule(beta * x1[sl], s2, kinks_g)
        inner[sl] = np.sum(w2 * np.asarray(g(x2), dtype=float), axis=1)
    return float(np.dot(w1, fx * inner))


# ============================================================================ derivative moments


def _hardtanh_inside_outside(act: Activation, q: float) -> tuple[float, float]:
    """``(p, 1 − p)`` with ``p = P(min_val < √q z < max_val)``, both computed without cancellation."""
    s = math.sqrt(q)
    lo, hi = act.param("min_val") / s, act.param("max_val") / s
    below = float(special.ndtr(lo))  # P(z < lo)
    above = float(special.ndtr(-hi))  # P(z > hi)
    if lo >= 0.0:
        inside = float(special.ndtr(-lo) - special.ndtr(-hi))
    elif hi <= 0.0:
        inside = float(special.ndtr(hi) - special.ndtr(lo))
    else:
        inside = float(special.erf(-lo / _SQRT2) / 2 + special.erf(hi / _SQRT2) / 2)
    return inside, below + above


def _selu_negative_moment(q: float, k: float) -> float:
    """``E[(λα e^{√q z})^{2k} ; z < 0] = (λα)^{2k} e^{2k²q} Φ(−2k√q)``, via ``erfcx`` to avoid overflow."""
    t = 2.0 * k * math.sqrt(q)
    # e^{t²/2} Φ(−t) = erfcx(t/√2)/2
    return (SELU_SCALE * SELU_ALPHA) ** (2 * k) * 0.5 * float(special.erfcx(t / _SQRT2))


def derivative_moments(activation: str | Activation, q: float, k: float = 1) -> float:
    """``μ_k(q) = E_z[φ'(√q z)^{2k}]``, ``z ~ N(0, 1)`` — the moments of the law of ``D²`` in PSG 2017.

    Closed forms (Pennington, Schoenholz & Ganguli 2017, arXiv 1711.04735, §2.3 and Table 1):

    * linear ``1``; relu ``1/2``; leaky_relu ``(1 + |a|^{2k})/2``;
    * hardtanh ``p = P(min_val < √q z < max_val)`` (``= erf(1/√(2q))`` for the default ±1);
    * erf ``(4/π)^k / √(1 + 4kq)``;
    * selu ``λ^{2k}/2 + (λα)^{2k} e^{2k²q} Φ(−2k√q)``;

    otherwise (tanh, sigmoid, gelu) the kink-aware quadrature of :func:`gaussian_expectation` (~1e−14).
    ``k = 0`` gives 1. Example: ``derivative_moments("erf", 1.0, 2) == (16/π²)/3``.
    """
    act = get_activation(activation)
    q = check_real("q", q, low=0.0, low_inclusive=False)
    k = check_real("k", k, low=0.0)
    return _derivative_moment(act, q, k)


def _derivative_moment(act: Activation, q: float, k: float) -> float:
    if k == 0.0:
        return 1.0
    n = act.name
    if n == "linear":
        return 1.0
    if n == "relu":
        return 0.5
    if n == "leaky_relu":
        return 0.5 * (1.0 + abs(act.param("negative_slope")) ** (2 * k))
    if n == "hardtanh":
        return _hardtanh_inside_outside(act, q)[0]
    if n == "erf":
        return (4.0 / math.pi) ** k / math.sqrt(1.0 + 4.0 * k * q)
    if n == "selu":
        return 0.5 * SELU_SCALE ** (2 * k) + _selu_negative_moment(q, k)
    return gaussian_expectation(lambda x: (act.dphi(x) ** 2) ** k, q, act.kinks)


# ============================================================================ law of φ'(h)²


@dataclass(frozen=True, eq=False)
class DerivativeSquaredLaw:
    """The law of ``d = φ'(√q z)²``, ``z ~ N(0, 1)``: atoms plus a quadrature rule for the continuous part.

    This is the law of the diagonal entries of ``D²`` in the Jacobian ``J = D_L W_L ⋯ D_1 W_1`` at the
    fixed point ``q*`` (Pennington, Schoenholz & Ganguli 2017, arXiv 1711.04735, §3), ready for an
    S-transform: ``ψ(u) = E[u d/(1 − u d)]`` (:meth:`mgf`) is vectorised over complex arrays.

    Attributes:
        activation, q: what the law is of.
        atoms: ``((value, mass), …)`` with positive masses, e.g. relu ``((0, ½), (1, ½))``, hardtanh
            ``((0, 1−p), (1, p))``, selu ``((λ², ½),)``, linear ``((1, 1),)``; empty for smooth φ.
        nodes, weights: quadrature rule for the continuous part (values of ``d`` and weights summing to the
            continuous mass), composite Gauss–Legendre in ``z``; it integrates functions of ``d`` that are
            smooth on the support to ~1e−13 (selu: over ``z < 0`` only, where ``d = (λα)² e^{2√q z}``).
        max_value: ``sup`` of the support.

    Accuracy note: the rule is a discrete measure; ``mgf(u)`` is accurate while ``1/u`` stays away from
    the support ``[0, max_value]`` by more than a few node spacings (see ``panel_width`` of
    :func:`derivative_sq_law`).
    """

    activation: Activation
    q: float
    atoms: tuple[tuple[float, float], ...]
    nodes: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    max_value: float

    @property
    def atom_mass(self) -> float:
        """Total mass of the atoms."""
        return float(sum(m for _, m in self.atoms))

    @property
    def continuous_mass(self) -> float:
        """Mass of the continuous part (= ``weights.sum()``)."""
        return float(self.weights.sum())

    def expect(self, f: Callable[[np.ndarray], np.ndarray]) -> float:
        """``E[f(d)]`` from the atoms and the rule (``f`` vectorised)."""
        total = sum(m * float(np.asarray(f(np.float64(v)))) for v, m in self.atoms)
        if self.nodes.size:
            total += float(np.dot(self.weights, np.asarray(f(self.nodes), dtype=float)))
        return float(total)

    def moment(self, k: float) -> float:
        """``E[d^k] = μ_k(q)`` as computed by :func:`derivative_moments` (closed form where one exists,
        else its kink-aware quadrature, which agrees with ``expect(lambda d: d**k)`` to ~1e−13)."""
        k = check_real("k", k, low=0.0)
        return _derivative_moment(self.activation, self.q, k)

    def mgf(self, u: object, chunk: int = 4096) -> np.ndarray:
        """``ψ(u) = E[u d/(1 − u d)] = Σ_{k≥1} E[d^k] u^k`` for a complex (or real) array ``u``.

        Vectorised over any shape of ``u``; returns a complex array of the same shape. ``Σ`` over atoms is
        exact; the continuous part uses the rule (see the class accuracy note).
        Example (relu): ``ψ(u) = ½ u/(1 − u)``.
        """
        u = np.asarray(u, dtype=complex)
        flat = u.reshape(-1)
        out = np.zeros(flat.shape, dtype=complex)
        for v, m in self.atoms:
            if v != 0.0:
                out += m * (flat * v) / (1.0 - flat * v)
        if self.nodes.size:
            for start in range(0, flat.size, chunk):
                uu = flat[start : start + chunk, None] * self.nodes[None, :]
                out[start : start + chunk] += _quadrature.weighted_sum(uu / (1.0 - uu), self.weights)
        return out.reshape(u.shape)


def _merge_atoms(atoms: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    merged: dict[float, float] = {}
    for v, m in atoms:
        if m > 0.0:
            merged[float(v)] = merged.get(float(v), 0.0) + float(m)
    return tuple(sorted(merged.items()))


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=float)
    a.setflags(write=False)
    return a


def derivative_sq_law(
    activation: str | Activation, q: float, panel_width: float = 0.25
) -> DerivativeSquaredLaw:
    """The law of ``d = φ'(√q z)²`` (see :class:`DerivativeSquaredLaw`).

    Atoms: linear ``δ₁``; relu ``½δ₀ + ½δ₁``; leaky_relu ``½δ_{a²} + ½δ₁``; hardtanh ``(1−p)δ₀ + pδ₁`` with
    ``p = P(min_val < √q z < max_val)``; selu ``½δ_{λ²}`` plus the continuous image of ``z < 0``. The smooth
    activations (tanh, erf, sigmoid, gelu) have no atom; for even ``φ'`` (tanh, erf, sigmoid) the rule is
    folded onto ``z ≥ 0``. (PSG 2017, arXiv 1711.04735, Table 1: S-transforms of these laws.)

    ``panel_width`` (in units of both ``z`` and ``x = √q z``) sets the rule's resolution: with the default
    0.25 (~1400 nodes for tanh) ``mgf(u)`` is accurate to ~1e−13 while ``1/u`` stays ≳ 0.1 from the support
    (checked for tanh at q = 1.3: 1e−13 at distance 0.1, 3e−8 at 0.05); halving it doubles the nodes and
    the cost and halves the admissible distance. Smooth functions of ``d`` integrate to ~1e−14 at any
    width ≤ 2.

    Example: ``derivative_sq_law("hardtanh", 0.25).atoms`` → ``((0.0, 0.0455…), (1.0, 0.9545…))``.
    """
    act = get_activation(activation)
    q = check_real("q", q, low=0.0, low_inclusive=False)
    step = check_real("panel_width", panel_width, low=1e-3, high=2.0)
    n = act.name
    empty = np.empty(0)
    if n in ("linear", "relu", "leaky_relu", "hardtanh"):
        if n == "linear":
            atoms = [(1.0, 1.0)]
        elif n == "relu":
            atoms = [(0.0, 0.5), (1.0, 0.5)]
        elif n == "leaky_relu":
            atoms = [(act.param("negative_slope") ** 2, 0.5), (1.0, 0.5)]
        else:
            p, not_p = _hardtanh_inside_outside(act, q)
            atoms = [(0.0, not_p), (1.0, p)]
        merged = _merge_atoms(atoms)
        return DerivativeSquaredLaw(act, q, merged, _frozen(empty), _frozen(empty), max(v for v, _ in merged))
    if n == "selu":
        x, w = _quadrature.gaussian_rule_1d(q, (0.0,), step)
        neg = x < 0
        d = act.dphi(x[neg]) ** 2
        return DerivativeSquaredLaw(
            act, q, ((SELU_SCALE**2, 0.5),), _frozen(d), _frozen(w[neg]), act.sup_dphi_sq
        )
    if n in ("tanh", "erf", "sigmoid"):  # φ' even: fold z < 0 onto z > 0
        x, w = _quadrature.gaussian_rule_1d(q, (0.0,), step)
        pos = x > 0
        x, w = x[pos], 2.0 * w[pos]
    else:
        x, w = _quadrature.gaussian_rule_1d(q, (), step)
    d = act.dphi(x) ** 2
    order = np.argsort(d)
    return DerivativeSquaredLaw(act, q, (), _frozen(d[order]), _frozen(w[order]), act.sup_dphi_sq)
