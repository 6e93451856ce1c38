"""Shared helpers for the validation claims: check records, atomic file writes, statistics.

Every file the suite writes goes through :func:`atomic_write_text` / :func:`atomic_savefig`: the content is
written to a temporary file in the destination directory, flushed and fsync'ed, then moved over the final
name with ``os.replace`` (atomic on POSIX). An interruption (Ctrl-C, a crash) therefore leaves either the old
file or the new one, never a partial one, and the ``finally`` clause removes the temporary file.
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rmt_init._files import TMP_PREFIX, atomic_write, atomic_write_text, jsonable

SAFETY = 5.0  # Monte Carlo tolerances: SAFETY standard errors (+ a stated finite-size bias bound)


# ------------------------------------------------------------------ JSON-safe values and atomic writes (rmt_init._files)
_atomic_write = atomic_write


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
    effect: float | None = None,
) -> dict:
    """One check: ``passed`` defaults to ``|measured − predicted| <= tolerance``.

    ``effect`` is the size of what the check resolves — by default ``|predicted|``; for a KS distance the KS
    distance to a wrong law (the neighbouring depth's), for an edge the finite-N shift from the N → ∞ edge, for
    a one-sided check the predicted margin. A check whose tolerance is not below its effect cannot fail on the
    wrong answer it is meant to exclude; ``tests/test_validation.py`` requires ``tolerance < effect``.
    """
    if passed is None:
        passed = bool(abs(float(measured) - float(predicted)) <= float(tolerance))
    if effect is None:
        effect = abs(float(predicted))
    rec = {"name": name, "predicted": predicted, "measured": measured, "stderr": stderr, "tolerance": tolerance,
           "effect": effect, "passed": bool(passed)}
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


# ------------------------------------------------------------------------------- finite-N predictions
#: E TW₁, the mean of the GOE Tracy–Widom law (Tracy & Widom 1996; value from Bornemann 2010, Table 4).
TW1_MEAN = -1.2065335745820
#: Coefficient of the bound on what the Tracy–Widom-corrected edge leaves out (see :func:`finite_n_edge`).
EDGE_NEXT_ORDER = 1.5


def edge_density_coefficient(law: Any, delta: float = 1e-6) -> float:
    """``C`` in ``ρ(x) ≈ C·sqrt(E − x)`` at the law's soft upper edge ``E``: ``ρ(E(1 − δ))/sqrt(Eδ)``,
    δ = 1e−6 (the next term of the square-root expansion is relative ``O(δ)``, so ``C`` is good to ~1e−6)."""
    edge = float(law.upper_edge)
    x = edge * (1.0 - delta)
    return float(np.asarray(law.pdf(np.array([x])))[0]) / math.sqrt(edge - x)


def finite_n_edge(law: Any, width: int) -> tuple[float, float, float]:
    """Finite-N prediction of E λ_max at a soft edge: ``(prediction, shift, bias_bound)``.

    Soft-edge universality: if the law's density is ``ρ(x) ≈ C sqrt(E − x)`` at its upper edge, the largest of N
    eigenvalues is ``E + (πC)^{−2/3} N^{−2/3} TW₁`` to leading order — the scale at which N ∫ρ over the last
    stretch is O(1); ``C = 1/π`` is the semicircle's GOE scaling, ``C = 1/(4π)`` gives the Wishart edge
    ``4 − 2^{4/3} 1.2065 N^{−2/3}``. Proven for Wishart (Johnstone 2001) and for products of Ginibre matrices at
    fixed L (Liu, Wang & Zhang 2016, CPAM 69); for the network Jacobians it is assumed. So
    ``shift = TW1_MEAN (πC)^{−2/3} N^{−2/3}`` (negative). The next order is O(1/N) for Wishart (e.g. the centring
    (√(N−1) + √N)²/N = 4 − 2/N + …), i.e. ``N^{−1/3}`` relative to the shift; the bound used is
    ``bias_bound = EDGE_NEXT_ORDER · N^{−1/3} |shift|``. Residual (MC − prediction)/|shift| × N^{1/3} measured
    with rmt_init.montecarlo.product_spectrum (xavier_normal, 100–400 products): L = 1: 0.61, 0.47, 0.26 (N = 32, 64,
    128); L = 2: 0.65, 0.59, 0.39; L = 4: 0.69, 0.68, 0.54, 0.18 (N = 32–256); L = 8: 0.24, 0.18, 0.28, 0.54, 1.46
    ± 0.54 (N = 32–512); L = 16: 0.55 (N = 256) — all below 1.5 (≥ 2× where well resolved).
    """
    edge = float(law.upper_edge)
    shift = TW1_MEAN * (math.pi * edge_density_coefficient(law)) ** (-2.0 / 3.0) * width ** (-2.0 / 3.0)
    return edge + shift, shift, EDGE_NEXT_ORDER * width ** (-1.0 / 3.0) * abs(shift)


def ks_distance(cdf_a: Callable, cdf_b: Callable, x: np.ndarray) -> float:
    """sup over the grid ``x`` of |F_a − F_b| (used for the KS checks' resolving power: the KS distance between the
    law and a wrong law, e.g. the neighbouring depth's, which a useful KS tolerance must stay below)."""
    return float(np.max(np.abs(np.asarray(cdf_a(x), float) - np.asarray(cdf_b(x), float))))


def masked_variance(width: int, depth: int, ratio: float, weights: str) -> tuple[float, float]:
    """Finite-N per-matrix spectral variance E[tr(JJᵀ)²/N − (tr JJᵀ/N)²] of ``J = D_L W_L ⋯ D_1 W_1`` in a
    *model* where the squared slopes m_i = φ'(h_i)² are i.i.d., independent of the weights, with
    ``ratio = E m² / (E m)²`` and criticality σ_w² E m = 1: ``(model value, its N → ∞ limit)``, the limit
    being L·ratio (Gaussian) or L(ratio − 1) (orthogonal).

    Gaussian weights: ``rmt_init.finite_width_moments(N, L, σ_w² = r, activation="relu", active_fraction=1/r)``
    (same recursion; exact for ReLU, r = 2). Haar-orthogonal weights (σ_w O): with B = OAOᵀ, the Haar moments
    E B_ii² = (p1² + 2p2)/(N(N+2)), E B_ij² = (N p2 − p1²)/((N−1)N(N+2)),
    E B_ii B_jj = ((N+1)p1² − 2p2)/((N−1)N(N+2))
    (p_k = tr A^k; Σ_j B_ij² = p2 and (Σ B_ii)² = p1² check them) give, in a = E(p1/N)², b = E p2/N,
    ``b_l = [N(b − a) + r(N a + 2b)]/(N + 2)``, ``a_l = [(N + 1)a − 2b/N + r(N a + 2b)/N]/(N + 2)``.
    What the model leaves out — the slopes' dependence on the weights through h (for ReLU it cancels exactly by
    the sign-flip symmetry; for orthogonal weights and smooth φ it does not) and the O(1/N) fluctuation of the
    layer variance q — is of the same order as the masks' part of the correction, which is why the claims
    use that part, not zero, as the bias bound.
    """
    import rmt_init

    n, r = float(width), float(ratio)
    if weights == "gaussian":
        m = rmt_init.finite_width_moments(width, depth, sigma_w2=r, activation="relu", active_fraction=1.0 / r)
        return m.per_matrix_variance, depth * r
    a = b = 1.0
    for _ in range(depth):
        a, b = (((n + 1) * a - 2 * b / n + r * (n * a + 2 * b) / n) / (n + 2),
                (n * (b - a) + r * (n * a + 2 * b)) / (n + 2))
    return b - a, depth * (r - 1.0)


def spectrum_panel(ax: Any, law: Any, x: np.ndarray, title: str, atom_lines: list[str] | None = None,
                   hi: float | None = None, grid: int = 300) -> None:
    """Histogram of sampled squared singular values over the law's density, readable at paper size.

    Samples exactly at an atom (``law.atoms``, to 1e−9 relative) are left out of the histogram and reported in
    ``atom_lines`` (a text box: masses in words, not stems whose height would mean nothing); the histogram is
    normalised to the whole sample, so it estimates the law's continuous density, whose total mass is below 1
    when there are atoms. Where the density diverges at a hard edge the y-axis is cut and this is said.
    """
    x = np.asarray(x, dtype=np.float64)
    flat = x.ravel()
    scale = float(np.max(flat)) if flat.size else 1.0
    at_atom = np.zeros(flat.shape, dtype=bool)
    for loc, _ in law.atoms:
        at_atom |= np.abs(flat - loc) <= 1e-9 * max(abs(loc), scale) + (1e-20 * scale if loc == 0 else 0.0)
    cont = flat[~at_atom]
    top = float(law.upper_edge)
    ref = cont if cont.size else flat
    hi = hi if hi is not None else min(1.05 * top, 1.2 * float(np.quantile(ref, 0.995)))
    bins = np.linspace(0.0, hi, 61)
    width = bins[1] - bins[0]
    ax.hist(cont, bins=bins, weights=np.full(cont.size, 1.0 / (flat.size * width)), histtype="stepfilled",
            color="0.78", label=f"torch nets ({x.shape[0]} × {x.shape[1]} values)")
    lo_c = max(float(law.intervals[0][0]) if law.intervals else 0.0, 1e-6 * top)
    g = np.linspace(lo_c, min(hi, top * (1 - 1e-9)), grid)
    y = np.asarray(law.pdf(g), dtype=np.float64)
    ax.plot(g, y, "C0-", lw=1.6, label="theory density (jacobian_spectrum)")
    counts, _ = np.histogram(cont, bins=bins)
    hist_top = float(np.max(counts[1:])) / (flat.size * width) if counts.size > 1 else 1.0
    ymax = 1.35 * max(hist_top, float(np.max(y[g > 0.05 * hi])) if np.any(g > 0.05 * hi) else hist_top)
    ax.set_ylim(0.0, ymax)
    ax.set_xlim(0.0, hi)
    notes = list(atom_lines or [])
    if law.intervals and cont.size:
        end = float(law.intervals[-1][1])
        beyond = float(np.mean(cont > 1.02 * end))
        if beyond > 0.005 and end < hi:
            notes.append(f"N → ∞ support of the continuous part ends at {end:.3g};")
            notes.append(f"{beyond:.1%} of the non-atom values lie beyond (finite N)")
    if np.max(y) > ymax:
        notes.append("y-axis cut: the density rises steeply as λ → 0")
    if notes:
        ax.text(0.97, 0.97, "\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=8,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(r"$\lambda = \sigma^2$", fontsize=10)
    ax.set_ylabel("density", fontsize=10)
    ax.tick_params(labelsize=9)
    ax.legend(fontsize=8, loc="center right")
