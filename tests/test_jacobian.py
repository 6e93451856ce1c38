"""Tests of rmt_init.theory.jacobian: deep-network Jacobian laws.

References used here are independent of the package's series code: moments by the Lagrange inversion
formula m_k = (1/k)[w^{k−1}] ((1 + w)/S(w))^k with exact binomial sums (docs/derivations.md §0: χ(w) = S(w)w/(1+w),
ψ = χ⁻¹), support edges in closed form (docs/derivations.md §3.2), and Monte Carlo in numpy at width 1000.
"""
from __future__ import annotations

import math
from fractions import Fraction

import mpmath
import numpy as np
import pytest

from rmt_init.theory import (
    chi1,
    critical_sigma_w2,
    derivative_moments,
    fuss_catalan,
    get_activation,
    marchenko_pastur,
    q_star,
)
from rmt_init.theory.free import FreeProductLaw, rectangular_product
from rmt_init.theory.jacobian import jacobian_spectrum


def _binom(a: int, k: int) -> Fraction:
    """Generalised binomial C(a, k) for any integer a (negative included)."""
    out = Fraction(1)
    for i in range(k):
        out = out * (a - i) / (i + 1)
    return out


def _lagrange_moments(power_1w: int, power_12w: int, order: int) -> list[Fraction]:
    """Moments of the law with (1 + w)/S(w) = (1 + w)^A (1 + 2w)^B (A, B per unit of k).

    m_k = (1/k) [w^{k−1}] (1 + w)^{kA} (1 + 2w)^{kB} (Lagrange inversion).
    """
    out = []
    for k in range(1, order + 1):
        n = k - 1
        coefficient = sum(_binom(k * power_1w, j) * _binom(k * power_12w, n - j) * 2 ** (n - j) for j in range(n + 1))
        out.append(coefficient / k)
    return out


# (1 + w)/S(w) at criticality (docs/derivations.md §3.1–3.2): S_W = 1/(σ²(1 + w)) (Gaussian), 1/σ² (orthogonal);
# S_{D²} = 1 (linear), (1 + w)/(½ + w) (ReLU, σ² = 2).
CASES = {
    ("linear", "gaussian"): lambda L: (L + 1, 0),
    ("linear", "orthogonal"): lambda L: (1, 0),
    ("relu", "gaussian"): lambda L: (1, L),
    ("relu", "orthogonal"): lambda L: (1 - L, L),
}


@pytest.mark.parametrize("activation,weights", list(CASES))
@pytest.mark.parametrize("depth", [1, 2, 5, 10, 50])
def test_moments_equal_lagrange_inversion(activation: str, weights: str, depth: int) -> None:
    law = jacobian_spectrum(depth, activation, weights=weights)
    exact = _lagrange_moments(*CASES[(activation, weights)](depth), order=8)
    for k, m in enumerate(exact, start=1):
        assert law.moment(k) == pytest.approx(float(m), rel=1e-10), k


def test_depth_one_and_linear_reduce_to_mp_and_fuss_catalan() -> None:
    x = np.linspace(0.05, 3.9, 40)
    assert np.allclose(jacobian_spectrum(1, "linear").pdf(x), marchenko_pastur(1.0).pdf(x), rtol=1e-10, atol=0)
    law = jacobian_spectrum(6, "linear", weights="gaussian", sigma_w2=1.0)
    fc = fuss_catalan(6)
    x = np.linspace(0.01, 0.99, 60) * fc.support[1]
    assert np.allclose(law.pdf(x), fc.pdf(x), rtol=1e-9, atol=0)
    assert law.support[1] == pytest.approx(fc.support[1], rel=1e-12)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("depth", [1, 3, 20])
