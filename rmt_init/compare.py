"""How far Monte Carlo is from theory: the one place where the two halves of the package meet.

:func:`compare` takes a spectral law (``rmt_init.theory``) and Monte Carlo samples — a result of
``rmt_init.montecarlo`` (anything with a ``squared_singular_values`` array, one row per trial) or a plain
array — and returns a :class:`Comparison` with

* ``ks``: the Kolmogorov–Smirnov distance sup_x |F_n(x) − F(x)|, atoms included (both one-sided limits
  of F are used at every probe, so a correct atom costs nothing);
* ``wasserstein1``: W₁ = ∫₀¹ |Q_n(u) − Q(u)| du (Q the quantile functions), on a midpoint grid in u;
* ``moment_errors``: relative errors (m̂_k − m_k)/m_k of the first raw moments, with their standard
  errors estimated across trials (eigenvalues of one matrix are strongly correlated, so the trial is the
  independent unit; with one trial, the naive i.i.d. error is given and flagged);
* ``edge_error``: (mean over trials of the largest sample − upper edge)/upper edge;
* ``atom_errors``: for each atom (location, mass), the sample fraction snapped to it minus its mass.

Samples within ``atom_tol``·(largest sample) of an atom's location count as that atom: a zero singular
value of a floating-point matrix is ~1e−16·σ_max, not 0. KS and W₁ are evaluated at ``probes`` order
statistics; since both distribution functions are monotone, the KS value is within 1/probes of the
exact supremum. Laws with a tabulated distribution function (free products) use it there (~1e−8).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validate import check_choice, check_int, check_real
from .theory.laws import Law, SpectralLaw

__all__ = ["Comparison", "compare", "samples_of"]

_KINDS = ("squared", "singular")


@dataclass(frozen=True)
class Comparison:
    """Distances between a law and Monte Carlo samples (see the module docstring for definitions)."""

    ks: float
    wasserstein1: float
    moment_errors: dict[int, float]
    moment_stderrs: dict[int, float]
    edge_error: float
    atom_errors: dict[float, float]
    n_samples: int
    n_trials: int
    kind: str = "squared"
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        """One line: KS, W₁, the first two moment errors (± their standard errors), the edge and atoms."""
        moments = ", ".join(
            f"m{k} {100 * e:+.2f}%±{100 * self.moment_stderrs[k]:.2f}" for k, e in list(self.moment_errors.items())[:2]
        )
        atoms = "".join(f", atom@{loc:g} {e:+.4f}" for loc, e in self.atom_errors.items())
        return (
            f"KS {self.ks:.4f}, W1 {self.wasserstein1:.3g}, {moments}, edge {100 * self.edge_error:+.2f}%{atoms} "
            f"({self.n_samples} samples, {self.n_trials} trials)"
        )

    def __str__(self) -> str:
        return self.summary()


def samples_of(result_or_samples: Any) -> np.ndarray:
    """Samples as a 2-d float64 array (trials × values) from a Monte Carlo result or an array."""
    values = getattr(result_or_samples, "squared_singular_values", result_or_samples)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"samples must be a Monte Carlo result or an array of numbers; got {type(values).__name__}") from err
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.size == 0:
        raise ValueError(f"samples must be a non-empty 1-d array or a (trials, k) array; got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("samples contain NaN or inf")
    if np.any(arr < 0):
        raise ValueError(f"squared singular values must be >= 0; got {float(arr.min())!r}")
    return arr


def compare(
    law: Law,
    result_or_samples: Any,
    kind: str = "squared",
    moments: int = 4,
    probes: int = 2000,
    atom_tol: float = 1e-9,
) -> Comparison:
    """Compare a spectral law with Monte Carlo samples of the same object.

    Args:
        law: the theory (e.g. ``rmt_init.jacobian_spectrum(...)``), a law of squared singular values.
        result_or_samples: a ``rmt_init.montecarlo`` result or an array of squared singular values
            (1-d, or one row per trial).
        kind: ``"squared"`` (eigenvalues of J Jᵀ) or ``"singular"`` (σ = √λ, against the law's
            ``singular_value_law()``).
        moments: how many raw moments to compare (their relative errors).
        probes: order statistics at which KS and W₁ are evaluated (KS exact to within 1/probes).
        atom_tol: samples within ``atom_tol × max(sample)`` of an atom's location count as the atom.

    Returns a :class:`Comparison`; ``str(comparison)`` is a one-line summary.
    """
    kind = check_choice("kind", kind, _KINDS)
    moments = check_int("moments", moments, minimum=1)
    probes = check_int("probes", probes, minimum=2)
    atom_tol = check_real("atom_tol", atom_tol, low=0.0)
    data = samples_of(result_or_samples)
    trials, _ = data.shape
    # snap samples to atoms (on the squared scale, where the tolerance is stated)
    scale = float(data.max()) if data.max() > 0 else 1.0
    snapped = data.copy()
    atom_errors: dict[float, float] = {}
    for loc, mass in law.atoms:
        near = np.abs(data - loc) <= atom_tol * max(scale, abs(loc))
        snapped[near] = loc
        atom_errors[float(loc) if kind == "squared" else math.sqrt(loc)] = float(near.mean() - mass)
    target: Law = law
    if kind == "singular":
        if not isinstance(law, SpectralLaw):
            raise ValueError("kind='singular' needs a law of squared singular values (a SpectralLaw)")
        target = law.singular_value_law()
        snapped = np.sqrt(snapped)
    flat = np.sort(snapped.ravel())
    n = flat.size
    # KS at probe order statistics, with both one-sided limits of both functions
    idx = np.unique(np.linspace(0, n - 1, min(probes, n)).round().astype(int))
    x = flat[idx]
    right = np.searchsorted(flat, x, side="right") / n  # F_n(x)
    left = np.searchsorted(flat, x, side="left") / n  # F_n(x−)
    # F is evaluated on the squared scale (F_σ(s) = F_λ(s²); KS is invariant under the map)
    x_squared = x * x if kind == "singular" else x
    law_right = np.asarray(getattr(law, "_table_cdf", law.cdf)(x_squared), float)
    atom_at = np.zeros(x.shape)
    for loc, mass in law.atoms:
        atom_at[x_squared == loc] += mass
    law_left = law_right - atom_at
    ks = float(max(np.max(np.abs(right - law_right)), np.max(np.abs(left - law_left))))
    # W1 through quantiles on a midpoint grid in u
    u = (np.arange(min(probes, n)) + 0.5) / min(probes, n)
    empirical_q = flat[np.minimum((u * n).astype(int), n - 1)]
    law_q = np.asarray(law._sample_uniform(u), float)  # the law's (fast) quantile function
    if kind == "singular":
        law_q = np.sqrt(law_q)
    wasserstein1 = float(np.mean(np.abs(empirical_q - law_q)))
    # moments: per trial, then mean and standard error across trials
    notes: list[str] = []
    moment_errors: dict[int, float] = {}
    moment_stderrs: dict[int, float] = {}
    for k in range(1, moments + 1):
        exact = float(target.moment(k))
        per = np.mean(snapped**k, axis=1)
        if trials > 1:
            stderr = float(per.std(ddof=1) / math.sqrt(trials))
        else:
            stderr = float(np.std(snapped**k) / math.sqrt(snapped.size))
        moment_errors[k] = float((per.mean() - exact) / exact) if exact != 0 else float(per.mean())
        moment_stderrs[k] = stderr / abs(exact) if exact != 0 else stderr
    if trials == 1:
        notes.append("one trial: moment standard errors assume independent samples (optimistic for eigenvalues)")
    edge = float(target.upper_edge)
    edge_error = float((np.mean(snapped.max(axis=1)) - edge) / edge) if edge > 0 else float(np.mean(snapped.max(axis=1)))
    return Comparison(
        ks=ks,
        wasserstein1=wasserstein1,
        moment_errors=moment_errors,
        moment_stderrs=moment_stderrs,
        edge_error=edge_error,
        atom_errors=atom_errors,
        n_samples=n,
        n_trials=trials,
        kind=kind,
        notes=tuple(notes),
    )
