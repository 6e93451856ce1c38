"""Fixed, vectorised quadrature rules for Gaussian (and spherical) expectations of piecewise-smooth functions.

Private helper of :mod:`rmt_init.theory.activations` and :mod:`rmt_init.theory.batchnorm`.

Why not plain Gauss–Hermite: it converges only algebraically for functions with a kink (ReLU, hard-tanh,
SELU) and slowly for smooth functions whose scale is much finer than the Gaussian's (``tanh(√q z)`` with
large ``q``). Instead every rule here is *composite Gauss–Legendre*: the integration range is cut into
panels whose end points include every kink of the integrand, so each panel sees an analytic function, and
whose widths are at most two units of *both* natural scales (the Gaussian's, in ``z``, and the activation's,
in ``x = μ + σ z``). Twenty Legendre nodes per panel then integrate to about machine precision.

The Gaussian rule truncates at ``|z| ≤ 12`` (neglected mass ``2Φ(−12) ≈ 3.6e−33``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = ["gaussian_rule", "gaussian_rule_1d", "sine_power_rule", "weighted_sum"]

_N_NODES = 20
_GL_T, _GL_W = np.polynomial.legendre.leggauss(_N_NODES)
_Z_MAX = 12.0
_X_CORE_HALF_WIDTH = 32.0  # |x| range where the supported activations still vary
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def weighted_sum(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``Σ_j values[..., j] · weights[j]`` (a quadrature rule applied along the last axis), without BLAS.

    For complex ``values`` and real ``weights``, ``values @ weights`` goes to a threaded BLAS ``zgemv``; with
    SciPy's own OpenBLAS loaded next to NumPy's (``scipy.linalg``, ``scipy.optimize``, mpmath), the two
    thread pools contend and each such call took ~8 ms instead of ~5 µs on a 2-core machine — 95 % of the
    time of a smooth-activation Jacobian density. ``np.einsum`` (without ``optimize``) runs its own loop.
    """
    return np.einsum("...j,j->...", values, weights)


def _panels_to_nodes(bp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes and (unweighted) weights on the panels between sorted break points.

    ``bp`` has shape ``(R, P+1)`` (sorted along axis 1); returns arrays of shape ``(R, P*n)``.
    Zero-width panels contribute zero weight.
    """
    a = bp[:, :-1, None]
    b = bp[:, 1:, None]
    half = 0.5 * (b - a)
    nodes = 0.5 * (a + b) + half * _GL_T
    weights = half * _GL_W
    r = bp.shape[0]
    return nodes.reshape(r, -1), weights.reshape(r, -1)


def grading_points(centres: np.ndarray, width: np.ndarray | float, limit: float = 4.0) -> np.ndarray:
    """Geometrically graded break points ``c ± width·2^j`` (j ≥ 0, up to ``limit``) around each centre.

    Used to resolve a boundary layer of the given width around a point (hp-refinement); returns an array of
    shape ``(R, k)``.
    """
    centres = np.atleast_2d(np.asarray(centres, dtype=float))
    width = np.broadcast_to(np.asarray(width, dtype=float), (centres.shape[0],))
    w = np.maximum(width, 1e-300)
    n_levels = int(min(80, max(0, math.ceil(math.log2(limit / max(float(w.min()), 1e-300))) + 1)))
    if n_levels == 0:
        return np.empty((centres.shape[0], 0))
    scales = w[:, None] * (2.0 ** np.arange(n_levels))[None, :]
    scales = np.minimum(scales, limit)
    pts = [centres[:, [i]] + s * scales for i in range(centres.shape[1]) for s in (-1.0, 1.0)]
    return np.concatenate(pts, axis=1)


def gaussian_rule(
    mu: np.ndarray | float,
    sigma: float,
    kinks: Sequence[float] = (),
    extra_z: np.ndarray | None = None,
    step: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``x`` and weights ``w`` with ``Σ w f(x) ≈ E_z[f(μ + σ z)]``, ``z ~ N(0, 1)``, row by row.

    ``mu`` is a scalar or 1-D array (one rule per entry, rows of the output); ``sigma > 0`` is common to
    all rows. Break points: a grid of the given ``step`` (default 2) in ``z`` on ``[−12, 12]``; if
    ``σ > 1`` also a grid of that step in ``x`` on ``[−32, 32]`` (the region where the supported activations
    vary); the kinks ``(k − μ)/σ``; and the optional per-row ``extra_z`` (shape ``(R, m)``). All are clipped
    to ``[−12, 12]``.
    """
    mu = np.atleast_1d(np.asarray(mu, dtype=float))
    r = mu.shape[0]
    z_grid = np.arange(-_Z_MAX, _Z_MAX + 1e-9, step)
    parts = [np.broadcast_to(z_grid, (r, z_grid.size))]
    if sigma > 1.0:
        x_core = np.arange(-_X_CORE_HALF_WIDTH, _X_CORE_HALF_WIDTH + 1e-9, step)
        parts.append((x_core[None, :] - mu[:, None]) / sigma)
    if len(kinks):
        k = np.asarray(kinks, dtype=float)
        parts.append((k[None, :] - mu[:, None]) / sigma)
    if extra_z is not None and extra_z.size:
        parts.append(np.asarray(extra_z, dtype=float).reshape(r, -1))
    bp = np.clip(np.concatenate(parts, axis=1), -_Z_MAX, _Z_MAX)
    bp.sort(axis=1)
    z, w = _panels_to_nodes(bp)
    w = w * (_INV_SQRT_2PI * np.exp(-0.5 * z * z))
    return mu[:, None] + sigma * z, w


def gaussian_rule_1d(
    q: float, kinks: Sequence[float] = (), step: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """One rule for ``E_z[f(√q z)]`` as flat arrays ``(x, w)``; kinks given in ``x``."""
    x, w = gaussian_rule(0.0, math.sqrt(q), kinks, step=step)
    keep = w[0] > 0.0
    return x[0][keep], w[0][keep]


def sine_power_rule(
    power: int,
    theta_breaks: np.ndarray | None = None,
    n_rows: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``θ`` and normalised weights for ``E[f(θ)]`` under the density ``∝ sin^power θ`` on ``[0, π]``.

    ``power ≥ 0`` is an integer, so ``sin^power θ`` is analytic and the only non-smoothness comes from ``f``,
    whose kinks are passed per row in ``theta_breaks`` (shape ``(n_rows, m)``, values outside ``[0, π]`` are
    clipped). Panels have width ≤ ``min(0.5, 2/√power)`` and cover ``|θ − π/2| ≤ 12/√power`` (outside it
    ``sin^power θ ≤ e^{−72}``). Weights are normalised to sum to one in every row.
    """
    half_range = math.pi / 2 if power < 60 else min(math.pi / 2, 12.0 / math.sqrt(power))
    step = min(0.5, 2.0 / math.sqrt(max(power, 1)))
    n_panels = max(2, math.ceil(2 * half_range / step))
    grid = np.linspace(math.pi / 2 - half_range, math.pi / 2 + half_range, n_panels + 1)
    parts = [np.broadcast_to(grid, (n_rows, grid.size))]
    if theta_breaks is not None and theta_breaks.size:
        parts.append(np.asarray(theta_breaks, dtype=float).reshape(n_rows, -1))
    bp = np.clip(np.concatenate(parts, axis=1), grid[0], grid[-1])
    bp.sort(axis=1)
    theta, w = _panels_to_nodes(bp)
    if power:
        w = w * np.sin(theta) ** power
    w = w / w.sum(axis=1, keepdims=True)
    return theta, w