def test_relu_atom_at_zero_has_mass_half(weights: str, depth: int) -> None:
    law = jacobian_spectrum(depth, "relu", weights=weights)
    assert law.atoms[0] == (0.0, 0.5)
    # beyond 0 only depth-1 orthogonal has an atom (at σ_w² = 2); Belinschi: ½ + ½ − 1 = 0 for L ≥ 2
    assert law.atoms[1:] == (((2.0, 0.5),) if (depth, weights) == (1, "orthogonal") else ())
    assert law.cdf(0.0) == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(depth=4, activation="relu", weights="gaussian"),
        dict(depth=4, activation="relu", weights="orthogonal"),
        dict(depth=3, activation="hardtanh", weights="gaussian", sigma_b2=0.05),
        dict(depth=5, activation="hardtanh", weights="orthogonal", sigma_b2=0.01),
        dict(depth=3, activation="linear", widths=[300, 500, 200, 400]),
    ],
)
def test_density_with_atoms_integrates_to_one(kwargs: dict) -> None:
    law = jacobian_spectrum(**kwargs)
    atom_mass = sum(m for _, m in law.atoms)
    continuous = sum(float(law._interval_cdf(i, np.array([b]))[0]) for i, (_, b) in enumerate(law.intervals))
    assert continuous + atom_mass == pytest.approx(1.0, abs=1e-8)
    # the first moment by quadrature of the density equals the exact one (a check on the density's shape)
    from rmt_init.theory.laws import _tanhsinh

    first = sum(float(_tanhsinh(lambda x: x * law._pdf_vectorised(x), np.array([a]), np.array([b]))[0]) for a, b in law.intervals)
    first += sum(loc * m for loc, m in law.atoms)
    assert first == pytest.approx(law.mean(), rel=1e-8)


@pytest.mark.parametrize("depth", [1, 4, 16, 100])
def test_relu_edges_match_closed_forms(depth: int) -> None:
    # Gaussian: min_w (1 + w)(1 + 2w)^L / w at 2L w² + (2L − 2) w − 1 = 0 (docs/derivations.md §3.2)
    w = (-(2 * depth - 2) + math.sqrt((2 * depth - 2) ** 2 + 8 * depth)) / (4 * depth)
    edge = (1 + w) * (1 + 2 * w) ** depth / w
    assert jacobian_spectrum(depth, "relu").support[1] == pytest.approx(edge, rel=1e-12)
    if depth >= 2:  # orthogonal: L^L/(L − 1)^{L−1}
        edge = math.exp(depth * math.log(depth) - (depth - 1) * math.log(depth - 1))
        assert jacobian_spectrum(depth, "relu", weights="orthogonal").support[1] == pytest.approx(edge, rel=1e-12)
    else:  # one orthogonal ReLU layer: 2·Bernoulli(½), atoms at 0 and 2
        assert jacobian_spectrum(1, "relu", weights="orthogonal").atoms == ((0.0, 0.5), (2.0, 0.5))


def test_leaky_relu_moments() -> None:
    """D² = ½δ_{a²} + ½δ₁ (a = 0.01): mean χ₁^L, and var = L μ₂/μ₁² − ... checked through m₂ at depth 1:
    m₂ of σ_w²·MP ⊠ D² is σ_w⁴(μ₂ + μ₁²) (free product with MP(1): m₂ = μ₂ + μ₁²)."""
    a2 = 0.01**2
    mu1, mu2 = 0.5 * (1 + a2), 0.5 * (1 + a2 * a2)
    law = jacobian_spectrum(1, "leaky_relu", weights="gaussian", sigma_w2=1.0)
    assert law.mean() == pytest.approx(mu1, rel=1e-14)
    assert law.moment(2) == pytest.approx(mu2 + mu1**2, rel=1e-13)
    deep = jacobian_spectrum(5, "leaky_relu")  # critical: σ_w² = 1/μ₁
    assert deep.mean() == pytest.approx(1.0, rel=1e-13)
    assert deep.var() == pytest.approx(5 * mu2 / mu1**2, rel=1e-12)


def test_summary_numbers_and_criticality() -> None:
    law = jacobian_spectrum(4, "relu", init="kaiming_normal", nonlinearity="relu")
    s = law.summary()
    assert s["critical"] and s["chi1"] == pytest.approx(1.0, abs=1e-12)
    assert s["mean"] == pytest.approx(1.0, rel=1e-13) and s["variance"] == pytest.approx(8.0, rel=1e-12)
    assert s["top_singular_value"] == pytest.approx(math.sqrt(s["upper_edge"]), rel=1e-15)
    off = jacobian_spectrum(4, "relu", weights="gaussian", sigma_w2=2.2)
    assert not off.is_critical and off.mean() == pytest.approx(1.1**4, rel=1e-12)


