"""The largest squared singular value of one width-N batch Jacobian with batch norm: its extreme-value law from the
batch law's tail and the extremal index θ (the reciprocal mean size of a cluster of tail eigenvalues), docs/derivations.md
§11.8. Used by :meth:`rmt_init.theory.bn_spectrum.BNBatchJacobianLaw.largest_eigenvalue`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .bn_moments import _sphere_samples


# ============================================================================================ the largest eigenvalue
_CLUSTER_DIRECTIONS = 20_000  # sphere directions for the extremal index of a nonlinear channel (seeded)


@dataclass(frozen=True)
class LargestEigenvalueLaw:
    """Extreme-value law of the largest squared singular value λ_max of one width-N batch Jacobian
    (docs/derivations.md §11.8).

    ``P(λ_max ≤ x) = exp(−θ · B·N · sf(x))``, sf the N → ∞ law's survival function: the large eigenvalues come in
    independent clusters, one per channel whose batch variance s² is small (B − 2 equal ones for linear φ: the
    channel's rank-(B − 2) projection scaled by 1/s²), so the clusters above x are Poisson with mean θ·B·N·sf(x),
    θ the extremal index (1/(mean cluster size) in the tail). ``ppf(q) = sf⁻¹(−ln q/(θ B N))``.
    """

    law: Any
    width: int
    extremal_index: float

    @property
    def count(self) -> int:
        """B·N, the dimension of the batch Jacobian."""
        return self.law.batch * self.width

    @property
    def clusters(self) -> float:
        """θ·B·N: the effective number of independent trials."""
        return self.extremal_index * self.count

    def cdf(self, x: Any) -> np.ndarray | float:
        x = np.asarray(x, float)
        out = np.where(x > 0, np.exp(-self.clusters * np.asarray(self.law.sf(np.where(x > 0, x, 1.0)), float)), 0.0)
        return float(out) if out.ndim == 0 else out

    def ppf(self, q: Any) -> np.ndarray | float:
        q = np.asarray(q, float)
        if np.any((q <= 0) | (q >= 1)) or np.any(np.isnan(q)):
            raise ValueError(f"q must lie in (0, 1), got {q!r}")
        out = np.asarray(self.law.isf(-np.log(q) / self.clusters), float)
        return float(out) if out.ndim == 0 else out

    def median(self) -> float:
        return float(self.ppf(0.5))


def _cluster_index(act: Any, batch: int, output: bool, directions: int, seed: int) -> tuple[float, float]:
    """(E[max_i λ_iᵃ], E[Σ_i λ_iᵃ]) / (E λ)ᵃ over one channel's B − 1 eigenvalues λ_i of C on 1⊥ (``a = (B − 1)/2``,
    E λ the mean per eigenvalue), from ``directions`` uniform sphere directions: a channel's cluster in the tail
    is its 1/s² times λ_i times gains common to the cluster (docs/derivations.md §11.8)."""
    rng = np.random.default_rng(seed)
    b = float(batch)
    a = (b - 1.0) / 2.0
    n = _sphere_samples(batch, directions, rng)
    d = act.dphi(n)
    c = d[:, :, None] * (np.eye(batch)[None] - 1.0 / b - n[:, :, None] * n[:, None, :] / b) * d[:, None, :]
    if not output:
        c = c - c.mean(axis=1, keepdims=True)
        c = c - c.mean(axis=2, keepdims=True)
    ev = np.clip(np.linalg.eigvalsh(c)[:, 1:], 0.0, None)  # B − 1 eigenvalues (see _sphere_eigenvalues)
    scale = float(ev.mean())
    r = (ev / scale) ** a
    return float(r.max(axis=1).mean()), float(r.sum(axis=1).mean())


def _extremal_index(law: Any) -> float:
    """θ = Σ_l E[max λᵃ]/(Eλ_l)ᵃ / Σ_l E[Σ λᵃ]/(Eλ_l)ᵃ over the layers (one output layer, L − 1 inner ones);
    1/(B − 2) for linear φ (λ ∈ {0, 1, …, 1})."""
    spec = law.__dict__.get("_cluster_spec")
    if spec is None:
        return 1.0 / (law.batch - 2)
    act, depth = spec
    top_out, sum_out = _cluster_index(act, law.batch, True, _CLUSTER_DIRECTIONS, 7)
    top, total = top_out, sum_out
    if depth > 1:
        top_in, sum_in = _cluster_index(act, law.batch, False, _CLUSTER_DIRECTIONS, 8)
        top += (depth - 1) * top_in
        total += (depth - 1) * sum_in
    return top / total
