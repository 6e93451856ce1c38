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

Heavy tails (e.g. ``bn_jacobian_spectrum``: support ``[0, ∞)``, moments of order ≥ (B − 1)/2 infinite): an
infinite law moment is not compared — its ``moment_errors``/``moment_stderrs`` entries are ``inf`` and a note
says so — and with an unbounded support ``edge_error`` is ``inf`` (no edge to compare with); never NaN.
* ``atom_errors``: for each atom (location, mass), the sample fraction at it minus the law's mass there.

Atoms. A law sample at an atom sits exactly at its location; a zero singular value of a floating-point
matrix is ~1e−16·σ_max instead. Which of the two a data set holds is decided from the law: a window of
half-width τ = ``atom_tol``·max(largest sample, |location|) holds the atom's mass m plus the law's
continuous mass c(τ) = F(loc + τ) − F((loc − τ)−) − m (known exactly). If the window holds more samples
off the atom's exact location than c(τ) allows (more than n·c + 5√(n·c) + 5), they are numerical atoms,
and the window is compared as one cell: samples and law alike are coarsened to it (the law's continuous
mass in the window moves with the samples; nothing is compared inside it). Otherwise nothing is snapped
and the samples are compared as they are. ``notes`` says which.

KS is the exact supremum over all order statistics (both one-sided limits of F_n and F at every distinct
sample value; between two of them both functions are monotone), or over ``probes`` evenly spaced order
statistics (then within 1/probes of it). The law's distribution function and quantiles are its
tabulated ones (``cdf(x, method="table")``, ``ppf(u, method="table")``; for free products accurate to
~2e−7 in probability, closed forms elsewhere).
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
            f"m{k} {_percent(e, self.moment_stderrs[k])}" for k, e in list(self.moment_errors.items())[:2]
        )
        atoms = "".join(f", atom@{loc:g} {e:+.4f}" for loc, e in self.atom_errors.items())
        edge = f"{100 * self.edge_error:+.2f}%" if math.isfinite(self.edge_error) else "none (unbounded support)"
        return (
            f"KS {self.ks:.4f}, W1 {self.wasserstein1:.3g}, {moments}, edge {edge}{atoms} "
            f"({self.n_samples} samples, {self.n_trials} trials)"
        )

    def __str__(self) -> str:
        return self.summary()


def _law_moment(law: Law, k: int) -> float:
    """The law's k-th raw moment, or ``inf`` where it is infinite (a power-law tail, e.g. a batch-normalised
    network's batch Jacobian: ``moment`` raises ``ValueError`` saying "infinite" / "not finite" there)."""
    try:
        value = float(law.moment(k))
    except ValueError as err:
        if "infinite" in str(err) or "not finite" in str(err):
            return math.inf
        raise
    return value if math.isfinite(value) else math.inf