# gelu only above σ_b² ≈ 0.1729: below it every critical fixed point repels (critical_sigma_w2 raises)
_SMOOTH = [("tanh", 0.05), ("erf", 0.3), ("selu", 0.0), ("sigmoid", 0.1), ("gelu", 0.5)]


@pytest.mark.parametrize("activation,sigma_b2", _SMOOTH)
@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_smooth_activations_have_exact_moments(activation: str, sigma_b2: float, weights: str) -> None:
    depth = 6
    act = get_activation(activation)
    sw = critical_sigma_w2(act, sigma_b2)
    law = jacobian_spectrum(depth, activation, weights=weights, sigma_b2=sigma_b2)
    q = q_star(act, sw, sigma_b2)
    mu1, mu2 = derivative_moments(act, q, 1), derivative_moments(act, q, 2)
    assert law.mean() == pytest.approx(chi1(act, sw, sigma_b2) ** depth, rel=1e-10)
    assert chi1(act, sw, sigma_b2) == pytest.approx(1.0, abs=1e-9)  # the critical line
    # at criticality (docs/derivations.md §3.1): var = L μ₂/μ₁² (Gaussian), L(μ₂/μ₁² − 1) (orthogonal)
    expected = depth * mu2 / mu1**2 - (depth if weights == "orthogonal" else 0)
    assert law.var() == pytest.approx(expected, rel=1e-9)


# (orthogonal smooth laws: 16 s (tanh) and 31 s (sigmoid) of quadrature on a 2-core machine)
@pytest.mark.parametrize(
    "activation,sigma_b2,weights",
    [("tanh", 0.05, "gaussian"), ("selu", 0.0, "gaussian"), ("tanh", 0.05, "orthogonal"), ("sigmoid", 0.5, "orthogonal")],
)
def test_smooth_activation_density_is_normalised_with_the_exact_moments(activation: str, sigma_b2: float, weights: str) -> None:
    """The density (Stieltjes inversion with the Gaussian-image factor) integrates to 1 with the atoms, and
    its first two moments by tanh–sinh quadrature equal the exact ones (which never touch the density)."""
    from rmt_init.theory.laws import _tanhsinh

    law = jacobian_spectrum(5, activation, weights=weights, sigma_b2=sigma_b2)
    assert law.has_density and law.summary()["upper_edge"] == law.support[1]
    for k in (0, 1, 2):
        by_quadrature = sum(
            float(_tanhsinh(lambda x: x**k * law._pdf_vectorised(x), np.array([a]), np.array([b]))[0])
            for a, b in law.intervals
        ) + sum(loc**k * m for loc, m in law.atoms)
        assert by_quadrature == pytest.approx(float(law.moment(k)) if k else 1.0, rel=1e-8), k
    hi = law.support[1]
    x = np.linspace(0.0, 1.2 * hi, 120)
    p = law.pdf(x)
    assert np.all(np.isfinite(p)) and np.all(p >= 0) and np.all(p[x > hi] == 0) and np.any(p > 0)


_L_SELU, _A_SELU = mpmath.mpf("1.0507009873554804934193349852946"), mpmath.mpf("1.6732632423543772848170429916717")


def _mp_dphi_squared(name: str, q: float):
    r = mpmath.sqrt(q)
    return {
        "tanh": lambda z: mpmath.sech(r * z) ** 4,
        "erf": lambda z: (2 / mpmath.sqrt(mpmath.pi) * mpmath.exp(-((r * z) ** 2))) ** 2,
        "sigmoid": lambda z: (mpmath.sech(r * z / 2) ** 2 / 4) ** 2,
        "gelu": lambda z: (mpmath.ncdf(r * z) + r * z * mpmath.npdf(r * z)) ** 2,
        "selu": lambda z: (_L_SELU * _A_SELU * mpmath.exp(r * z)) ** 2,
    }[name]


