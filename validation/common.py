"""Shared helpers for the validation claims: check records, atomic file writes, statistics.

Every file the suite writes goes through :func:`atomic_write_text` / :func:`atomic_savefig`: the content is
written to a temporary file in the destination directory, flushed and fsync'ed, then moved over the final
name with ``os.replace`` (atomic on POSIX). An interruption (Ctrl-C, a crash) therefore leaves either the old
file or the new one, never a partial one, and the ``finally`` clause removes the temporary file.
"""
from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

SAFETY = 5.0  # Monte Carlo tolerances: SAFETY standard errors (+ a stated finite-size bias bound)
TMP_PREFIX = ".tmp-"


# ----------------------------------------------------------------------------------------- JSON-safe values
def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats (→ None) into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


# ------------------------------------------------------------------------------------------- atomic writes
def _atomic_write(path: Path, writer: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (temp file in the same directory, fsync, ``os.replace``)."""
    _atomic_write(path, lambda fh: fh.write(text), "w")


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` (made JSON-safe by :func:`jsonable`) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(jsonable(obj), indent=2, ensure_ascii=False) + "\n")


def atomic_savefig(fig: Any, path: Path, **kwargs: Any) -> None:
    """``fig.savefig`` to a temporary name, then ``os.replace``; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    fmt = Path(path).suffix.lstrip(".") or "png"
    try:
        _atomic_write(Path(path), lambda fh: fig.savefig(fh, format=fmt, **kwargs), "wb")
    finally:
        plt.close(fig)


# ------------------------------------------------------------------------------------------ check records
def check(
    name: str,
    predicted: float,
    measured: float,
    tolerance: float,
    stderr: float | None = None,
    passed: bool | None = None,
    note: str | None = None,
) -> dict:
    """One check: ``passed`` defaults to ``|measured − predicted| <= tolerance``."""
    if passed is None:
        passed = bool(abs(float(measured) - float(predicted)) <= float(tolerance))
    rec = {"name": name, "predicted": predicted, "measured": measured, "stderr": stderr, "tolerance": tolerance,
           "passed": bool(passed)}
    if note:
        rec["note"] = note
    return jsonable(rec)


def record(name: str, module: Any, size: str, config: dict, checks: list[dict], figures: list[str],
           started: float, extra: dict | None = None) -> dict:
    """The claim's JSON record (see the package docstring for the schema)."""
    module = sys.modules[module] if isinstance(module, str) else module
    doc = (module.__doc__ or "").strip()
    rec = {
        "claim": name,
        "statement": getattr(module, "STATEMENT", doc.splitlines()[0] if doc else name),
        "source": getattr(module, "SOURCE", ""),
        "size": size,
        "checks": checks,
        "passed": bool(checks) and all(c["passed"] for c in checks),
        "figures": figures,
        "seconds": time.perf_counter() - started,
        "config": config,
    }
    if extra:
        rec["key_numbers"] = extra
    return jsonable(rec)


def config_for(module: Any, size: str, device: str) -> dict:
    """The configuration a claim runs with at ``size`` on ``device`` (what ``--resume`` compares)."""
    module = sys.modules[module] if isinstance(module, str) else module
    return jsonable({**module.SIZES[size], "device": device})


# ------------------------------------------------------------------------------------------- statistics
def mean_se(values: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of independent values (trials are the independent unit)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")


def ks_with_se(cdf: Callable[[np.ndarray], np.ndarray], samples: np.ndarray, probes: int = 400,
               atoms: tuple = ()) -> tuple[float, float]:
    """KS distance of the pooled empirical distribution and the largest standard error of it.

    ``samples`` is ``(trials, k)``. At ``probes`` quantiles x of the pooled sample: F̄(x) = pooled empirical
    cdf, F(x) the law's, and the standard error of F̄(x) from the trial-to-trial spread of the per-trial
    empirical cdfs F_t(x) (eigenvalues of one matrix are correlated, trials are independent). Returns
    (max_x |F̄(x) − F(x)|, max_x SE(x)); both one-sided limits are used at atoms.
    """
    data = np.asarray(samples, dtype=np.float64)
    trials = data.shape[0]
    flat = np.sort(data.ravel())
    x = np.unique(flat[np.linspace(0, flat.size - 1, min(probes, flat.size)).round().astype(int)])
    per_right = np.stack([np.searchsorted(np.sort(r), x, side="right") / r.size for r in data])
    per_left = np.stack([np.searchsorted(np.sort(r), x, side="left") / r.size for r in data])
    law_right = np.asarray(cdf(x), dtype=np.float64)
    atom_at = np.zeros_like(x)
    for loc, mass in atoms:
        atom_at[np.isclose(x, loc, rtol=0, atol=1e-12)] += mass
    law_left = law_right - atom_at
    ks = max(np.max(np.abs(per_right.mean(0) - law_right)), np.max(np.abs(per_left.mean(0) - law_left)))
    se = max(np.max(per_right.std(0, ddof=1)), np.max(per_left.std(0, ddof=1))) / math.sqrt(trials)
    return float(ks), float(se)


def dkw_bound(n_eff: int, alpha: float = 1e-6) -> float:
    """DKW: P(sup|F_n − F| > ε) ≤ 2 exp(−2 n ε²) ⇒ ε = sqrt(ln(2/α) / (2n))."""
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n_eff))


