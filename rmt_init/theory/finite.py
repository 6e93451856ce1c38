"""Finite-width theory of products of Gaussian matrices and of deep-network Jacobians.

Everything here holds at *finite* width ``N`` (and, where stated, finite depth ``L``); the
infinite-width spectral laws live elsewhere. Conventions follow the package (widths
``n_0, …, n_L``; ``W_l`` of shape ``n_l × n_{l-1}`` with ``Var(W_l[i, j]) = σ_w² / n_{l-1}``;
``J = D_L W_L ⋯ D_1 W_1``). Four groups of results, each labelled by how much it can be trusted:

* **Lyapunov spectrum** (:func:`lyapunov_exponents`, :func:`lyapunov_variances`) — exact
  (Newman 1986; Forrester 2013; Akemann, Burda & Kieburg 2014).
* **Log-norm law** of ``‖J u‖²`` for a fixed unit ``u`` (:func:`log_norm_squared_law`) —
  exact mean and variance at every finite width and depth from chi-square / binomial identities;
  its Gaussian form is the Hanin & Nica (2020) limit.
* **Trace moments** of ``J Jᵀ`` for square products with i.i.d. entries of any kurtosis, and for
  square Gaussian ReLU networks (:func:`finite_width_moments`) — an exact recursion
  (Wick/Wishart calculus, derived in the docstring).
* **Extreme singular values** (:func:`top_singular_value_growth`,
  :func:`condition_number_growth`) — exact two-sided bounds on ``E ln σ_max`` and ``E ln κ``
  at every ``(N, L)``, their exact ``L → ∞`` asymptotes, the exact ``N → ∞`` edge, and one
  explicitly *heuristic* large-width formula.

Only numpy and scipy are used (theory side of the package).
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats
from scipy.special import digamma, polygamma
from scipy.stats.distributions import rv_frozen

from rmt_init._validate import check_choice, check_int, check_real, check_widths

__all__ = [
    "FIELDS",
    "lyapunov_exponents",
    "lyapunov_variances",
    "LogNormSquaredLaw",
    "log_norm_squared_law",
    "FiniteWidthMoments",
    "finite_width_moments",
    "ConditionNumberGrowth",
    "condition_number_growth",
    "TopSingularValueGrowth",
    "top_singular_value_growth",
    "relu_zero_fraction",
]

#: Entry fields of the Gaussian matrices: real ``N(0, σ²/N)`` or complex with ``E|w|² = σ²/N``
#: (real and imaginary parts independent ``N(0, σ²/(2N))``).
FIELDS: tuple[str, ...] = ("real", "complex")

#: Activations for which :func:`log_norm_squared_law` is exact.
_LOG_NORM_ACTIVATIONS: tuple[str, ...] = ("linear", "relu")
#: widest layer for the per-index spectra (Lyapunov exponents and what is built on them): one float
#: per index, 80 MB at this width
MAX_SPECTRUM_WIDTH = 10**7
#: finite_width_moments: widths beyond this are N → ∞ to float precision (1/N² underflows against 1),
#: depths beyond this take seconds of recursion
MAX_MOMENT_WIDTH = 10**12
MAX_MOMENT_DEPTH = 10**6
_LOG_FLOAT_MAX = math.log(sys.float_info.max)
_LOG_NORM_ALIASES: dict[str, str] = {"identity": "linear"}


def _check_field(field: object) -> str:
    return check_choice("field", field, FIELDS)


def _check_sigma_w2(sigma_w2: object) -> float:
    return check_real("sigma_w2", sigma_w2, low=0.0, low_inclusive=False)


# ---------------------------------------------------------------------------------------------
# Lyapunov spectrum
# ---------------------------------------------------------------------------------------------


def _bartlett_dof(width: int, field: str) -> np.ndarray:
    """Gamma shapes ``a_i`` of the Bartlett diagonal ``N R_ii² / σ_w²``, largest first.

    Real: ``R_ii² ~ χ²_{N-i+1} / N``, i.e. ``a_i = (N - i + 1)/2``; complex:
    ``N R_ii² ~ Gamma(N - i + 1, 1)``, i.e. ``a_i = N - i + 1`` (Bartlett decomposition).
    """
    k = np.arange(width, 0, -1, dtype=np.float64)  # N - i + 1 for i = 1..N
    return k / 2.0 if field == "real" else k


def lyapunov_exponents(width: int, field: str = "real", sigma_w2: float = 1.0) -> np.ndarray:
    """Lyapunov exponents of products of i.i.d. ``width × width`` Gaussian matrices, largest first.

    For ``P_L = W_L ⋯ W_1`` with i.i.d. entries of variance ``σ_w²/N`` (``N = width``),
    ``λ_i = lim_{L→∞} (1/L) ln σ_i(P_L)`` almost surely, with

    * real entries (Newman 1986, Commun. Math. Phys. 103:121–126):
      ``λ_i = ½ [ψ((N − i + 1)/2) + ln(2/N)] + ½ ln σ_w²``;
    * complex entries, ``E|w|² = σ_w²/N`` (Forrester 2013, J. Stat. Phys., arXiv 1206.2001;
      Akemann, Burda & Kieburg 2014, arXiv 1406.0803):
      ``λ_i = ½ [ψ(N − i + 1) − ln N] + ½ ln σ_w²``,

    ``ψ`` the digamma function, ``i = 1..N``. Reason: QR-iterating the product
    (``W_l Q_{l-1} = Q_l R_l``) gives, by rotation invariance, i.i.d. upper-triangular factors
    whose diagonals are independent with ``R_ii² ~ σ_w² χ²_{N−i+1}/N`` (real) or
    ``σ_w² Gamma(N−i+1, 1)/N`` (complex) — Bartlett's decomposition — and
    ``λ_i = E ln R_ii``. All exponents are negative at ``σ_w² = 1`` although
    ``E‖W x‖² = ‖x‖²`` (Jensen). Their sum is ``E ln|det W|``; for large ``N`` they fill
    ``½ ln u``, ``u ~ U[0, 1]`` (the Tucci / Haagerup–Möller limit).

    Examples: ``N = 1`` (real) gives ``−(γ + ln 2)/2 = −0.635181``; ``N = 2`` gives
    ``(−γ/2, −(γ + 2 ln 2)/2) = (−0.288608, −0.981755)``.

    >>> bool(np.allclose(lyapunov_exponents(2), [-0.288608, -0.981755], atol=1e-6))
    True

    Returns a float64 array of length ``width``, in decreasing order.
    """
    n = check_int("width", width, minimum=1, maximum=MAX_SPECTRUM_WIDTH)
    field = _check_field(field)
    s2 = _check_sigma_w2(sigma_w2)
    a = _bartlett_dof(n, field)
    if field == "real":
        lam = 0.5 * (digamma(a) + math.log(2.0 / n))
    else:
        lam = 0.5 * (digamma(a) - math.log(n))
    return lam + 0.5 * math.log(s2)


def lyapunov_variances(width: int, field: str = "real") -> np.ndarray:
    """Per-layer variances ``v_i`` of the log singular values, largest exponent first.

    Real: ``v_i = ¼ ψ'((N − i + 1)/2)``; complex: ``v_i = ¼ ψ'(N − i + 1)`` (``ψ'`` the trigamma
    function; independent of ``σ_w²``).

    What is exact and what is asymptotic: ``v_i = Var ln R_ii`` exactly for the QR accumulators
    ``S_i(L) = Σ_l ln R^{(l)}_ii`` (a sum of ``L`` i.i.d. terms, so ``Var S_i(L) = L v_i`` at every
    ``L``). Since ``ln σ_i(P_L) − S_i(L) = O(1)``, ``ln σ_i(P_L)`` has Gaussian fluctuations of
    variance ``L v_i + O(1)`` at large ``L`` with ``N`` fixed (Akemann, Burda & Kieburg 2014,
    arXiv 1406.0803, complex case; Forrester 2015, arXiv 1501.05702, real/complex/quaternion).

    Example: ``N = 1`` (real) gives ``¼ ψ'(½) = π²/8 = 1.233701``.
    """
    n = check_int("width", width, minimum=1, maximum=MAX_SPECTRUM_WIDTH)
    field = _check_field(field)
    return 0.25 * polygamma(1, _bartlett_dof(n, field))


def _lyapunov_gap(width: int, field: str) -> float:
    """``Δ = λ_1 − λ_N`` = ``½[ψ(N/2) − ψ(½)]`` (real) or ``½[ψ(N) − ψ(1)]`` (complex).

    It equals ``−½ E ln c_1²`` for ``c`` uniform on the unit sphere of ``R^N`` (resp. ``C^N``):
    ``c_1² ~ Beta(½, (N−1)/2)`` (resp. ``Beta(1, N−1)``).
    """
    if field == "real":
        return 0.5 * float(digamma(width / 2.0) - digamma(0.5))
    return 0.5 * float(digamma(float(width)) - digamma(1.0))


# ---------------------------------------------------------------------------------------------
# Hanin–Nica log-norm law
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=256)
def _relu_layer_stats(n: int) -> tuple[float, float, float]:
    """For ``K ~ Bin(n, ½)`` conditioned on ``K ≥ 1``: ``(E ψ(K/2), E ψ'(K/2) + Var ψ(K/2), P(K = 0))``.

    The sum runs over ``k`` within 40 standard deviations of ``n/2`` (the neglected mass is below
    ``e^{-800}``) and is renormalised on that range.
    """
    half_width = 40.0 * math.sqrt(n) / 2.0 + 2.0
    lo = max(1, int(math.floor(n / 2.0 - half_width)))
    hi = min(n, int(math.ceil(n / 2.0 + half_width)))
    k = np.arange(lo, hi + 1, dtype=np.float64)
    logp = stats.binom.logpmf(k, n, 0.5)
    p = np.exp(logp - logp.max())
    p /= p.sum()
    psi_k = digamma(k / 2.0)
    mean_psi = float(np.dot(p, psi_k))
    var_psi = float(np.dot(p, (psi_k - mean_psi) ** 2))
    mean_trigamma = float(np.dot(p, polygamma(1, k / 2.0)))
    return mean_psi, mean_trigamma + var_psi, 2.0 ** (-n)


@dataclass(frozen=True)
class LogNormSquaredLaw:
    """Law of ``ln ‖J u‖²`` for a fixed unit vector ``u`` at finite widths (see :func:`log_norm_squared_law`).

    Attributes
    ----------
    widths, activation, sigma_w2:
        The network: widths ``n_0..n_L``, ``"linear"`` or ``"relu"``, ``Var(W_l[i,j]) = σ_w²/n_{l-1}``.
    mean, var:
        Exact ``E ln‖Ju‖²`` and ``Var ln‖Ju‖²`` (ReLU: conditioned on no dead layer, see below).
    dead_probability:
        ``P(J u = 0) = 1 − Π_l (1 − 2^{−n_l})`` for ReLU (some layer has no active unit on the
        path of ``u``, so ``ln‖Ju‖² = −∞``); ``0.0`` for linear nets.
    mean_norm2, second_moment_norm2:
        Exact unconditional ``E‖Ju‖²`` and ``E‖Ju‖⁴``.
    beta:
        ``β = Σ_{l=1}^{L} 1/n_l``, Hanin & Nica's depth-to-width parameter.
    """

    widths: tuple[int, ...]
    activation: str
    sigma_w2: float
    mean: float
    var: float
    dead_probability: float
    mean_norm2: float
    second_moment_norm2: float
    beta: float

    @property
    def std(self) -> float:
        """``sqrt(var)``."""
        return math.sqrt(self.var)

    @property
    def depth(self) -> int:
        """Number of layers ``L``."""
        return len(self.widths) - 1

    @property
    def normalized_fourth_moment(self) -> float:
        """``E‖Ju‖⁴ / (E‖Ju‖²)²`` = ``Π(1 + 2/n_l)`` (linear) or ``Π(1 + 5/n_l)`` (ReLU), exactly."""
        return self.second_moment_norm2 / self.mean_norm2**2

    @property
    def leading_order_var(self) -> float:
        """Leading order in ``1/n`` of :attr:`var`: ``κβ`` with ``κ = 2`` (linear) or ``5`` (ReLU).

        Hanin & Nica (2020, arXiv 1812.05994): for ReLU nets ``ln‖Ju‖²`` is approximately
        ``N(−5β/2, 5β)`` after normalising ``E‖Ju‖² = 1``.
        """
        return (2.0 if self.activation == "linear" else 5.0) * self.beta

    @property
    def leading_order_mean(self) -> float:
        """Leading order of :attr:`mean`: ``ln E‖Ju‖² − κβ/2`` (log-normal with the exact first moment)."""
        return math.log(self.mean_norm2) - 0.5 * self.leading_order_var

    def as_scipy(self) -> rv_frozen:
        """The Gaussian approximation ``N(mean, var)`` as a frozen ``scipy.stats.norm``.

        Hanin & Nica (2020, arXiv 1812.05994, Thm. 1 and its ReLU corollary) prove that
        ``ln‖Ju‖²`` is asymptotically Gaussian when depth and widths grow together; at finite
        width the exact law is the sum of independent log-gamma terms drawn by :meth:`sample`
        (skewed left for small widths).
        """
        return stats.norm(loc=self.mean, scale=self.std)

    def sample(self, size: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """Draw ``size`` values from the *exact* law of ``ln‖Ju‖²`` (ReLU: given no dead layer).

        Uses the factorisation of :func:`log_norm_squared_law`:
        ``ln‖Ju‖² = Σ_l [ln(σ_w²/n_{l-1}) + ln 2 + ln G_l]`` with independent
        ``G_l ~ Gamma(K_l/2, 1)``, ``K_l = n_l`` (linear) or ``K_l ~ Bin(n_l, ½)`` conditioned on
        ``K_l ≥ 1`` (ReLU).
        """
        m = check_int("size", size, minimum=1)
        rng = np.random.default_rng(seed)
        total = np.zeros(m)
        for n_in, n_out in zip(self.widths[:-1], self.widths[1:]):
            if self.activation == "linear":
                k = np.full(m, n_out, dtype=np.float64)
            else:
                k = rng.binomial(n_out, 0.5, size=m)
                dead = k == 0
                while dead.any():  # condition on K >= 1 by rejection (rate 2^-n)
                    k[dead] = rng.binomial(n_out, 0.5, size=int(dead.sum()))
                    dead = k == 0
                k = k.astype(np.float64)
            total += math.log(2.0 * self.sigma_w2 / n_in) + np.log(rng.gamma(k / 2.0))
        return total


def log_norm_squared_law(
    widths: tuple[int, ...] | list[int],
    activation: str = "linear",
    sigma_w2: float | None = None,
) -> LogNormSquaredLaw:
    """Exact finite-width law of ``ln ‖J u‖²`` for a fixed unit input direction ``u``.

    Network: widths ``n_0..n_L`` (``len(widths) = L + 1 ≥ 2``), Gaussian weights
    ``Var(W_l[i,j]) = σ_w²/n_{l-1}``, no biases, ``J = D_L W_L ⋯ D_1 W_1`` the input–output
    Jacobian at any input ``x`` (``D_l = I`` for ``"linear"``; ``D_l = diag(1{h_l > 0})`` for
    ``"relu"``). Default ``σ_w²``: 1 (linear, Xavier/LeCun-style) or 2 (ReLU, He).

    Per layer, given the past, ``‖D_l W_l v‖² / ‖v‖² = (σ_w²/n_{l-1}) χ²_{K_l}`` with independent
    factors across layers, where ``K_l = n_l`` (linear) and ``K_l ~ Bin(n_l, ½)`` (ReLU: flipping
    the sign of a row of ``W_l`` flips ``(W_l x)_i`` but not ``(W_l v)_i²``, so each unit is
    active with probability ½ independently of ``(W_l v)_i²`` — the symmetry argument of
    Hanin & Nica 2020, arXiv 1812.05994, for ReLU nets). With ``E ln χ²_k = ψ(k/2) + ln 2`` and
    ``Var ln χ²_k = ψ'(k/2)``:

    * linear: ``mean = Σ_l [ψ(n_l/2) + ln(2σ_w²/n_{l-1})]``, ``var = Σ_l ψ'(n_l/2)``;
    * ReLU: ``mean = Σ_l [ln(2σ_w²/n_{l-1}) + E ψ(K_l/2)]``,
      ``var = Σ_l [E ψ'(K_l/2) + Var ψ(K_l/2)]`` (``ln(4/n_{l-1}) + Eψ(K_l/2)`` at He init).

    **Dead layers (ReLU).** ``K_l = 0`` has probability ``2^{−n_l}`` and then ``J u = 0``,
    ``ln‖Ju‖² = −∞``. ``mean`` and ``var`` are therefore the exact moments *conditioned on
    every* ``K_l ≥ 1``; the probability of the excluded event is reported as
    ``dead_probability = 1 − Π_l(1 − 2^{−n_l})`` (``≈ 2^{−n}·L``, negligible beyond ``n ≈ 30``).

    Exact unconditional moments of the squared norm (zero on dead paths included):
    ``E‖Ju‖² = Π_l c σ_w² n_l / n_{l-1}`` and ``E‖Ju‖⁴ = Π_l (σ_w²/n_{l-1})² E[K_l(K_l+2)]`` with
    ``c = 1`` (linear) or ``½`` (ReLU), ``E[K(K+2)] = n(n+2)`` (linear) or ``n(n+5)/4`` (ReLU),
    so ``E‖Ju‖⁴/(E‖Ju‖²)² = Π(1 + 2/n_l)`` (linear) or ``Π(1 + 5/n_l)`` (ReLU).

    Checked values (docs/derivations.md T26): ReLU/He, ``n_l = 32``, ``L = 8``:
    mean −0.6603, var 1.4200; ``n_l = 1000``, ``L = 100``: −0.2504, 0.5019 (Hanin–Nica leading
    order ``−5β/2 = −0.25``, ``5β = 0.5``).

    Raises ``ValueError`` for fewer than two widths, a non-positive width, an activation other
    than linear/relu, or a non-positive or non-finite ``σ_w²``.
    """
    ws = check_widths("widths", widths)
    if len(ws) < 2:
        raise ValueError(
            f"widths must list n_0..n_L with at least 2 entries (depth >= 1); got {ws!r}"
        )
    act = check_choice("activation", activation, _LOG_NORM_ACTIVATIONS, _LOG_NORM_ALIASES)
    s2 = (1.0 if act == "linear" else 2.0) if sigma_w2 is None else _check_sigma_w2(sigma_w2)

    mean = var = 0.0
    log_m1 = log_m2 = 0.0  # logs of E||Ju||^2 and E||Ju||^4, summed per layer (no overflow)
    log_alive = 0.0
    for n_in, n_out in zip(ws[:-1], ws[1:]):
        scale = math.log(s2 / n_in)
        if act == "linear":
            mean += float(digamma(n_out / 2.0)) + math.log(2.0) + scale
            var += float(polygamma(1, n_out / 2.0))
            log_m1 += math.log(n_out) + scale
            log_m2 += math.log(n_out * (n_out + 2.0)) + 2.0 * scale
        else:
            e_psi, v_layer, p_dead = _relu_layer_stats(n_out)
            mean += e_psi + math.log(2.0) + scale
            var += v_layer
            log_m1 += math.log(n_out / 2.0) + scale
            log_m2 += math.log(n_out * (n_out + 5.0) / 4.0) + 2.0 * scale
            log_alive += math.log1p(-p_dead)
    if max(log_m1, log_m2) > _LOG_FLOAT_MAX:
        raise ValueError(
            f"E||Ju||^2 and E||Ju||^4 leave the float range at sigma_w2={sigma_w2!r} with widths {list(ws)!r} "
            f"(ln E||Ju||^4 = {log_m2:.4g} > {_LOG_FLOAT_MAX:.4g}); the law of ln||Ju||^2 (mean, var) is "
            "finite: compute it at sigma_w2=1 and add depth*ln(sigma_w2) to the mean"
        )
    return LogNormSquaredLaw(
        widths=ws,
        activation=act,
        sigma_w2=s2,
        mean=mean,
        var=var,
        dead_probability=-math.expm1(log_alive) if log_alive < 0.0 else 0.0,
        mean_norm2=math.exp(log_m1),
        second_moment_norm2=math.exp(log_m2),
        beta=sum(1.0 / n for n in ws[1:]),
    )


# ---------------------------------------------------------------------------------------------
# Exact trace moments of J J^T for square Gaussian products
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FiniteWidthMoments:
    """Exact low moments of ``J Jᵀ`` for ``J = W_L ⋯ W_1`` (or the ReLU net ``D_L W_L ⋯ D_1 W_1``),
    ``W_l`` i.i.d. ``N × N`` with i.i.d. entries.

    Attributes: ``m1 = E[tr(JJᵀ)/N]``, ``a = E[(tr(JJᵀ)/N)²]``, ``b = E[tr((JJᵀ)²)/N]``,
    ``fourth_cumulant`` the entries' excess kurtosis κ (0 for Gaussian entries), ``activation``
    ``"linear"`` or ``"relu"`` (see :func:`finite_width_moments`).
    """

    width: int
    depth: int
    field: str
    sigma_w2: float
    m1: float
    a: float
    b: float
    fourth_cumulant: float = 0.0
    activation: str = "linear"

    @property
    def trace_variance(self) -> float:
        """``Var[tr(JJᵀ)/N] = a − m1²`` (fluctuation of the normalised trace)."""
        return self.a - self.m1**2

    @property
    def spectral_variance(self) -> float:
        """``b − m1²``: variance of the mean empirical eigenvalue distribution of ``JJᵀ``.

        Tends to ``σ_w^{4L} L`` as ``N → ∞`` (Fuss–Catalan second moment ``L + 1``).
        """
        return self.b - self.m1**2

    @property
    def per_matrix_variance(self) -> float:
        """``b − a = E[tr(JJᵀ)²/N − (tr JJᵀ/N)²]``: expected variance of one matrix's own spectrum.

        This is what the spread of a single sampled spectrum estimates (``np.var`` of its squared
        singular values); it is smaller than :attr:`spectral_variance` by the trace variance.
        """
        return self.b - self.a


def finite_width_moments(
    width: int,
    depth: int,
    field: str = "real",
    sigma_w2: float = 1.0,
    fourth_cumulant: float = 0.0,
    activation: str = "linear",
    active_fraction: float | None = None,
) -> FiniteWidthMoments:
    """Exact ``E[tr JJᵀ/N]``, ``E[(tr JJᵀ/N)²]`` and ``E[tr (JJᵀ)²/N]`` at finite ``N``.

    ``J = W_L ⋯ W_1``, i.i.d. ``N × N`` matrices with i.i.d. entries of variance ``σ_w²/N``
    (complex: ``E|w|² = σ_w²/N``) and, for real entries, excess kurtosis
    ``κ = fourth_cumulant`` (``E x⁴ = 3 + κ`` for the standardised entry ``x``; ``0`` Gaussian,
    ``−6/5`` uniform, e.g. ``torch.nn.init.xavier_uniform_``, ``−2`` Rademacher). Three
    quantities are carried: ``a = E(tr A/N)²``, ``b = E tr A²/N`` and ``d = E Σ_i A_ii²/N`` for
    ``A = JJᵀ``. With ``a_0 = b_0 = d_0 = 1`` and, for ``σ_w² = 1``,

    * real:    ``a_L = a + (2b + κd)/N²``,  ``b_L = a + (1 + 1/N) b + κd/N``,
      ``d_L = a + 2b/N + κd/N`` (right-hand sides at ``L − 1``);
    * complex (Gaussian only): ``a_L = a + b/N²``,  ``b_L = a + b``;

    ``E[tr JJᵀ/N] = 1``; general ``σ_w²`` multiplies ``m1`` by ``σ_w^{2L}`` and ``a, b`` by
    ``σ_w^{4L}``. Checked values: real Gaussian, ``N = 10``: ``b_2 = 3.33``, ``b_3 = 4.725``;
    ``b_1 = 2 + (1 + κ)/N`` and ``a_1 = 1 + (2 + κ)/N²`` (real), ``b_1 = 2`` (complex);
    ``N = 1``: ``(3 + κ)^L`` (real), ``2^L`` (complex); ``N → ∞``: ``b_L → L + 1``
    (Fuss–Catalan, universal: κ enters at order ``1/N``).

    Source: derived here by one-layer moment (Wick) calculus, checked against exact symbolic
    expectations (Gaussian), exact enumeration (Rademacher and three-point entries) and Monte
    Carlo (package tests). Write ``J_L = W J_{L−1}``, ``A = J_{L−1}J_{L−1}ᵀ`` (independent of
    ``W``), ``W = X/√N``; ``E[X_ia X_kb X_kc X_id]`` is the three Gaussian pairings plus
    ``κ·1[i = k, a = b = c = d]``. Then ``tr(WAWᵀ) = (1/N) Σ_i x_iᵀ A x_i`` over the ``N``
    i.i.d. rows ``x_i`` of ``X``, each quadratic form with mean ``tr A`` and variance
    ``2 tr A² + κ Σ_a A_aa²`` (real) or ``tr A²`` (complex), which gives the ``a``
    recursion; ``E tr((WAWᵀ)²) = (1 + 1/N) tr A² + (tr A)²/N + (κ/N) Σ_a A_aa²`` (the Gaussian
    part is the real Wishart identity ``E[XᵀX A XᵀX] = N(N+1) A + N tr(A) I``, e.g. Muirhead,
    *Aspects of Multivariate Statistical Theory*, 1982), which gives the ``b`` recursion; and a
    diagonal entry ``(1/N) x_iᵀ A x_i`` of ``WAWᵀ`` has second moment
    ``((tr A)² + 2 tr A² + κ Σ_a A_aa²)/N²``, which gives the ``d`` recursion.

    **ReLU networks** (``activation="relu"``; real Gaussian weights, no biases, any input):
    ``J = D_L W_L ⋯ D_1 W_1`` with ``D_l = diag(1{h_l > 0})``. Flipping the sign of row ``i`` of
    ``W_l`` flips ``h_{l,i}`` but leaves the row's law unchanged, so ``D_l W_l = D_l W̃_l`` with
    ``D_l``'s diagonal i.i.d. Bernoulli(½) and independent of ``W̃_l`` (the rows folded to
    ``w̃_i·x > 0``); ``W̃_l`` differs from a Gaussian matrix only in the sign of its component
    along the layer input ``x``: every term of the moments below that is odd in that component
    of a row is also odd in the row's other components, which are symmetric and independent of
    it, so it vanishes for both, and the moments are those of independent Bernoulli(½) ``D_l``
    and Gaussian ``W_l`` (checked against ReLU networks in the package tests). With
    ``E ε_iε_j = ¼`` (``i ≠ j``), ``½`` (``i = j``) in the pairings above (``σ_w² = 1``; general
    ``σ_w²`` as for linear nets):

    * ``m1_L = m1/2``, ``a_L = (¼ + 1/(4N)) a + b/N²``, ``b_L = (¼ + 3/(4N)) b + a/2``;

    more generally, for masks with i.i.d. Bernoulli(π) diagonals independent of Gaussian ``W_l``
    (``active_fraction=π``; ``activation="relu"`` alone means π = ½, the exact ReLU case),
    ``m1_L = π m1``, ``a_L = (π²(1 − 1/N) + π/N) a + 2π b/N²``,
    ``b_L = (π²(1 − 1/N) + 2π/N) b + π a``. For π ≠ ½ this is exact for independent masks
    only — a model, e.g., of hard-tanh nets (``φ'² ∈ {0, 1}``), whose masks also depend on
    ``|h|`` and hence weakly on the weights;

    at He init (``σ_w² = 2``) ``m1 = 1``, ``b_L → 2L + 1`` (``Var λ = 2L``, the ReLU Jacobian law)
    as ``N → ∞``, and ``N = 1`` gives ``(3σ_w⁴/2)^L`` (``E (ε w)⁴``).

    Raises ``ValueError`` for ``width < 1``, ``depth < 0``, an unknown field or activation, bad
    ``σ_w²``, ``fourth_cumulant < −2`` (every law has ``E x⁴ ≥ (E x²)² = 1``) or a nonzero
    ``fourth_cumulant`` with ``field="complex"`` or ``activation="relu"``, for
    ``activation="relu"`` with ``field="complex"`` (not derived here), and for ``active_fraction``
    outside ``(0, 1]`` or given without ``activation="relu"``.
    """
    n = check_int("width", width, minimum=1, maximum=MAX_MOMENT_WIDTH)
    depth_ = check_int("depth", depth, minimum=0, maximum=MAX_MOMENT_DEPTH)
    field = _check_field(field)
    s2 = _check_sigma_w2(sigma_w2)
    kappa = check_real("fourth_cumulant", fourth_cumulant, low=-2.0)
    act = check_choice("activation", activation, ("linear", "relu"))
    if active_fraction is None:
        pi = 0.5
    elif act != "relu":
        raise ValueError(
            f"active_fraction={active_fraction!r} needs activation='relu' (masked Gaussian layers); "
            f"got activation={act!r}"
        )
    else:
        pi = check_real("active_fraction", active_fraction, low=0.0, high=1.0, low_inclusive=False)
    if field == "complex" and kappa != 0.0:
        raise ValueError(
            f"fourth_cumulant={kappa!r} is only supported with field='real' (complex entries: "
            "Gaussian only, fourth_cumulant=0.0)"
        )
    if act == "relu" and (field != "real" or kappa != 0.0):
        raise ValueError(
            f"activation='relu' is derived for real Gaussian weights only (field='real', "
            f"fourth_cumulant=0.0); got field={field!r}, fourth_cumulant={kappa!r}"
        )
    a, b, d = 1.0, 1.0, 1.0
    try:
        m1 = s2**depth_
    except OverflowError:
        m1 = math.inf
    if act == "relu":
        ca, cb = pi * pi * (1.0 - 1.0 / n), 2.0 * pi / n**2
        for _ in range(depth_):
            a, b = (ca + pi / n) * a + cb * b, (ca + 2.0 * pi / n) * b + pi * a
        m1 *= pi**depth_
    elif field == "real":
        for _ in range(depth_):
            a, b, d = (
                a + (2.0 * b + kappa * d) / n**2,
                a + (1.0 + 1.0 / n) * b + kappa * d / n,
                a + (2.0 * b + kappa * d) / n,
            )
    else:
        for _ in range(depth_):
            a, b = a + b / n**2, a + b
    try:
        scale2 = s2 ** (2 * depth_)
        a, b = a * scale2, b * scale2
    except OverflowError:
        a = b = math.inf
    if not all(math.isfinite(v) and v > 0.0 for v in (m1, a, b)):  # true values are > 0: 0 is underflow
        raise ValueError(
            f"the moments over- or underflow the float range at sigma_w2={sigma_w2!r}, depth={depth_} "
            f"(m1 = sigma_w2**depth, a and b ~ sigma_w2**(2*depth)); use log-space quantities "
            "(log_norm_squared_law, lyapunov_exponents) or a smaller depth"
        )
    return FiniteWidthMoments(
        width=n,
        depth=depth_,
        field=field,
        sigma_w2=s2,
        m1=m1,
        a=a,
        b=b,
        fourth_cumulant=kappa,
        activation=act,
    )


# ---------------------------------------------------------------------------------------------
# Extreme singular values at finite width
# ---------------------------------------------------------------------------------------------


def _fuss_catalan_log_edge(depth: int) -> float:
    """``½ ln((L+1)^{L+1}/L^L)``: log of the top singular value of the ``N → ∞`` Fuss–Catalan law."""
    return 0.5 * ((depth + 1) * math.log(depth + 1) - depth * math.log(depth))


@dataclass(frozen=True)
class TopSingularValueGrowth:
    """Predictions for ``E ln σ_max(W_L ⋯ W_1)`` at finite ``N`` (see :func:`top_singular_value_growth`).

    ``lyapunov_lower ≤ E ln σ_max ≤ lyapunov_mean`` exactly; ``infinite_width_edge`` is the
    ``N → ∞`` limit; ``estimate`` is the smaller of the two asymptotes, ``regime`` its branch.
    """

    width: int
    depth: int
    field: str
    sigma_w2: float
    infinite_width_edge: float
    lyapunov_lower: float
    lyapunov_mean: float
    lyapunov_std: float
    estimate: float
    regime: str


def top_singular_value_growth(
    width: int, depth: int, field: str = "real", sigma_w2: float = 1.0
) -> TopSingularValueGrowth:
    """Predicted ``ln σ_max`` of a product of ``L = depth`` i.i.d. ``N × N`` Gaussian matrices.

    Entries of variance ``σ_w²/N``; ``λ_i``, ``v_i``: :func:`lyapunov_exponents`,
    :func:`lyapunov_variances`; ``Δ = λ_1 − λ_N`` (``½[ψ(N/2) − ψ(½)]`` real,
    ``½[ψ(N) − ψ(1)]`` complex; ``≈ ½ ln N + 0.635`` for large real ``N``).

    * ``lyapunov_lower = L λ_1`` and ``lyapunov_mean = L λ_1 + Δ``: **exact bounds**
      ``L λ_1 ≤ E ln σ_max ≤ L λ_1 + Δ`` for every ``N`` and ``L``, and
      ``E ln σ_max − (L λ_1 + Δ) → 0`` as ``L → ∞`` at fixed ``N`` (exponentially fast, at rate
      ``λ_1 − λ_2``). Derivation (ours, elementary): for ``f`` uniform on the sphere and
      independent of ``P``, ``‖P f‖² = σ_max² Σ_i (σ_i/σ_max)² c_i²`` with ``c = Vᵀf`` uniform
      and independent of the singular values; ``E ln‖P f‖ = L λ_1`` exactly (per-layer
      chi-square factors) and ``c_1² ≤ Σ_i (σ_i/σ_max)² c_i² ≤ 1``, while
      ``−½ E ln c_1² = Δ``. ``lyapunov_std = sqrt(L v_1)`` is the large-``L`` standard deviation.
    * ``infinite_width_edge = ½ ln((L+1)^{L+1}/L^L) + (L/2) ln σ_w²``: the almost-sure limit of
      ``ln σ_max`` as ``N → ∞`` at fixed ``L`` (Fuss–Catalan edge; Penson & Życzkowski 2011,
      arXiv 1103.3453), ``≈ ½ ln(e(L + ½))``.
    * ``estimate = min(infinite_width_edge, lyapunov_mean)``, ``regime`` names the branch
      (``"large_width"`` up to ``L ≈ 0.67 N`` for large ``N``, else ``"lyapunov"``). Valid in
      the two limits; in the crossover ``L ~ N`` (Hanin–Nica ``β = L/N = O(1)``) neither
      applies and the estimate is high. Measured mean ``ln σ_max`` vs ``estimate`` (real,
      400–2000 products each): ``N = 32``: ``L = 1`` 0.645 vs 0.693; ``L = 16`` 1.453 vs
      1.902; ``L = 32`` 1.401 vs 1.847; ``L = 256`` −1.794 vs −1.689; ``N = 8, L = 8``: 0.700
      vs 1.089 — errors up to ≈ 0.45 nat near ``L ≈ N``, shrinking away from it.
    """
    n = check_int("width", width, minimum=1, maximum=MAX_SPECTRUM_WIDTH)
    depth_ = check_int("depth", depth, minimum=1)
    field = _check_field(field)
    s2 = _check_sigma_w2(sigma_w2)
    lam1 = float(lyapunov_exponents(n, field, s2)[0])
    v1 = float(lyapunov_variances(n, field)[0])
    gap = _lyapunov_gap(n, field)
    edge = _fuss_catalan_log_edge(depth_) + 0.5 * depth_ * math.log(s2)
    lower = depth_ * lam1
    upper = lower + gap
    regime = "large_width" if edge <= upper else "lyapunov"
    return TopSingularValueGrowth(
        width=n,
        depth=depth_,
        field=field,
        sigma_w2=s2,
        infinite_width_edge=edge,
        lyapunov_lower=lower,
        lyapunov_mean=upper,
        lyapunov_std=math.sqrt(depth_ * v1),
        estimate=min(edge, upper),
        regime=regime,
    )


@dataclass(frozen=True)
class ConditionNumberGrowth:
    """Predictions for ``E ln κ`` of an ``N × N`` Gaussian product (see :func:`condition_number_growth`).

    ``lower_bound ≤ E ln κ ≤ lyapunov_mean`` exactly (the latter is also the ``L → ∞``
    asymptote); ``large_width_heuristic`` is heuristic only.
    """

    width: int
    depth: int
    field: str
    gap: float
    lower_bound: float
    lyapunov_mean: float
    lyapunov_std: float
    large_width_heuristic: float

    def band(self, k: float = 2.0) -> tuple[float, float]:
        """``lyapunov_mean ∓ k · lyapunov_std`` (large-``L`` Gaussian band for ``ln κ``)."""
        kk = check_real("k", k, low=0.0)
        return self.lyapunov_mean - kk * self.lyapunov_std, self.lyapunov_mean + kk * self.lyapunov_std


def condition_number_growth(width: int, depth: int, field: str = "real") -> ConditionNumberGrowth:
    """Predicted ``ln κ = ln(σ_max/σ_min)`` of a product of ``L`` i.i.d. ``N × N`` Gaussian matrices.

    (Independent of the entry variance.) With ``Δ = λ_1 − λ_N`` (see
    :func:`top_singular_value_growth`; ``≈ ½ ln N + 0.635`` for large real ``N``):

    * **Exact bounds** for every ``N, L``: ``L Δ ≤ E ln κ ≤ (L + 2) Δ`` (``lower_bound`` and
      ``lyapunov_mean``), and ``E ln κ − (L + 2) Δ → 0`` as ``L → ∞`` at fixed ``N``.
      Derivation (ours): the top side as in :func:`top_singular_value_growth`; for the bottom
      side, a uniformly random hyperplane ``H`` with unit normal ``n`` has
      ``vol_{N−1}(P H) = |det P| ‖P^{−T} n‖``, and ``E ln vol_{N−1}(PH) = L Σ_{i<N} λ_i``,
      ``E ln|det P| = L Σ_i λ_i`` exactly (Bartlett), so
      ``L λ_N − Δ ≤ E ln σ_min ≤ L λ_N`` with the lower end attained as ``L → ∞``. In the
      fixed-``N``, ``L → ∞`` regime ``ln κ / L → Δ`` (Newman 1986 gap; rank
      collapse: Daneshmand et al. 2020, arXiv 2003.01652).
    * ``lyapunov_std = sqrt(L (v_1 + v_N))``: large-``L`` standard deviation (the QR
      accumulators of the first and last direction are independent).
    * ``large_width_heuristic = ½ ln(e(L+1)) + ((L+1)/2) ln N``: **heuristic**, ``N → ∞`` at
      fixed ``L``: ``σ_max² → (L+1)^{L+1}/L^L ≈ e(L+1)`` and the hard-edge density
      ``ρ(x) ≈ (sin(π/(L+1))/π) x^{−L/(L+1)}`` puts the smallest squared singular value at
      ``~ N^{−(L+1)}``, up to a factor ``c^{L+1}`` that this formula ignores (so its error grows
      with ``L``). Measured (real): ``N = 32``: ``L = 1`` 4.98 (heuristic 4.31, mean 7.06);
      ``L = 8`` 22.7 (17.2, 23.5); ``L = 256`` 606.8 ± 0.9 (448.6, 606.9). ``N = 2``,
      ``L = 256``: 179.3 ± 0.5 vs ``(L+2)Δ = 178.8``.
    """
    n = check_int("width", width, minimum=1, maximum=MAX_SPECTRUM_WIDTH)
    depth_ = check_int("depth", depth, minimum=1)
    field = _check_field(field)
    v = lyapunov_variances(n, field)
    gap = _lyapunov_gap(n, field)
    heuristic = 0.5 * math.log(math.e * (depth_ + 1)) + 0.5 * (depth_ + 1) * math.log(n)
    return ConditionNumberGrowth(
        width=n,
        depth=depth_,
        field=field,
        gap=gap,
        lower_bound=depth_ * gap,
        lyapunov_mean=(depth_ + 2) * gap,
        lyapunov_std=math.sqrt(depth_ * float(v[0] + v[-1])) if n > 1 else 0.0,
        large_width_heuristic=heuristic,
    )


def relu_zero_fraction(width: int, depth: int) -> tuple[float, float]:
    """Exact mean and standard deviation of the fraction of zero squared singular values of a finite ReLU-net Jacobian.

    ``J = D_L W_L ⋯ D_1 W_1`` (square N × N, no biases, Gaussian or Haar-orthogonal W): given a nonzero layer
    input x, ``W_l x`` has i.i.d. symmetric coordinates (Gaussian; for Haar W the direction is uniform on the
    sphere, whose coordinates' signs are i.i.d.), so the active counts ``K_l`` are i.i.d. Bin(N, ½),
    independent across layers. rank J = min_l K_l almost surely: J factors through the K_l × K_{l−1} blocks of
    active rows and columns, which have a joint density even conditioned on the activity pattern (a region of
    positive volume), so the product of generic blocks has the largest rank the sizes allow. Hence the zero
    fraction is ``f = 1 − min_l K_l / N`` with ``E min = Σ_{k≥1} P(K ≥ k)^L`` and
    ``E min² = Σ_{k≥1} (2k − 1) P(K ≥ k)^L``. Its N → ∞ limit is the law's atom ½; at N = 64, L = 3 it is
    0.5528.

    Returns ``(mean, standard deviation)`` of f for one network.
    """
    width = check_int("width", width, minimum=1)
    depth = check_int("depth", depth, minimum=1)
    k = np.arange(1, width + 1)
    tail = stats.binom.sf(k - 1, width, 0.5) ** depth
    m1 = float(tail.sum())
    m2 = float(((2 * k - 1) * tail).sum())
    return 1.0 - m1 / width, math.sqrt(max(m2 - m1**2, 0.0)) / width