@pytest.mark.parametrize(
    "name,q,c", [("tanh", 0.7, 0.5), ("tanh", 0.7, 0.999), ("erf", 0.3, 1.27), ("gelu", 1.0, 0.0166), ("selu", 1.0, 3.0), ("sigmoid", 2.0, 0.0624)]
)
def test_gaussian_image_psi_near_the_cut_against_mpmath(name: str, q: float, c: float) -> None:
    """1 + ψ(u) = E[1/(1 − u φ'(√q z)²)] at 1/u = c + iε, ε → 0, where the integrand has poles 1e−9 from
    the real axis: 30-digit mpmath quadrature split at the poles' real parts is the reference. The
    singularity subtraction keeps ≲3e−13 there (measured); the test allows 1e−11."""
    from rmt_init.theory.jacobian import _d_squared_factor

    factor = _d_squared_factor(get_activation(name), q)
    d = _mp_dphi_squared(name, q)
    for eps in (1e-2, 1e-5, 1e-9):
        u = 1.0 / complex(c, eps)
        value = factor.one_plus_psi(np.array([u]))[0][0]
        roots, ok = factor._roots(factor.rules[0], np.array([1.0 / u]))
        breaks = sorted({float(r.real) for r, o in zip(roots[0], ok[0]) if o})
        top = 0.0 if name == "selu" else 12.0
        with mpmath.workdps(30):
            um = mpmath.mpc(u.real, u.imag)
            points = [-12.0] + [b for b in breaks if -12.0 < b < top] + [top]
            reference = mpmath.quad(lambda z: mpmath.npdf(z) / (1 - um * d(z)), points, maxdegree=10)
            if name == "selu":  # the atom ½δ_{λ²} of z > 0
                reference += mpmath.mpf(1) / 2 / (1 - um * _L_SELU**2)
        assert abs(value - complex(reference)) <= 1e-11 * abs(complex(reference)), eps


def _tanh_network_jacobian_eigs(width: int, depth: int, sigma_w2: float, sigma_b2: float, q: float, rng) -> np.ndarray:
    """Eigenvalues of JJᵀ for a Gaussian tanh network started at its fixed point q*, explicit forward pass."""
    h = rng.standard_normal(width) * math.sqrt(q)
    jac = np.eye(width)
    for _ in range(depth):
        w = rng.standard_normal((width, width)) * math.sqrt(sigma_w2 / width)
        pre = w @ np.tanh(h) + rng.standard_normal(width) * math.sqrt(sigma_b2)
        jac = (1.0 - np.tanh(pre) ** 2)[:, None] * (w @ jac)
        h = pre
    return np.linalg.eigvalsh(jac @ jac.T)


def test_monte_carlo_tanh_network_density_width_1000() -> None:
    """A critical tanh network (σ_b² = 0.05, Gaussian weights), N = 1000, L = 3, 3 networks: the
    spectrum against the law's cdf. KS allowed 0.05: the sampling part is ~1.36/√(3N) ≈ 0.025 at 95 %,
    and the finite-width shift of the bulk is O(L/N) in each moment (measured below 0.01 here)."""
    width, depth, sigma_b2 = 1000, 3, 0.05
    act = get_activation("tanh")
    sw = critical_sigma_w2(act, sigma_b2)
    q = q_star(act, sw, sigma_b2)
    rng = np.random.default_rng(2024)
    eigs = np.sort(np.concatenate([_tanh_network_jacobian_eigs(width, depth, sw, sigma_b2, q, rng) for _ in range(3)]))
    law = jacobian_spectrum(depth, "tanh", weights="gaussian", sigma_b2=sigma_b2)
    # the law's cdf on 3000 Chebyshev points: tanh–sinh on the first 40 panels (the density grows like a
    # negative power at the hard edge 0), the trapezoidal rule on the rest (error < 1e−3 there)
    from rmt_init.theory.laws import _tanhsinh

    a, b = law.support
    grid = a + (b - a) * 0.5 * (1.0 - np.cos(np.linspace(0.0, np.pi, 3000)))
    density = law.pdf(grid)
    pieces = 0.5 * (density[1:] + density[:-1]) * np.diff(grid)
    pieces[:40] = _tanhsinh(law._pdf_vectorised, grid[:40], grid[1:41])
    cdf_grid = np.concatenate([[0.0], np.cumsum(pieces)])
    assert cdf_grid[-1] == pytest.approx(1.0, abs=2e-3)
    cdf_grid /= cdf_grid[-1]
    ecdf = np.arange(1, eigs.size + 1) / eigs.size
    assert np.max(np.abs(np.interp(eigs, grid, cdf_grid) - ecdf)) < 0.05
    assert np.mean(eigs) == pytest.approx(law.mean(), rel=0.05)


