"""The spectrum of a product of classical-init layers widens with depth; orthogonal products stay isometric.

Source: Bjorck, Gomes, Selman & Weinberger 2018 (NeurIPS), §4 (the spread of the singular values of the
layer-product grows with depth, which is why deep un-normalised nets need small learning rates); Fuss–Catalan
moments and edge (Penson & Życzkowski 2011): Var λ = L, λ_max → E_L = (L+1)^{L+1}/L^L ≈ e(L+1).

Measured with ``product_spectrum`` at L = 1, 2, 4, 8 (16 in default/full) for Gaussian (xavier_normal)
and uniform (xavier_uniform) inits, and orthogonal (torch ``orthogonal_``) products:

* **per-matrix spectral variance** v = tr(JJᵀ)²/N − (tr JJᵀ/N)², whose expectation is exactly ``b − a`` at
  finite N (``rmt_init.finite_width_moments(N, L, fourth_cumulant=κ).per_matrix_variance``, κ = 0 Gaussian,
  −6/5 uniform; → L as N → ∞). Tolerance 5 SE across products (independent). The N → ∞ value L is noted.
* **top edge**: E λ_max against the finite-N prediction E_L + shift (Tracy–Widom mean at the scale of the
  law's square-root edge, :func:`validation.common.finite_n_edge`; shift ≈ −14 % of E_L at L = 8, N = 64),
  tolerance 5 SE + 1.5 N^{−1/3}|shift| (bound on the next order, derived and measured in that docstring).
  ``effect`` = |shift|: the tolerance stays below the finite-N shift, so the check distinguishes the finite-N
  edge from the N → ∞ edge E_L (which the measured mean misses by 10–40 % at these widths).
* **monotone growth**: for consecutive depths, the measured variance and edge increase by more than 3 SE
  of the difference (one-sided; the predicted finite-N increments are ≥ 6 SE at these trial counts, so a
  correct implementation fails this with probability ≲ 1e−3). ``effect`` = the predicted increment.
* **orthogonal**: every squared singular value equals 1 to 1e−10 (products of orthogonal matrices are
  orthogonal), so variance 0 and edge 1 at every depth. ``effect`` = 1e−3 (far below any spread a
  non-orthogonal product of these sizes has, ≥ 0.5).

Figure: variance and edge vs L — Monte Carlo means with ±1 SE bars, the exact / Tracy–Widom finite-N
predictions with the checks' tolerance bands, and the N → ∞ curves.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, finite_n_edge, mean_se, record

STATEMENT = ("The spread of squared singular values of products of L Gaussian/uniform layers grows with L "
             "(Var λ = L, edge (L+1)^{L+1}/L^L ≈ e(L+1)), while orthogonal products keep every σ² = 1.")
SOURCE = "Bjorck et al. 2018 (NeurIPS), §4; Penson & Życzkowski 2011; Saxe et al. 2014 (orthogonal products)"

SIZES = {
    "smoke": {"width": 64, "depths": [1, 2, 4, 8], "trials": 200},
    "default": {"width": 128, "depths": [1, 2, 4, 8, 16], "trials": 300},
    "full": {"width": 1024, "depths": [1, 2, 4, 8, 16], "trials": 100},
}
INITS = {"xavier_normal": 0.0, "xavier_uniform": -1.2}
GROWTH_Z = 3.0  # one-sided: a real increase of ≥ 6 SE (true at these trial counts) fails with prob < 1e-3


def _figure(series: dict, depths: list[int], n: int, trials: int, out_dir: Path) -> str:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, NullFormatter, ScalarFormatter

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    ls = np.array(depths, float)
    fine = np.linspace(1.0, ls.max(), 200)
    for k, (init, s) in enumerate(series.items()):
        off = 1.0 + 0.04 * (k - 0.5)  # side by side on the log axis
        axes[0].errorbar(ls * off, s["var"], yerr=s["var_se"], fmt="o", ms=4, capsize=2, label=f"{init}: MC ± 1 SE")
        axes[1].errorbar(ls * off, s["edge"], yerr=s["edge_se"], fmt="o", ms=4, capsize=2,
                         label=f"{init}: MC ± 1 SE")
    g = series["xavier_normal"]
    axes[0].plot(ls, g["var_pred"], "k-", lw=1, label=f"exact at N = {n} (Gaussian)")
    axes[0].fill_between(ls, np.array(g["var_pred"]) - g["var_tol"], np.array(g["var_pred"]) + g["var_tol"],
                         color="0.85", zorder=0, label="check tolerance (5 SE, Gaussian)")
    axes[0].plot(fine, fine, "k:", lw=1, label=r"$N\to\infty$: $L$")
    axes[1].plot(ls, g["edge_pred"], "k-", lw=1, label=f"finite-N prediction (N = {n}, Tracy–Widom)")
    axes[1].fill_between(ls, np.array(g["edge_pred"]) - g["edge_tol"], np.array(g["edge_pred"]) + g["edge_tol"],
                         color="0.85", zorder=0, label="check tolerance (5 SE + next-order bound)")
    axes[1].plot(fine, (fine + 1) ** (fine + 1) / fine**fine, "k:", lw=1,
                 label=r"$N\to\infty$: $(L+1)^{L+1}/L^L$")
    for ax in axes:
        ax.plot(ls, np.zeros_like(ls) if ax is axes[0] else np.ones_like(ls), "C3s-", ms=3, lw=1,
                label="orthogonal (MC)")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(depths))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("depth L", fontsize=11)
        ax.tick_params(labelsize=10)
        ax.legend(fontsize=8, loc="upper left")
    axes[0].set_ylabel(r"Var $\lambda$ (per matrix)", fontsize=11)
    axes[0].set_title(f"spread vs depth, N = {n}, {trials} products", fontsize=11)
    axes[1].set_ylabel(r"E $\lambda_{\max}$", fontsize=11)
    axes[1].set_title("top edge vs depth: finite N against N → ∞", fontsize=11)
    fig.tight_layout()
    name = "bjorck_spread_grows.png"
    atomic_savefig(fig, out_dir / name, dpi=110)
    return name


def run(size: str, device: str, out_dir: Path) -> dict:
    import rmt_init
    from rmt_init.montecarlo import product_spectrum

    t0 = time.perf_counter()
    cfg = SIZES[size]
    n, trials, depths = cfg["width"], cfg["trials"], cfg["depths"]
    checks: list[dict] = []
    series: dict[str, dict[str, list]] = {}
    edges = {d: finite_n_edge(rmt_init.fuss_catalan(d), n) for d in depths}
    for k, (init, kappa) in enumerate(INITS.items()):
        s = series.setdefault(init, {key: [] for key in ("var", "var_se", "var_pred", "var_tol", "edge", "edge_se",
                                                          "edge_pred", "edge_tol")})
        for depth in depths:
            res = product_spectrum(depth, n, init, trials=trials, seed=7000 + 100 * k + depth, device=device,
                                   stabilize=False)
            x = res.squared_singular_values
            per_var = np.mean(x**2, axis=1) - np.mean(x, axis=1) ** 2
            v_pred = rmt_init.finite_width_moments(n, depth, fourth_cumulant=kappa).per_matrix_variance
            v, v_se = mean_se(per_var)
            checks.append(check(f"Var λ {init} L={depth}", v_pred, v, SAFETY * v_se, stderr=v_se,
                                note=f"N→∞: {depth}"))
            e_pred, shift, e_bias = edges[depth]
            top, e_se = mean_se(x.max(axis=1))
            e_tol = e_bias + SAFETY * e_se
            e_inf = (depth + 1) ** (depth + 1) / depth**depth
            checks.append(check(f"edge {init} L={depth}", e_pred, top, e_tol, stderr=e_se, effect=abs(shift),
                                note=f"N→∞: {e_inf:.4g}"))
            for key, val in (("var", v), ("var_se", v_se), ("var_pred", v_pred), ("var_tol", SAFETY * v_se),
                             ("edge", top), ("edge_se", e_se), ("edge_pred", e_pred), ("edge_tol", e_tol)):
                s[key].append(val)
        for i in range(1, len(depths)):
            for key in ("var", "edge"):
                diff = s[key][i] - s[key][i - 1]
                se = math.hypot(s[key + "_se"][i], s[key + "_se"][i - 1])
                pred = s[key + "_pred"][i] - s[key + "_pred"][i - 1]
                checks.append(check(f"{key} grows {init} L={depths[i - 1]}→{depths[i]}", pred, diff, GROWTH_Z * se,
                                    stderr=se, passed=diff > GROWTH_Z * se, effect=pred,
                                    note=f"passes if the increase exceeds {GROWTH_Z:g} SE"))
    orth = []
    for depth in depths:
        res = product_spectrum(depth, n, "orthogonal", trials=max(4, trials // 10), seed=9000 + depth, device=device,
                               stabilize=False)
        dev = float(np.max(np.abs(res.squared_singular_values - 1.0)))
        orth.append(dev)
        checks.append(check(f"orthogonal max|σ²−1| L={depth}", 0.0, dev, 1e-10, effect=1e-3))
    fig_name = _figure(series, depths, n, trials, out_dir)
    key = {f"Var λ at L={depths[-1]} (Gaussian)": series["xavier_normal"]["var"][-1],
           f"edge at L={depths[-1]} (MC / finite-N / N→∞)":
               f"{series['xavier_normal']['edge'][-1]:.3f} / {edges[depths[-1]][0]:.3f} / "
               f"{(depths[-1] + 1) ** (depths[-1] + 1) / depths[-1] ** depths[-1]:.3f}",
           "orthogonal max|σ²−1|": max(orth)}
    return record("bjorck_spread_grows", __name__, size, config_for(__name__, size, device), checks,
                  [fig_name], t0, key)
