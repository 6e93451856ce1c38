"""The spectrum of a product of classical-init layers widens with depth; orthogonal products stay isometric.

Source: Bjorck, Gomes, Selman & Weinberger 2018 (NeurIPS), §4 (the spread of the singular values of the
layer-product grows with depth, which is why deep un-normalised nets need small learning rates); Fuss–Catalan
moments and edge (Penson & Życzkowski 2011): Var λ = L, λ_max → (L+1)^{L+1}/L^L ≈ e(L+1).

Measured with ``product_spectrum`` at L = 1, 2, 4, 8 (16 in default/full) for Gaussian (xavier_normal)
and uniform (xavier_uniform) inits, and orthogonal (torch ``orthogonal_``) products:

* **per-matrix spectral variance** v = tr(JJᵀ)²/N − (tr JJᵀ/N)², whose expectation is exactly ``b − a`` at
  finite N (:func:`validation.common.product_moments`, κ = 0 Gaussian / −6/5 uniform; → L as N → ∞).
  Tolerance 5 SE across products (independent). The N → ∞ value L is reported alongside.
* **top edge** E λ_max vs (L+1)^{L+1}/L^L, relative tolerance ``c_L N^{−2/3}`` + 5 SE (claim 1's bound).
  At L = 16 (beyond the depths where c_L was measured) the bound is extrapolated; the finite-N bias grows
  with L/N, so L = 16 is run only at N ≥ 128.
* **monotone growth**: for consecutive depths, the measured variance and edge increase by more than 3 SE
  of the difference (one-sided; the theory increments, ≥ 1 and ≥ e, are ≥ 6 SE at these trial counts, so
  a correct implementation fails this with probability ≲ 1e−3).
* **orthogonal**: every squared singular value equals 1 to 1e−10 (products of orthogonal matrices are
  orthogonal), so variance 0 and edge 1 at every depth.

Figure: variance and edge vs L, measured against theory.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, edge_bias_coefficient, mean_se, \
    product_moments, record

STATEMENT = ("The spread of squared singular values of products of L Gaussian/uniform layers grows with L "
             "(Var λ = L, edge (L+1)^{L+1}/L^L ≈ e(L+1)), while orthogonal products keep every σ² = 1.")
SOURCE = "Bjorck et al. 2018 (NeurIPS), §4; Penson & Życzkowski 2011; Saxe et al. 2014 (orthogonal products)"

SIZES = {
    "smoke": {"width": 32, "depths": [1, 2, 4, 8], "trials": 200},
    "default": {"width": 128, "depths": [1, 2, 4, 8, 16], "trials": 300},
    "full": {"width": 1024, "depths": [1, 2, 4, 8, 16], "trials": 100},
}
INITS = {"xavier_normal": 0.0, "xavier_uniform": -1.2}
GROWTH_Z = 3.0  # one-sided: a real increase of ≥ 5 SE (true at these trial counts) fails with prob < 3 %


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt

    from rmt_init.montecarlo import product_spectrum

    t0 = time.perf_counter()
    cfg = SIZES[size]
    n, trials, depths = cfg["width"], cfg["trials"], cfg["depths"]
    checks: list[dict] = []
    series: dict[str, dict[str, list]] = {}
    for k, (init, kappa) in enumerate(INITS.items()):
        s = series.setdefault(init, {"var": [], "var_se": [], "edge": [], "edge_se": [], "var_pred": []})
        for depth in depths:
            res = product_spectrum(depth, n, init, trials=trials, seed=7000 + 100 * k + depth, device=device,
                                   stabilize=False)
            x = res.squared_singular_values
            per_var = np.mean(x**2, axis=1) - np.mean(x, axis=1) ** 2
            _, a, b = product_moments(n, depth, kappa)
            v, v_se = mean_se(per_var)
            checks.append(check(f"Var λ {init} L={depth}", b - a, v, SAFETY * v_se, stderr=v_se,
                                note=f"N→∞: {depth}"))
            edge = (depth + 1) ** (depth + 1) / depth**depth
            top, e_se = mean_se(x.max(axis=1))
            checks.append(check(f"edge {init} L={depth}", edge, top,
                                edge_bias_coefficient(depth) * n ** (-2 / 3) * edge + SAFETY * e_se, stderr=e_se))
            for key, val in (("var", v), ("var_se", v_se), ("edge", top), ("edge_se", e_se), ("var_pred", b - a)):
                s[key].append(val)
        for i in range(1, len(depths)):
            for key in ("var", "edge"):
                diff = s[key][i] - s[key][i - 1]
                se = math.hypot(s[key + "_se"][i], s[key + "_se"][i - 1])
                if key == "var":
                    pred = s["var_pred"][i] - s["var_pred"][i - 1]
                else:
                    pred = (depths[i] + 1) ** (depths[i] + 1) / depths[i] ** depths[i] - (
                        depths[i - 1] + 1) ** (depths[i - 1] + 1) / depths[i - 1] ** depths[i - 1]
                checks.append(check(f"{key} grows {init} L={depths[i - 1]}→{depths[i]}", pred, diff, GROWTH_Z * se,
                                    stderr=se, passed=diff > GROWTH_Z * se,
                                    note=f"passes if the increase exceeds {GROWTH_Z:g} SE"))
    orth = []
    for depth in depths:
        res = product_spectrum(depth, n, "orthogonal", trials=max(4, trials // 10), seed=9000 + depth, device=device,
                               stabilize=False)
        dev = float(np.max(np.abs(res.squared_singular_values - 1.0)))
        orth.append(dev)
        checks.append(check(f"orthogonal max|σ²−1| L={depth}", 0.0, dev, 1e-10))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    ls = np.array(depths, float)
    for init, s in series.items():
        axes[0].errorbar(ls, s["var"], yerr=SAFETY * np.array(s["var_se"]), fmt="o", ms=4, label=f"{init} (MC)")
        axes[1].errorbar(ls, s["edge"], yerr=SAFETY * np.array(s["edge_se"]), fmt="o", ms=4, label=f"{init} (MC)")
    axes[0].plot(ls, series["xavier_normal"]["var_pred"], "k--", lw=1, label=f"exact at N = {n} (Gaussian)")
    axes[0].plot(ls, ls, "k:", lw=1, label="N → ∞: L")
    axes[1].plot(ls, (ls + 1) ** (ls + 1) / ls**ls, "k:", lw=1, label="(L+1)^{L+1}/L^L")
    for ax in axes:
        ax.plot(ls, np.ones_like(ls) * (0 if ax is axes[0] else 1), "C3s-", ms=3, label="orthogonal (MC)")
        ax.set(xscale="log", xlabel="depth L")
        ax.legend(fontsize=7)
    axes[0].set(ylabel="Var λ", title=f"spread vs depth, N = {n}")
    axes[1].set(ylabel="E λ_max", title="top edge vs depth")
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "bjorck_spread_grows.png", dpi=90)
    key = {f"Var λ at L={depths[-1]} (Gaussian)": series["xavier_normal"]["var"][-1],
           f"edge at L={depths[-1]}": series["xavier_normal"]["edge"][-1], "orthogonal max|σ²−1|": max(orth)}
    return record("bjorck_spread_grows", __name__, size, config_for(__name__, size, device), checks,
                  ["bjorck_spread_grows.png"], t0, key)
