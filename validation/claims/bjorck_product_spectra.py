"""Squared singular values of products of L classical-init Gaussian (and uniform) matrices follow Fuss–Catalan laws.

Source: Bjorck, Gomes, Selman & Weinberger, *Understanding Batch Normalization*, NeurIPS 2018, §4 and Fig. 7
(singular values of products of randomly initialised layers); the law: Penson & Życzkowski 2011
(arXiv 1103.3453) — ``rmt_init.fuss_catalan(L)``.

Measured: ``rmt_init.montecarlo.product_spectrum(L, N, init)`` for the square N × N inits xavier_normal,
kaiming_normal with the linear gain, lecun-normal (= Gaussian σ_w² = 1) and xavier_uniform, all with entry
variance 1/N, at L = 1, 2, 4 (smoke) and 8. Checks per (init, L):

* **KS** of the pooled spectrum against the FC cdf. Tolerance ``1/N + 5·SE``: SE is the largest standard
  error of the pooled empirical cdf over the probe points, estimated from the trial-to-trial spread of the
  per-matrix empirical cdfs (eigenvalues of one matrix are correlated; the matrices are the independent
  unit); ``1/N`` bounds the finite-N bias of E[ESD] against the N → ∞ law (measured KS·N ≤ 0.52 for
  L ≤ 8 at N = 64 and 128, 200 products; ≈ 2× margin). Resolving power (``effect``): the KS distance from
  FC_L to the nearest other depth's law, FC_{L±1} (0.155, 0.103, 0.064, 0.037 at L = 1, 2, 4, 8); the
  tolerance must stay below it. The distribution-free DKW bound with effective sample count = trials is
  reported in ``key_numbers`` (it is far looser).
* **moments** m1 = E tr JJᵀ/N and m2 = E tr (JJᵀ)²/N against the exact finite-N values
  ``rmt_init.finite_width_moments(N, L, fourth_cumulant=κ)`` (κ = 0 Gaussian, −6/5 uniform), tolerance 5 SE
  (per-matrix moments are i.i.d. across trials).
* **top edge**: E λ_max against its finite-N prediction ``E_L + shift``, the FC edge E_L = (L+1)^{L+1}/L^L
  moved by the Tracy–Widom mean at the scale set by the density's square-root coefficient at the edge
  (:func:`validation.common.finite_n_edge`: shift = −1.2065 (πC_L)^{−2/3} N^{−2/3}, e.g. −8 % at L = 2,
  −14 % at L = 8 for N = 64). Tolerance 5 SE + 1.5 N^{−1/3}|shift| (the next order, bound and measured
  residuals in that docstring). ``effect`` = |shift|: the check tells the finite-N edge from the N → ∞ one.

Figure: pooled histograms over the FC densities, one panel per depth.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, dkw_bound, finite_n_edge, ks_distance, ks_with_se, \
    mean_se, record

STATEMENT = ("Squared singular values of products of L Gaussian/uniform matrices with classical inits "
             "(variance 1/N) follow the Fuss–Catalan law of order L (KS, moments 1–2 at finite N, top edge).")
SOURCE = "Bjorck et al. 2018 (NeurIPS), §4 / Fig. 7; Penson & Życzkowski 2011 (Fuss–Catalan densities)"

SIZES = {
    "smoke": {"width": 64, "depths": [1, 2, 4], "trials": 200},
    "default": {"width": 128, "depths": [1, 2, 4, 8], "trials": 300},
    "full": {"width": 1024, "depths": [1, 2, 4, 8], "trials": 200},
}
# name -> (torch.nn.init name, init kwargs, sigma_w2 for the plain Gaussian, excess kurtosis of the entries)
INITS = {
    "xavier_normal": ("xavier_normal", None, None, 0.0),
    "kaiming_normal(linear)": ("kaiming_normal", {"nonlinearity": "linear"}, None, 0.0),
    "lecun_normal": ("gaussian", None, 1.0, 0.0),
    "xavier_uniform": ("xavier_uniform", None, None, -1.2),
}


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt

    import rmt_init
    from rmt_init.montecarlo import product_spectrum

    t0 = time.perf_counter()
    cfg = SIZES[size]
    n, trials, depths = cfg["width"], cfg["trials"], cfg["depths"]
    checks: list[dict] = []
    worst_ks = 0.0
    worst_edge = 0.0
    fig, axes = plt.subplots(1, len(depths), figsize=(4.2 * len(depths), 3.8))
    for j, depth in enumerate(depths):
        law = rmt_init.fuss_catalan(depth)
        edge = float(law.upper_edge)
        edge_pred, shift, edge_bias = finite_n_edge(law, n)
        grid_ks = np.geomspace(1e-10, (depth + 2) ** (depth + 2) / (depth + 1) ** (depth + 1), 4000)
        resolving = min(ks_distance(law.cdf, rmt_init.fuss_catalan(k).cdf, grid_ks)
                        for k in (depth - 1, depth + 1) if k >= 1)
        ax = axes[j]
        for k, (label, (init, kw, sw, kappa)) in enumerate(INITS.items()):
            res = product_spectrum(depth, n, init, trials=trials, seed=1000 * depth + k, device=device,
                                   sigma_w2=sw, init_kwargs=kw, stabilize=False)
            x = res.squared_singular_values
            tag = f"{label} L={depth}"
            ks, se = ks_with_se(law.cdf, x)
            worst_ks = max(worst_ks, ks)
            checks.append(check(f"KS {tag}", 0.0, ks, 1.0 / n + SAFETY * se, stderr=se, effect=resolving,
                                note=f"KS(FC_L, FC_L±1) = {resolving:.3f}"))
            fw = rmt_init.finite_width_moments(n, depth, fourth_cumulant=kappa)
            for order, pred in ((1, fw.m1), (2, fw.b)):
                m, s = mean_se(np.mean(x**order, axis=1))
                checks.append(check(f"m{order} {tag}", pred, m, SAFETY * s, stderr=s))
            top, s = mean_se(x.max(axis=1))
            worst_edge = max(worst_edge, abs(top - edge_pred) / edge_pred)
            checks.append(check(f"edge {tag}", edge_pred, top, edge_bias + SAFETY * s, stderr=s, effect=abs(shift),
                                note=f"N→∞: {edge:.4g}"))
            # outline only (no vertical lines down to the baseline: the first bin is tall, the density diverges at 0)
            h, edges_ = np.histogram(x.ravel(), bins=60, range=(0, edge * 1.05), density=True)
            ax.stairs(h, edges_, baseline=None, lw=1, label=f"{label} (MC)")
        grid = np.linspace(edge * 1e-3, edge * 0.999, 400)
        ax.plot(grid, law.pdf(grid), "k", lw=1.2, label=f"Fuss–Catalan L={depth}")
        ax.set(ylim=(0, 1.2 * float(law.pdf(np.array([min(0.3, edge / 4)]))[0])))
        ax.set_xlabel(r"$\lambda = \sigma^2$", fontsize=10)
        ax.set_title(f"L = {depth}, N = {n}, {trials} products", fontsize=10)
        ax.tick_params(labelsize=9)
        if j == 0:
            ax.set_ylabel("density (y-axis cut: → ∞ at λ → 0)", fontsize=10)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig_name = "bjorck_product_spectra.png"
    atomic_savefig(fig, out_dir / fig_name, dpi=110)
    key = {"worst KS": worst_ks, "worst |edge − finite-N prediction|/prediction": worst_edge,
           "KS tol (bias part 1/N)": 1.0 / n, "DKW(n_eff=trials)": dkw_bound(trials),
           "max |m2 err|/SE": max(abs(c["measured"] - c["predicted"]) / c["stderr"]
                                  for c in checks if c["name"].startswith("m2"))}
    return record("bjorck_product_spectra", __name__, size, config_for(__name__, size, device), checks, [fig_name],
                  t0, key)
