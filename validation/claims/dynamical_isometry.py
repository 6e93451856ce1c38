"""Dynamical isometry: orthogonal weights at small q* keep the Jacobian spectrum near 1; Gaussian weights spread it.

Source: Pennington, Schoenholz & Ganguli 2017 (NeurIPS, "Resurrecting the sigmoid through dynamical
isometry"), §2.4–3 and Fig. 2/3: for a critical hard-tanh (or erf/tanh) network with orthogonal weights and
small σ_b² (so q* is small and φ' ≈ 1 for most units) Var λ stays O(1) in depth, while with Gaussian
weights it grows linearly in L (the Gaussian weights' own Marchenko–Pastur spread compounds).

Measured: torch hard-tanh networks (``network_jacobian_spectrum(L, N, "hardtanh", weights=...)``, bias on,
σ_b² = 1e−3, σ_w² = ``critical_sigma_w2``, inputs at q*) with orthogonal and Gaussian weights, against
``jacobian_spectrum(L, "hardtanh", weights=..., sigma_w2, sigma_b2)`` (closed-form S-transforms: hard-tanh is
piecewise linear).

Checks and tolerances:

* **mean** 1 (χ₁ = 1): 5 SE + 3L/N relative (finite-width fluctuation of q_l, as for tanh in claim 3).
* **variance** per weight law against ``law.var()``: 5 SE + (L + 1)·L/N relative (claim 3's bound).
* **edge** E λ_max vs ``law.upper_edge`` (relative 5 SE + c_L N^{−2/3}, claim 1's bound).
* **isometry**: the measured variance with orthogonal weights is below the Gaussian one by more than
  5 SE of the difference, and the theory ratio Var_orth/Var_gauss is reproduced within the propagated
  tolerances (reported).
* **theory-only**: ``law.var()`` for orthogonal weights is < 1 at every depth used, while the Gaussian
  one exceeds L (growth ≥ linear).

Figure: both spectra over the theory densities.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, edge_bias_coefficient, mean_se, record

STATEMENT = ("Critical hard-tanh networks with orthogonal weights at small q* have a Jacobian spectrum concentrated "
             "near 1 (Var λ = O(1)), while Gaussian weights spread it (Var λ ≳ L); torch nets match the laws.")
SOURCE = "Pennington, Schoenholz & Ganguli 2017 (NeurIPS) §2.4–3, Figs. 2–3"

SIZES = {
    "smoke": {"depth": 4, "width": 128, "trials": 30, "sigma_b2": 1e-3},
    "default": {"depth": 8, "width": 256, "trials": 40, "sigma_b2": 1e-3},
    "full": {"depth": 32, "width": 1024, "trials": 20, "sigma_b2": 1e-3},
}


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt

    import rmt_init
    import rmt_init.plot
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
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for k, weights in enumerate(("orthogonal", "gaussian")):
        res = network_jacobian_spectrum(L, n, "hardtanh", "gaussian", weights=weights, sigma_w2=sw, sigma_b2=sb,
                                        bias=True, input_variance=(qs - sb) / sw, trials=trials, seed=600 + k,
                                        device=device, layer_stats=False)
        law = rmt_init.jacobian_spectrum(L, "hardtanh", weights=weights, sigma_w2=sw, sigma_b2=sb)
        laws[weights] = law
        x = res.squared_singular_values
        m, sm = mean_se(x.mean(axis=1))
        checks.append(check(f"mean {weights}", law.mean(), m, SAFETY * sm + 3.0 * L / n * law.mean(), stderr=sm))
        v, sv = mean_se(x.var(axis=1))
        meas[weights] = (v, sv)
        checks.append(check(f"variance {weights}", law.var(), v, SAFETY * sv + (L + 1) * L / n * law.var(), stderr=sv))
        edge = float(law.upper_edge)
        top, st = mean_se(x.max(axis=1))
        checks.append(check(f"edge {weights}", edge, top, SAFETY * st + edge_bias_coefficient(L) * n ** (-2 / 3) * edge,
                            stderr=st))
        key[f"Var λ {weights} (theory/MC)"] = f"{law.var():.3f}/{v:.3f}"
        hi = min(edge * 1.05, float(np.quantile(x, 0.995)) * 1.2)
        axes[k].hist(x.ravel(), bins=60, range=(0, hi), density=True, color="0.75", label="torch hard-tanh nets")
        rmt_init.plot.density(law, ax=axes[k], n=300, label="jacobian_spectrum")
        axes[k].set(xlim=(0, hi), title=f"{weights} weights, L={L}, N={n}, q*={qs:.3f}")
        axes[k].legend(fontsize=6)
    (vo, so), (vg, sg) = meas["orthogonal"], meas["gaussian"]
    se = math.hypot(so, sg)
    checks.append(check("Var gaussian − Var orthogonal (MC)", laws["gaussian"].var() - laws["orthogonal"].var(),
                        vg - vo, SAFETY * se, stderr=se, passed=vg - vo > SAFETY * se,
                        note="passes if the difference exceeds 5 SE"))
    checks.append(check("theory: Var orthogonal < 1", 1.0, laws["orthogonal"].var(), 0.0,
                        passed=laws["orthogonal"].var() < 1.0))
    checks.append(check("theory: Var gaussian > L", float(L), laws["gaussian"].var(), 0.0,
                        passed=laws["gaussian"].var() > L))
    key["Var ratio orth/gauss (theory/MC)"] = f"{laws['orthogonal'].var() / laws['gaussian'].var():.4f}/{vo / vg:.4f}"
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "dynamical_isometry.png", dpi=90)
    return record("dynamical_isometry", __name__, size, config_for(__name__, size, device), checks,
                  ["dynamical_isometry.png"], t0, key)
