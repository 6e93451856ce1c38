"""The Jacobi matrix of a discrete measure (rmt_init.theory._smooth_law): the Stieltjes recurrence with its
orthogonality check against the reorthogonalised Lanczos and against closed forms."""
from __future__ import annotations

import numpy as np
import pytest

import rmt_init.theory._smooth_law as smooth_law
from rmt_init.theory.jacobian import jacobian_spectrum


def test_legendre_recurrence_coefficients() -> None:
    """Gauss–Legendre nodes/weights (M = 400) integrate polynomials of degree ≤ 799 exactly, so the first n ≤ 128
    recurrence coefficients of the discrete measure are Legendre's: α_k = 0, β_k = k/√(4k² − 1), mass 2."""
    t, w = np.polynomial.legendre.leggauss(400)
    mass, alpha, beta = smooth_law._stieltjes(t, w, 128)
    k = np.arange(1, 128)
    assert mass == pytest.approx(2.0, rel=1e-14)
    assert np.max(np.abs(alpha)) < 1e-14
    np.testing.assert_allclose(beta, k / np.sqrt(4.0 * k * k - 1.0), rtol=0, atol=5e-14)  # the weights sum to 2 within ~1e-14


@pytest.mark.parametrize(
    "t, w",
    [
        (np.geomspace(1e-8, 1.0, 2000), np.ones(2000)),  # atoms isolated at the top end
        (np.concatenate([np.linspace(0.0, 1.0, 3000), [1.5, 2.0, 3.0]]), np.concatenate([np.full(3000, 1e-4), [0.3] * 3])),
        (np.linspace(0.0, 1.0, 200), np.ones(200)),  # n not much below M
    ],
)
def test_lost_orthogonality_falls_back_to_the_reorthogonalised_lanczos(t: np.ndarray, w: np.ndarray) -> None:
    """Where Ritz values converge to atoms the plain recurrence makes ghost copies of them (α off by O(1) here);
    the Gram check catches it and the reorthogonalised Lanczos is used."""
    n = 128
    plain = smooth_law._lanczos_reorthogonalised(t, w, n)
    assert smooth_law._stieltjes(t, w, n) is None
    mass, alpha, beta = smooth_law._lanczos(t, w, n)
    np.testing.assert_array_equal(alpha, plain[1])
    np.testing.assert_array_equal(beta, plain[2])


def test_repeated_atoms_truncate_like_the_lanczos() -> None:
    """Five distinct atoms: the Jacobi matrix has five rows whichever way it is computed."""
    t, w = np.repeat(np.linspace(0.0, 1.0, 5), 4), np.ones(20)
    _, alpha, beta = smooth_law._lanczos(t, w, 20)
    assert alpha.size == 5 and beta.size == 4


@pytest.mark.parametrize("activation, kwargs", [("tanh", {}), ("sigmoid", {}), ("selu", {}), ("gelu", {"sigma_b2": 0.5})])
def test_rules_of_smooth_laws_equal_the_reorthogonalised_ones(monkeypatch: pytest.MonkeyPatch, activation: str, kwargs: dict) -> None:
    """Every discrete measure the smooth laws build (the rules of d, log d, a/d and the log-d panels of a
    two-block residual law and a depth-2 chain): the recurrence coefficients agree with the reorthogonalised
    Lanczos to 1e−13 of max(range, max |t|) (rounding: both ~1e−15–5e−14), the Gauss rules' nodes to the same
    and their weights to 1e−12 of the mass (eigenvector rounding, ~1e−13 measured)."""
    captured = []
    original = smooth_law._lanczos

    def capture(t, w, n):
        captured.append((t.copy(), w.copy(), n))
        return original(t, w, n)

    monkeypatch.setattr(smooth_law, "_lanczos", capture)
    jacobian_spectrum(2, activation, residual=0.3, **kwargs)
    jacobian_spectrum(2, activation, **kwargs).pdf(np.array([0.5]))
    assert captured
    checked = 0
    for t, w, n in captured:
        fast = smooth_law._stieltjes(t, w, n)
        if fast is None:  # fewer distinct atoms than n (gelu's tiny panels): the reorthogonalised path, as before
            continue
        checked += 1
        reference = smooth_law._lanczos_reorthogonalised(t, w, n)
        # rounding is relative to |t| (the log-d panels sit at v ~ −190 with a width of 4)
        scale = float(max(np.ptp(t), np.abs(t).max()))
        assert fast[1].size == reference[1].size
        assert np.max(np.abs(fast[1] - reference[1])) <= 1e-13 * scale
        assert np.max(np.abs(fast[2] - reference[2])) <= 1e-13 * scale
        m = fast[1].size
        nodes, weights = smooth_law._gauss(*fast, m)
        ref_nodes, ref_weights = smooth_law._gauss(*reference, m)
        assert np.max(np.abs(nodes - ref_nodes)) <= 1e-13 * scale
        assert np.max(np.abs(weights - ref_weights)) <= 1e-12 * fast[0]  # eigenvector rounding: ~1e-13 measured
    assert checked >= len(captured) // 2