def test_depth_1000_stays_finite() -> None:
    for kwargs in (
        dict(activation="relu", weights="orthogonal"),
        dict(activation="relu", weights="gaussian"),
        dict(activation="hardtanh", weights="orthogonal", sigma_b2=1e-4),  # near dynamical isometry
        dict(activation="erf", weights="orthogonal", sigma_b2=1e-4),
    ):
        law = jacobian_spectrum(1000, **kwargs)
        assert law.mean() == pytest.approx(1.0, rel=1e-9)
        assert math.isfinite(law.var()) and math.isfinite(law.moment(6))
        if law.has_density:
            lo, hi = law.support
            p = law.pdf(np.linspace(lo, hi, 1000))
            assert np.all(np.isfinite(p)) and np.all(p >= 0) and math.isfinite(hi)
    # near isometry the spectrum concentrates: hard-tanh at q* ≈ 0.095 keeps var ≈ 1.2 at depth 1000,
    # against 1000 for ReLU (orthogonal)
    assert jacobian_spectrum(1000, "hardtanh", weights="orthogonal", sigma_b2=1e-4).var() < 2.0


def test_rectangular_linear_network_is_the_rectangular_product() -> None:
    widths = [400, 800, 300, 600]
    law = jacobian_spectrum(3, "linear", weights="gaussian", sigma_w2=1.0, widths=widths)
    ref = rectangular_product(widths)
    for k in range(1, 6):
        assert law.moment(k) == pytest.approx(ref.moment(k), rel=1e-12)
    assert law.atoms[0][1] == pytest.approx(1 - 300 / 600, abs=1e-15)
    x = np.linspace(0.05, 0.95, 30) * ref.support[1]
    assert np.allclose(law.pdf(x), ref.pdf(x), rtol=1e-9, atol=0)


def _relu_network_jacobian_eigs(width: int, depth: int, weights: str, rng: np.random.Generator) -> np.ndarray:
    """Eigenvalues of JJᵀ for a bias-free ReLU network at σ_w² = 2, by an explicit forward pass."""
    h = rng.standard_normal(width)
    jac = np.eye(width)
    for _ in range(depth):
        if weights == "gaussian":
            w = rng.standard_normal((width, width)) * math.sqrt(2.0 / width)
        else:
            q, r = np.linalg.qr(rng.standard_normal((width, width)))
            w = math.sqrt(2.0) * q * np.sign(np.diag(r))
        pre = w @ h
        active = (pre > 0).astype(float)
        jac = active[:, None] * (w @ jac)
        h = np.maximum(pre, 0.0)
    return np.linalg.eigvalsh(jac @ jac.T)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
