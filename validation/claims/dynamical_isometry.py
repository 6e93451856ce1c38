"""Dynamical isometry: orthogonal weights at small q* keep the Jacobian spectrum near 1; Gaussian weights spread it.

Source: Pennington, Schoenholz & Ganguli 2017 (NeurIPS, "Resurrecting the sigmoid through dynamical
isometry"), §2.4–3 and Fig. 2/3: for a critical hard-tanh (or erf/tanh) network with orthogonal weights and
small σ_b² (so q* is small and φ' ≈ 1 for most units) Var λ stays O(1) in depth, while with Gaussian
weights it grows linearly in L (the Gaussian weights' own Marchenko–Pastur spread compounds).

Measured: torch hard-tanh networks (``network_jacobian_spectrum(L, N, "hardtanh", weights=...)``, bias on,
σ_b² = 1e−3, σ_w² = ``critical_sigma_w2``, inputs at q*) with orthogonal and Gaussian weights, against
``jacobian_spectrum(L, "hardtanh", weights=..., sigma_w2, sigma_b2)`` (closed-form S-transforms: hard-tanh is
piecewise linear).

Checks and tolerances (5 SE over networks plus a stated bias bound; ``effect`` as in
:func:`validation.common.check`):

* **mean** 1 (χ₁ = 1): 5 SE + 3L/N relative (finite-width fluctuation of q_l, as for tanh in claim 3).
* **variance** v = tr(JJᵀ)²/N − (tr JJᵀ/N)² per network against the finite-N model of
  :func:`validation.common.masked_variance`: hard-tanh's squared slope is 0/1, i.e. Bernoulli masks with
  ratio r = E m²/(E m)² read off the law (Var = L r Gaussian, L(r − 1) orthogonal); the weights' part of the
  finite-N correction is exact, the masks' part is modelled and used as the bias bound. At small q* the
  masks are nearly all ones (≈ 0.8 % zeros), so the Gaussian net is within ~1 % of the linear product, whose
  finite-N variance is exact (at full size, L = 32, N = 1024: 32.8 against 32.3 at N → ∞).
* **top of the orthogonal spectrum**: ‖D‖ ≤ 1 and σ_w O has all singular values σ_w, so λ_max ≤ σ_w^{2L},
  with equality on the (N − Σ_l dead_l)-dimensional subspace that no mask touches: λ_max = σ_w^{2L} exactly
  (the law's atom, mass 0.966 at L = 4); tolerance 1e−9 relative (rounding). ``effect`` = σ_w^{2L} − 1.
* **Gaussian edge**: E λ_max against the Tracy–Widom-corrected finite-N edge (claim 1,
  :func:`validation.common.finite_n_edge`), tolerance 5 SE + 1.5 N^{−1/3}|shift|; ``effect`` = the larger of
  |shift| and the distance to the neighbouring depths' edges. With λ_max's Tracy–Widom spread ≈ 1.05|shift|,
  5 SE stays below the effect only with ≳ 60 networks at L = 32, N = 1024 (shift −8.4): full size uses 100.
* **isometry**: the measured variance with orthogonal weights is below the Gaussian one by more than
  5 SE of the difference (``effect``: the predicted difference, ≈ L).
* **theory-only**: ``law.var()`` for orthogonal weights is < 1 at every depth used, while the Gaussian
  one exceeds L (growth ≥ linear).

Figure: both spectra over the theory densities; atoms are left out of the histograms and their masses
(theory and measured) written in the panels — at L = 4 the orthogonal spectrum is 97 % one atom.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, finite_n_edge, masked_variance, mean_se, record, \
    spectrum_panel

STATEMENT = ("Critical hard-tanh networks with orthogonal weights at small q* have a Jacobian spectrum concentrated "
             "near 1 (Var λ = O(1)), while Gaussian weights spread it (Var λ ≳ L); torch nets match the laws.")
SOURCE = "Pennington, Schoenholz & Ganguli 2017 (NeurIPS) §2.4–3, Figs. 2–3"

SIZES = {
    "smoke": {"depth": 4, "width": 128, "trials": 60, "sigma_b2": 1e-3},
    "default": {"depth": 8, "width": 256, "trials": 40, "sigma_b2": 1e-3},
    "full": {"depth": 32, "width": 1024, "trials": 100, "sigma_b2": 1e-3},
}


def _max_binomial_fraction(n: int, depth: int, p: float) -> float:
    """E max_l K_l / N for K_l i.i.d. Bin(N, p): the finite-N rank deficit of a product with masks."""
    from scipy import stats

    k = np.arange(1, n + 1)
    return float(np.sum(1.0 - stats.binom.cdf(k - 1, n, p) ** depth)) / n


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt

    import rmt_init
    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import critical_sigma_w2, q_star

    t0 = time.perf_counter()
    cfg = SIZES[size]
    L, n, trials, sb = cfg["depth"], cfg["width"], cfg["trials"], cfg["sigma_b2"]
    sw = critical_sigma_w2("hardtanh", sb)
    qs = q_star("hardtanh", sw, sb)
    checks: list[dict] = []
    key: dict = {"q*": qs, "σ_w²": sw}
    meas: dict = {}
    laws: dict = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.0))
    lin_corr = rmt_init.finite_width_moments(n, L).per_matrix_variance - L  # exact, linear Gaussian product
    for k, weights in enumerate(("orthogonal", "gaussian")):
        res = network_jacobian_spectrum(L, n, "hardtanh", "gaussian", weights=weights, sigma_w2=sw, sigma_b2=sb,
                                        bias=True, input_variance=(qs - sb) / sw, trials=trials, seed=600 + k,
                                        device=device, layer_stats=False)
        law = rmt_init.jacobian_spectrum(L, "hardtanh", weights=weights, sigma_w2=sw, sigma_b2=sb)
        laws[weights] = law
        x = res.squared_singular_values
        m, sm = mean_se(x.mean(axis=1))
        checks.append(check(f"mean {weights}", law.mean(), m, SAFETY * sm + 3.0 * L / n * law.mean(), stderr=sm))
        var_inf = float(law.var())
        ratio = var_inf / L if weights == "gaussian" else 1.0 + var_inf / L
        var_pred, model_inf = masked_variance(n, L, ratio, weights)
        var_pred += var_inf - model_inf
        corr = var_pred - var_inf
        var_bias = abs(corr - lin_corr) if weights == "gaussian" else abs(corr)
        v, sv = mean_se(x.var(axis=1))
        meas[weights] = (v, sv)
        checks.append(check(f"variance {weights}", var_pred, v, SAFETY * sv + var_bias, stderr=sv,
                            note=f"masked model, bias bound {var_bias:.3g}; N→∞: {var_inf:.4g}"))
        key[f"Var λ {weights} (finite-N / MC / N→∞)"] = f"{var_pred:.4f} / {v:.4f} / {var_inf:.4f}"
        top = x.max(axis=1)
        if weights == "orthogonal":
            iso = sw**L
            dev = float(np.max(np.abs(top - iso))) / iso
            checks.append(check("orthogonal λ_max = σ_w^{2L} (relative)", 0.0, dev, 1e-9, effect=abs(iso - 1.0),
                                note=f"σ_w^{{2L}} = {iso:.6g}"))
        else:
            e_pred, shift, e_bias = finite_n_edge(law, n)
            neighbour = min(abs(float(rmt_init.jacobian_spectrum(d, "hardtanh", weights=weights, sigma_w2=sw,
                                                                 sigma_b2=sb).upper_edge) - float(law.upper_edge))
                            for d in (L - 1, L + 1))
            t_mean, st = mean_se(top)
            checks.append(check(f"edge {weights}", e_pred, t_mean, SAFETY * st + e_bias, stderr=st,
                                effect=max(abs(shift), neighbour),
                                note=f"N→∞: {float(law.upper_edge):.4g}; distance to the depth-L±1 edge "
                                     f"{neighbour:.3g}"))
        # atoms, stated as masses: at 0 the rank deficit max_l dead_l / N (dead counts ~ Bin(N, p)), whose
        # finite-N mean exceeds the N → ∞ mass p; at σ_w^{2L} (orthogonal) the untouched subspace,
        # 1 − Σ_l dead_l/N
        p0 = dict(law.atoms).get(0.0, 0.0)
        lines = ["atoms (not in the histogram):",
                 f"λ = 0: mass {p0:.4f} (N → ∞), {_max_binomial_fraction(n, L, p0):.4f} (N = {n}, binomial max)"]
        if weights == "orthogonal":
            hit = np.abs(x - sw**L) <= 1e-9 * sw**L
            lines.append(f"λ = {sw**L:.4g}: mass {1 - L * p0:.4f} (N → ∞), {hit.mean():.4f} measured")
        spectrum_panel(axes[k], law, x, f"hard-tanh, {weights} weights, L = {L}, N = {n}, q* = {qs:.3f}", lines)
    (vo, so), (vg, sg) = meas["orthogonal"], meas["gaussian"]
    se = math.hypot(so, sg)
    diff_pred = laws["gaussian"].var() - laws["orthogonal"].var()
    checks.append(check("Var gaussian − Var orthogonal (MC)", diff_pred, vg - vo, SAFETY * se, stderr=se,
                        passed=vg - vo > SAFETY * se, effect=diff_pred, note="passes if the difference exceeds 5 SE"))
    checks.append(check("theory: Var orthogonal < 1", 1.0, laws["orthogonal"].var(), 0.0,
                        passed=laws["orthogonal"].var() < 1.0))
    checks.append(check("theory: Var gaussian > L", float(L), laws["gaussian"].var(), 0.0,
                        passed=laws["gaussian"].var() > L))
    key["Var ratio orth/gauss (theory/MC)"] = f"{laws['orthogonal'].var() / laws['gaussian'].var():.4f}/{vo / vg:.4f}"
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "dynamical_isometry.png", dpi=110)
    return record("dynamical_isometry", __name__, size, config_for(__name__, size, device), checks,
                  ["dynamical_isometry.png"], t0, key)
