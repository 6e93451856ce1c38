"""m₁, m₂, m₃ of a batch-normalised network's batch Jacobian for any φ, by the M_B-valued recursion of
docs/derivations.md §11.5 (channel averages over the uniform sphere of normalised batch vectors, sampled, with their
standard errors). The law itself is :func:`rmt_init.theory.bn_spectrum.bn_jacobian_spectrum`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validate import check_int, check_real


# ============================================================================================ nonlinear φ: m1, m2, m3
@dataclass(frozen=True)
class BNJacobianMoments:
    """m₁, m₂, m₃ of the batch Jacobian's squared singular values (all B·N dimensions), docs/derivations.md §11.5.

    ``m1`` is exact (sphere quadrature of :mod:`~rmt_init.theory.batchnorm`); ``m2``, ``m3`` use fourth- and
    sixth-order sphere expectations estimated by Monte Carlo over the normalised batch vector, with standard
    errors ``m2_stderr``, ``m3_stderr`` (0 for linear φ, where they are exact). ``m3`` is ``inf`` for B ≤ 7 and
    ``m2`` for B ≤ 5 (``E[1/s⁶]``, ``E[1/s⁴]`` diverge). ``growth`` is the per-layer factor of m₁.
    """

    depth: int
    activation: str
    batch_size: int
    m1: float
    m2: float
    m3: float
    m2_stderr: float
    m3_stderr: float
    growth: float


def _sphere_samples(batch: int, count: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((count, batch))
    g -= g.mean(axis=1, keepdims=True)
    return g * (math.sqrt(batch) / np.linalg.norm(g, axis=1, keepdims=True))


def _sphere_traces(act: Any, batch: int, samples: int, rng: np.random.Generator, groups: int) -> np.ndarray:
    """Group means of (tr M̃², tr M̃³, s₁, s₂, s₃, s₁s₂, s₁², s₁³), ``M̃ = D M D``, ``s_k = 1ᵀM̃ᵏ1``, over uniform
    normalised batch vectors n (``M = I − 11ᵀ/B − nnᵀ/B``, ``D = diag φ'(n)``); shape (groups, 8)."""
    out = np.zeros((groups, 8))
    per_group = max(1, samples // groups)
    chunk = max(1, min(per_group, 1_000_000 // (batch * batch)))
    b = float(batch)
    for k in range(groups):
        done = 0
        while done < per_group:
            m = min(chunk, per_group - done)
            n = _sphere_samples(batch, m, rng)
            d = act.dphi(n)
            mt = d[:, :, None] * (np.eye(batch)[None] - 1.0 / b - n[:, :, None] * n[:, None, :] / b) * d[:, None, :]
            v1 = mt.sum(axis=2)  # M̃1
            v2 = np.einsum("sij,sj->si", mt, v1)  # M̃²1
            s1, s2, s3 = v1.sum(axis=1), np.sum(v1 * v1, axis=1), np.sum(v1 * v2, axis=1)
            sq = np.einsum("sij,sjk->sik", mt, mt)
            tr2 = np.einsum("sii->s", sq)
            tr3 = np.einsum("sij,sji->s", sq, mt)
            out[k] += np.array([x.sum() for x in (tr2, tr3, s1, s2, s3, s1 * s2, s1 * s1, s1**3)])
            done += m
        out[k] /= per_group
    return out


def _recursion(depth: int, batch: int, q0: float, alpha: float, e_dmd: np.ndarray, t_star: np.ndarray,
               traces: np.ndarray) -> tuple[float, float, float]:
    """m₁, m₂, m₃ from the M_B-valued recursion in span{I, 11ᵀ} (docs/derivations.md §11.5)."""
    b = float(batch)
    tr2, tr3, s1, s2, s3, s12, s11, s111 = traces

    def coef(tr: float, total: float) -> np.ndarray:  # aI + c11ᵀ from its trace and its sum of entries
        c = (total - tr) / (b * b - b)
        return np.array([tr / b - c, c])

    p_c = np.array([1.0, -1.0 / b])
    v = np.stack([coef(tr2, s2), coef(s2, s11)], axis=1)  # V(E_i) as columns
    w3 = np.zeros((2, 2, 2))  # W3(E_i, E_j) = E[M̃ E_i M̃ E_j M̃]
    w3[:, 0, 0] = coef(tr3, s3)
    w3[:, 0, 1] = coef(s3, s12)
    w3[:, 1, 0] = coef(s3, s12)
    w3[:, 1, 1] = coef(s12, s111)
    y = np.zeros((2, 2, 2))  # Y(E_i, E_j) = E[M D E_i M̃ E_j D M] ∝ P_c
    for (i, j), tr in {(0, 0): tr2, (0, 1): s2, (1, 0): s2, (1, 1): s11}.items():
        y[:, i, j] = tr / (b - 1.0) * p_c

    def mul(x: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.array([x[0] * z[0], x[0] * z[1] + x[1] * z[0] + b * x[1] * z[1]])

    def mul3(x: np.ndarray, z: np.ndarray, u: np.ndarray) -> np.ndarray:
        return mul(mul(x, z), u)

    basis = (np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    q = basis[0].copy()
    f = np.eye(2)  # F(E_j) as columns
    g = np.zeros((2, 2, 2))
    for i in range(2):
        for j in range(2):
            g[:, i, j] = mul(basis[i], basis[j])
    for layer in range(depth):
        kappa = b / q0 if layer == 0 else b / alpha
        e1 = kappa / (b - 3.0)
        e2 = kappa**2 / ((b - 3.0) * (b - 5.0)) if b > 5 else math.inf
        e3 = kappa**3 / ((b - 3.0) * (b - 5.0) * (b - 7.0)) if b > 7 else math.inf

        def T(x: np.ndarray) -> np.ndarray:  # noqa: N802 — E[A X Aᵀ] = E[c²] X_I E[DMD]
            return e1 * x[0] * e_dmd

        def Ts(x: np.ndarray) -> np.ndarray:  # noqa: N802 — E[Aᵀ X A] = E[c²] t(X) P_c
            return e1 * float(t_star @ x) * p_c

        ybar = q  # E_B[R] = E_B[Q_{l−1}] (σ_w² = 1: it cancels)
        F = lambda x, f=f: f @ x  # noqa: E731
        G = lambda x, z, g=g: np.einsum("kij,i,j->k", g, x, z)  # noqa: E731
        r2 = lambda x: F(x) + mul3(ybar, x, ybar)  # noqa: E731  E_B[R x R]
        r3 = lambda x, z: mul3(ybar, x, mul(ybar, mul(z, ybar))) + G(x, z) + mul(F(x), mul(z, ybar)) \
            + mul(ybar, mul(x, F(z))) + F(mul3(x, ybar, z))  # noqa: E731  E_B[R x R z R]
        new_f = np.zeros((2, 2))
        new_g = np.zeros((2, 2, 2))
        for i in range(2):
            bi = basis[i]
            xb = Ts(bi)
            new_f[:, i] = T(r2(xb)) + (e2 * ybar[0] ** 2 * v[:, i] if e2 < math.inf else 0.0) - T(mul3(ybar, xb, ybar))
            for j in range(2):
                cj = basis[j]
                xc = Ts(cj)
                z2, z3 = r2(xb), r2(xc)
                term = T(r3(xb, xc))
                if e3 < math.inf:
                    term = term + e2 * ybar[0] * z3[0] * v[:, i] - T(mul3(ybar, xb, z3))
                    term = term + e2 * z2[0] * ybar[0] * v[:, j] - T(mul3(z2, xc, ybar))
                    term = term + e3 * ybar[0] ** 3 * w3[:, i, j] - e2 * ybar[0] * mul3(ybar, xc, ybar)[0] * v[:, i] \
                        - e2 * mul3(ybar, xb, ybar)[0] * ybar[0] * v[:, j] + T(mul(mul3(ybar, xb, ybar), mul(xc, ybar)))
                    dd = e2 * ybar[0] * y[:, i, j] - mul3(xb, ybar, xc)
                    term = term + T(r2(dd) - mul3(ybar, dd, ybar))
                new_g[:, i, j] = term
        q = T(q)
        f, g = new_f, new_g
    m1 = float(q.sum())
    m2 = float(f[:, 0].sum()) if batch > 5 else math.inf
    m3 = float(g[:, 0, 0].sum()) if batch > 7 else math.inf
    return m1, m2, m3


def bn_jacobian_moments(
    depth: int,
    activation: str = "relu",
    batch_size: int = 16,
    input_variance: float = 1.0,
    samples: int = 200_000,
    seed: int = 0,
) -> BNJacobianMoments:
    """m₁, m₂, m₃ of the squared singular values of a BN network's batch Jacobian, any activation.

    Same networks and normalisation as :func:`bn_jacobian_spectrum`. Operator-valued recursion over M_B
    (docs/derivations.md §11.5): with ``Q_l = K_l K_lᵀ`` (K_l the Jacobian of the first l blocks),
    ``R = (W ⊗ I) Q_{l−1} (W ⊗ I)ᵀ`` and ``Q_l = A R Aᵀ``, ``A = (1/s) D M`` block diagonal with i.i.d. blocks,
    free over M_B from R; the M_B-valued moments ``E_B[Q]``, ``E_B[Q b Q]``, ``E_B[Q b Q c Q]`` follow layer by
    layer from the Wick pairings of the Gaussian W (Catalan many) and the free moment formulas with
    amalgamation, and stay in span{I, 11ᵀ} (S_B symmetry). The single-block expectations need sphere moments
    of ``M̃ = D M D``: the two-coordinate ones exactly (as ``bn_gradient_growth``: m₁ is exact), the fourth- and
    sixth-order ones (``tr M̃²``, ``tr M̃³``, ``1ᵀM̃ᵏ1``) from ``samples`` uniform normalised batch vectors
    (standard errors from 20 batch means). For linear φ they are exact (``M̃ = M``, a projection with M1 = 0)
    and the result equals :func:`bn_jacobian_spectrum`'s moments.

    Finite-width corrections are large for m₂, m₃ (heavy 1/s² tails; docs/derivations.md §11.6): B = 16, depth 4,
    tanh, networks with independent blocks: m₂ +12 %, m₃ +36 % at N = 64, −1.8 ± 3.4 %, +1.2 ± 5.4 % at N = 128.
    """
    from .activations import get_activation
    from .batchnorm import _check_batch, _sphere_moments, bn_gradient_growth

    depth = check_int("depth", depth, minimum=1)
    act = get_activation(activation)
    batch = _check_batch(batch_size)
    q0 = check_real("input_variance", input_variance, low=0.0, low_inclusive=False)
    samples = check_int("samples", samples, minimum=1000)
    seed = check_int("seed", seed, minimum=0)
    b = float(batch)
    mom = _sphere_moments(act, batch)
    alpha = mom["phi2"] - mom["phi_phi"]
    e_b = -(mom["d_d"] + mom["dn_dn"]) / b  # E[DMD] = e_a I + e_b 11ᵀ
    e_a = mom["d2"] * (1.0 - 1.0 / b) - mom["d2n2"] / b - e_b
    e_dmd = np.array([e_a, e_b])
    t_i = b * (mom["d2"] * (1.0 - 1.0 / b) - mom["d2n2"] / b) / (b - 1.0)  # E[M D E D M] = t(E) P_c
    t_j = (b * mom["d2"] - mom["d2"] - (b - 1.0) * mom["d_d"] - mom["d2n2"] - (b - 1.0) * mom["dn_dn"]) / (b - 1.0)
    t_star = np.array([t_i, t_j])
    if act.name == "linear":
        traces = np.array([[b - 2.0, b - 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    else:
        traces = _sphere_traces(act, batch, samples, np.random.default_rng(seed), 20)
    m1, m2, m3 = _recursion(depth, batch, q0, alpha, e_dmd, t_star, traces.mean(axis=0))
    if len(traces) > 1:
        groups = np.array([_recursion(depth, batch, q0, alpha, e_dmd, t_star, t)[1:] for t in traces])
        with np.errstate(invalid="ignore"):
            se = groups.std(axis=0, ddof=1) / math.sqrt(len(groups))
        se2, se3 = (float(x) if math.isfinite(x) else math.inf for x in se)
    else:
        se2 = se3 = 0.0
    return BNJacobianMoments(depth, act.name, batch, m1, m2, m3, se2, se3, bn_gradient_growth(act, batch))