def test_monte_carlo_relu_network_width_1000(weights: str) -> None:
    """Tolerances: over T trials the statistic's standard error is estimated from the trials; we allow
    5 standard errors plus a finite-width bias of 2·L²/N relative (the O(L²/N) correction of the
    second moment, docs/derivations.md §3.3; 0.018 at L = 3, N = 1000). The fraction of zero eigenvalues is
    (N − active units in the last layer)/N, a Binomial(N, ½)/N: standard error 0.5/√(N T)."""
    width, depth, trials = 1000, 3, 3
    rng = np.random.default_rng(12345)
    eigs = [_relu_network_jacobian_eigs(width, depth, weights, rng) for _ in range(trials)]
    law = jacobian_spectrum(depth, "relu", weights=weights)
    zero_fraction = np.mean([np.mean(e < 1e-10 * e.max()) for e in eigs])
    assert abs(zero_fraction - 0.5) < 5 * 0.5 / math.sqrt(width * trials)
    bias = 2 * depth**2 / width
    for k in (1, 2):
        per_trial = np.array([np.mean(e**k) for e in eigs])
        stderr = per_trial.std(ddof=1) / math.sqrt(trials)
        assert abs(per_trial.mean() - law.moment(k)) <= 5 * stderr + bias * law.moment(k), k
    # the nonzero spectrum against the law's continuous part: KS distance, allowed 0.05 (the O(1/√N)
    # fluctuation of the active fraction in each of the L layers shifts the bulk: 3·0.5/√N ≈ 0.05)
    nonzero = np.sort(np.concatenate([e[e >= 1e-10 * e.max()] for e in eigs]))
    cdf = (law.cdf(nonzero) - 0.5) / 0.5
    ecdf = np.arange(1, nonzero.size + 1) / nonzero.size
    assert np.max(np.abs(cdf - ecdf)) < 0.05


def test_sampling_matches_quantiles_and_moments() -> None:
    law = jacobian_spectrum(4, "relu")
    q = np.linspace(0.51, 0.999, 25)
    approx = law._sample_uniform(q)
    assert np.max(np.abs(approx - law.ppf(q))) <= 1e-7 * law.support[1]
    s = law.sample(20000, rng=1)
    assert np.mean(s == 0.0) == pytest.approx(0.5, abs=5 * 0.5 / math.sqrt(20000))
    assert np.mean(s) == pytest.approx(1.0, abs=5 * math.sqrt(law.var() / 20000))
    assert np.array_equal(s, law.sample(20000, rng=1))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(depth=0), "depth"),
        (dict(depth=2, activation="swish"), "swish"),
        (dict(depth=2, sigma_w2=-1.0), "sigma_w2"),
        (dict(depth=2, sigma_b2=float("nan")), "sigma_b2"),
        (dict(depth=2, widths=[10, 20]), "widths"),
        (dict(depth=2, weights="cauchy"), "cauchy"),
        (dict(depth=2, init="glorot"), "glorot"),
        (dict(depth=2, init="kaiming_normal", sigma_w2=2.0), "sigma_w2"),
    ],
)
def test_bad_input_raises_value_error_naming_it(kwargs: dict, match: str) -> None:
    kwargs.setdefault("activation", "relu")
    with pytest.raises(ValueError, match=match):
        jacobian_spectrum(**kwargs)


@pytest.mark.parametrize("weights", ["gaussian", "orthogonal"])
@pytest.mark.parametrize("activation", ["linear", "relu"])
def test_torch_engine_moments_match_the_law(activation: str, weights: str) -> None:
    """The Monte Carlo engine (real torch.nn networks) against the exact moments: tolerance 5 standard
    errors across trials plus the finite-width bias allowance 2·L²/N relative (docs/derivations.md §3.3)."""
    torch = pytest.importorskip("torch")
    from rmt_init.montecarlo import network_jacobian_spectrum

    depth, width, trials = 3, 256, 8
    sigma_w2 = 2.0 if activation == "relu" else 1.0
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = network_jacobian_spectrum(
            depth, width, activation, "gaussian", weights=weights, sigma_w2=sigma_w2, trials=trials, seed=11
        )
    finally:
        torch.set_num_threads(old)
    law = jacobian_spectrum(depth, activation, weights=weights, sigma_w2=sigma_w2)
    eigs = result.squared_singular_values
    for k in (1, 2):
        per_trial = np.mean(eigs**k, axis=1)
        stderr = per_trial.std(ddof=1) / math.sqrt(trials)
        allowed = 5 * stderr + 2 * depth**2 / width * law.moment(k) + 1e-9 * law.moment(k)
        assert abs(per_trial.mean() - law.moment(k)) <= allowed, (k, per_trial.mean(), law.moment(k), stderr)