def _percent(error: float, stderr: float) -> str:
    """``+1.23%±0.45`` for a finite relative error, ``inf (not compared)`` otherwise."""
    if not math.isfinite(error):
        return "inf (not compared)"
    return f"{100 * error:+.2f}%±{100 * stderr:.2f}"


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
    probes: int | None = None,
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
        probes: ``None`` (default): KS over all order statistics (exact); an int: at that many evenly
            spaced order statistics (KS within 1/probes), and W₁ on that many quantiles.
        atom_tol: half-width of the window around an atom, relative to max(largest sample, |location|),
            inside which samples may be numerical atoms (see the module docstring).

    Returns a :class:`Comparison`; ``str(comparison)`` is a one-line summary.
    """
    if not isinstance(law, Law):
        raise TypeError(f"law must be a spectral law of rmt_init (e.g. rmt_init.jacobian_spectrum(...)); got {law!r}")
    kind = check_choice("kind", kind, _KINDS)
    moments = check_int("moments", moments, minimum=1)
    if probes is not None:
        probes = check_int("probes", probes, minimum=2)
    atom_tol = check_real("atom_tol", atom_tol, low=0.0)
    data = samples_of(result_or_samples)
    trials, _ = data.shape
    flat = np.sort(data.ravel())  # on the squared scale, where F is evaluated and the tolerance is stated
    n = flat.size
    scale = float(flat[-1]) if flat[-1] > 0 else 1.0
    notes: list[str] = []
    # atoms: coarsen a window only where the samples in it are more than the law's continuous part allows
    atom_errors: dict[float, float] = {}
    cells: list[tuple[float, float, float]] = []  # (window lo, window hi, location) compared as one cell
    for loc, mass in law.atoms:
        tau = atom_tol * max(scale, abs(loc))
        lo, hi = loc - tau, loc + tau
        window_mass = float(law.cdf(hi, method="table")) - float(law.cdf(lo, method="table"))
        window_mass += sum(m for a, m in law.atoms if a == lo)  # F((loc − τ)−), should an atom sit at loc − τ
        continuous = max(window_mass - mass, 0.0)
        in_window = int(np.searchsorted(flat, hi, side="right") - np.searchsorted(flat, lo, side="left"))
        exact = int(np.searchsorted(flat, loc, side="right") - np.searchsorted(flat, loc, side="left"))
        label = float(loc) if kind == "squared" else math.sqrt(loc)
        expected = n * continuous
        if in_window - exact > expected + 5.0 * math.sqrt(expected) + 5.0:
            cells.append((lo, hi, loc))
            atom_errors[label] = in_window / n - window_mass
            notes.append(
                f"atom at {label:g}: {in_window - exact} samples within {tau:.3g} of it (law: {expected:.3g} from the "
                f"continuous part) taken as the atom; compared as one cell of law mass {mass:.6g} + {continuous:.3g}"
            )
        else:
            atom_errors[label] = exact / n - mass
    # the coarsened samples and the one-sided limits of both distribution functions at each distinct value
    coarse = flat.copy()
    for lo, hi, loc in cells:
        coarse[(coarse >= lo) & (coarse <= hi)] = loc
    coarse.sort()
    values = np.unique(coarse)
    if probes is not None and values.size > probes:
        values = np.unique(coarse[np.linspace(0, n - 1, probes).round().astype(int)])
    right = np.searchsorted(coarse, values, side="right") / n  # F_n(x)
    left = np.searchsorted(coarse, values, side="left") / n  # F_n(x−)
    law_right = np.asarray(law.cdf(values, method="table"), float)
    atom_at = np.zeros(values.shape)
    for loc, mass in law.atoms:
        atom_at[values == loc] += mass
    law_left = law_right - atom_at
    for lo, hi, loc in cells:  # the law coarsened like the samples: its window mass sits at loc
        at = values == loc
        law_right[at] = law.cdf(hi, method="table")
        law_left[at] = float(law.cdf(lo, method="table")) - sum(m for a, m in law.atoms if a == lo)
    ks = float(max(np.max(np.abs(right - law_right)), np.max(np.abs(left - law_left))))
    # W1 through quantiles on a midpoint grid in u
    m = n if probes is None else min(probes, n)
    u = (np.arange(m) + 0.5) / m
    empirical_q = flat[np.minimum((u * n).astype(int), n - 1)]
    law_q = np.asarray(law.ppf(u, method="table"), float)
    if kind == "singular":
        empirical_q, law_q = np.sqrt(empirical_q), np.sqrt(law_q)
    wasserstein1 = float(np.mean(np.abs(empirical_q - law_q)))
    target: Law = law
    values_k = data
    if kind == "singular":
        if not isinstance(law, SpectralLaw):
            raise ValueError("kind='singular' needs a law of squared singular values (a SpectralLaw)")
        target = law.singular_value_law()
        values_k = np.sqrt(data)
    # moments: per trial, then mean and standard error across trials
    moment_errors: dict[int, float] = {}
    moment_stderrs: dict[int, float] = {}
    infinite: list[int] = []
    for k in range(1, moments + 1):
        exact_moment = _law_moment(target, k)
        if not math.isfinite(exact_moment):  # a heavy-tailed law: nothing finite to compare with
            moment_errors[k] = moment_stderrs[k] = math.inf
            infinite.append(k)
            continue
        per = np.mean(values_k**k, axis=1)
        if trials > 1:
            stderr = float(per.std(ddof=1) / math.sqrt(trials))
        else:
            stderr = float(np.std(values_k**k) / math.sqrt(values_k.size))
        moment_errors[k] = float((per.mean() - exact_moment) / exact_moment) if exact_moment != 0 else float(per.mean())
        moment_stderrs[k] = stderr / abs(exact_moment) if exact_moment != 0 else stderr
    if trials == 1:
        notes.append("one trial: moment standard errors assume independent samples (optimistic for eigenvalues)")
    if infinite:
        notes.append(f"moment(s) {', '.join(f'm{k}' for k in infinite)} of the law infinite (power-law tail): "
                     "not compared, reported as inf")
    edge = float(target.upper_edge)
    top = np.mean(values_k.max(axis=1))
    if math.isfinite(edge):
        edge_error = float((top - edge) / edge) if edge > 0 else float(top)
    else:  # unbounded support: the largest sample grows with the sample size, there is no edge to compare with
        edge_error = math.inf
        notes.append("the law's support is unbounded above: no top edge compared (edge_error = inf)")
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