def seconds_since(start: float) -> float:
    return time.perf_counter() - start


# ------------------------------------------------------------------------- exact finite-N product moments
def product_moments(width: int, depth: int, kappa: float = 0.0) -> tuple[float, float, float]:
    """Exact ``(E tr JJᵀ/N, E (tr JJᵀ/N)², E tr (JJᵀ)²/N)`` for ``J = W_L ⋯ W_1``, ``W = X/√N`` with i.i.d.
    entries of mean 0, variance 1 and excess kurtosis ``kappa`` (0: Gaussian; −6/5: uniform).

    Derived here by the same one-layer Wick calculus as ``rmt_init.theory.finite_width_moments`` (which is
    the ``kappa = 0`` case, checked in claim ``bjorck_product_spectra``), keeping the fourth cumulant:
    with ``A = J_{L−1} J_{L−1}ᵀ`` independent of ``X``, ``E[X_ia X_kb X_kc X_id]`` has the three pairings plus
    ``kappa·1[i=k, a=b=c=d]``. With ``b = E tr A²/N``, ``a = E (tr A/N)²``, ``d = E Σ_a A_aa²/N``:

    * ``a_L = a + (2b + κd)/N²`` (variance of each row's quadratic form xᵀAx is ``2 tr A² + κ Σ A_aa²``),
    * ``b_L = a + (1 + 1/N) b + κ d/N``,
    * ``d_L = a + 2b/N + κ d/N`` (second moment of a diagonal entry (1/N) xᵀAx),

    from ``a_0 = b_0 = d_0 = 1``; the mean stays 1. ``N = 1, L = 1``: ``b = 3 + κ = E x⁴``.
    """
    n = float(width)
    a = b = d = 1.0
    for _ in range(depth):
        a, b, d = a + (2 * b + kappa * d) / n**2, a + (1 + 1 / n) * b + kappa * d / n, a + 2 * b / n + kappa * d / n
    return 1.0, a, b


def edge_bias_coefficient(depth: int) -> float:
    """Bound ``c_L`` on the relative finite-N bias of E[λ_max] against the Fuss–Catalan edge: ``c_L N^{−2/3}``.

    At L = 1 it is the Tracy–Widom shift of the Wishart edge, 2^{4/3}·|E TW₁|/4 ≈ 0.76 (E TW₁ = −1.2065).
    Measured here (200 products, rmt_init.montecarlo.product_spectrum, Gaussian / uniform entries) as
    (edge − E λ_max)/edge × N^{2/3}: N = 64: L = 1: 0.84 / 1.04, 2: 1.53 / 1.66, 4: 2.58 / 2.62, 8: 3.83 / 4.27;
    N = 128: 0.79 / 1.04, 1.42 / 1.65, 2.62 / 2.81, 3.80 / 4.70. Bound used: c_L = 1.5 + 1.2·L^{0.85}
    (2.7, 3.7, 5.5, 8.8 at L = 1, 2, 4, 8; ≥ 1.9× the largest measured value).
    """
    return 1.5 + 1.2 * depth**0.85
