"""Finite width: Lyapunov exponents, the Hanin–Nica log-norm law, condition-number growth.

Sources: Newman 1986 (Lyapunov exponents of products of Gaussian matrices,
λ_i = ½[ψ((N−i+1)/2) + ln(2/N)], per-layer variances ¼ψ'((N−i+1)/2)); Hanin & Nica 2019/2020
(arXiv 1812.05994, Thm 1: ln‖Ju‖² is approximately Gaussian with variance ∝ β = Σ 1/n_l; exact finite-width
mean and variance in ``rmt_init.theory.log_norm_squared_law``); condition-number bounds
``rmt_init.theory.condition_number_growth`` (L Δ ≤ E ln κ ≤ (L + 2) Δ, Δ = λ_1 − λ_N).

Measured / tolerances (the notebook 03 reasoning):

* **Lyapunov exponents** at N = 2, 4, 8: QR-stabilised ``product_spectrum(L, N, stabilize=True)`` growth rates
  ln σ_i / L. Exact bounds L λ_i − Δ_{i−1} ≤ E ln σ_i ≤ L λ_i + Δ_i, with
  Δ_i = ½ Σ_{j≤i}[ψ((N−j+1)/2) − ψ((i−j+1)/2)] (volume argument on exterior powers; matrix-variate Beta
  law), so each rate must lie in [λ_i − Δ_{i−1}/L − 5 SE, λ_i + Δ_i/L + 5 SE]. The sum Σ ln σ_i = ln|det P|
  has mean L Σλ_i and variance L Σ v_i exactly: tolerance 5·sqrt(L Σv_i / trials).
* **Hanin–Nica**: real torch relu networks (Kaiming normal, widths 16, depth 6, β = 3/8); ‖Ju‖² for a random
  unit u independent of the net (the law is the same for every fixed u) = Σ λ_i c_i² with c uniform on
  the sphere. Mean and variance of ln‖Ju‖² (dead paths, probability ≈ 6·2⁻¹⁶, conditioned out) against the
  exact law, 5 SE (SE of the mean from the exact variance, of the variance from the sample fourth moment).
  Hanin–Nica's leading order (−5β/2, 5β) is reported, not checked (it is O(β²) off at β = 3/8).
* **condition number** at N = 8, L = 8, 64, 256 (QR): E ln κ within [lower_bound − 5 SE, lyapunov_mean + 5 SE].

Figure: Newman's exponents with the QR Monte Carlo, and the ln‖Ju‖² histogram with the exact Gaussian fit.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
from scipy.special import digamma

from ..common import SAFETY, atomic_savefig, check, config_for, mean_se, record

STATEMENT = ("At finite width the log singular values of Gaussian products grow at Newman's Lyapunov rates, "
             "ln‖Ju‖² of ReLU nets follows the exact finite-width (Hanin–Nica) law, and ln κ grows as predicted.")
SOURCE = "Newman 1986; Hanin & Nica 2020 (arXiv 1812.05994, Thm 1); condition_number_growth bounds (docs/derivations.md §6)"

SIZES = {
    "smoke": {"lyap_widths": [2, 4, 8], "lyap_depth": 200, "lyap_trials": 100, "hn_widths": [16] * 7,
              "hn_trials": 1000, "kappa_width": 8, "kappa_depths": [8, 64], "kappa_trials": 100},
    "default": {"lyap_widths": [2, 4, 8], "lyap_depth": 1000, "lyap_trials": 200, "hn_widths": [16] * 7,
                "hn_trials": 4000, "kappa_width": 8, "kappa_depths": [8, 64, 256], "kappa_trials": 200},
    "full": {"lyap_widths": [2, 4, 8], "lyap_depth": 2000, "lyap_trials": 1000, "hn_widths": [32] * 9,
             "hn_trials": 20000, "kappa_width": 8, "kappa_depths": [8, 64, 256], "kappa_trials": 1000},
}


def delta(n: int, i: int) -> float:
    """Δ_i = −E ln|det(V_iᵀF)| for a uniform i-frame F in R^n (Δ_0 = Δ_n = 0)."""
    return 0.5 * sum(digamma((n - j + 1) / 2) - digamma((i - j + 1) / 2) for j in range(1, i + 1))


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt

    from rmt_init.montecarlo import network_jacobian_spectrum, product_spectrum
    from rmt_init.theory import condition_number_growth, log_norm_squared_law, lyapunov_exponents, \
        lyapunov_variances

    t0 = time.perf_counter()
    cfg = SIZES[size]
    checks: list[dict] = []
    key: dict = {}
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    # --- Lyapunov exponents
    L, trials = cfg["lyap_depth"], cfg["lyap_trials"]
    worst = 0.0
    for n in cfg["lyap_widths"]:
        res = product_spectrum(L, n, trials=trials, seed=n, stabilize=True, device=device)
        rates, logsv = res.growth_rates, res.log_singular_values
        lam, v = lyapunov_exponents(n), lyapunov_variances(n)
        d = np.array([delta(n, i) for i in range(n + 1)])
        for i in range(n):
            m, se = mean_se(rates[:, i])
            lo, hi = lam[i] - d[i] / L - SAFETY * se, lam[i] + d[i + 1] / L + SAFETY * se
            worst = max(worst, abs(m - lam[i]))
            checks.append(check(f"Lyapunov λ_{i + 1} N={n}", lam[i], m, max(lam[i] - lo, hi - lam[i]), stderr=se,
                                passed=lo <= m <= hi, note=f"interval [{lo:.5f}, {hi:.5f}]"))
        logdet = logsv.sum(axis=1)
        se = math.sqrt(L * v.sum() / trials)
        checks.append(check(f"E ln|det P| N={n}", L * lam.sum(), logdet.mean(), SAFETY * se, stderr=se))
        i = np.arange(1, n + 1)
        line, = axes[0].plot((i - 0.5) / n, lam, "-", lw=1, label=f"N = {n}: Newman (line), QR Monte Carlo ± 1 SE")
        axes[0].errorbar((i - 0.5) / n, rates.mean(axis=0), yerr=rates.std(axis=0, ddof=1) / math.sqrt(trials),
                         fmt="o", ms=4, capsize=2, color=line.get_color())
    key["max |rate − λ_i|"] = worst
    u = np.linspace(0.0, 0.995, 200)
    axes[0].plot(u, 0.5 * np.log(1 - u), "k:", label="N → ∞: ½ ln(1 − i/N)")
    axes[0].set_xlabel("i / N", fontsize=10)
    axes[0].set_ylabel(r"$\lambda_i$", fontsize=10)
    axes[0].set_title(f"Lyapunov exponents (L = {L}, {trials} products)", fontsize=10)
    axes[0].legend(fontsize=8)
    # --- Hanin–Nica log-norm law with real torch relu nets
    widths = cfg["hn_widths"]
    law = log_norm_squared_law(widths, "relu")
    t = cfg["hn_trials"]
    res = network_jacobian_spectrum(len(widths) - 1, widths[0], "relu", "kaiming_normal", trials=t, seed=11,
                                    device=device, layer_stats=False)
    rng = np.random.default_rng(0)
    c = rng.standard_normal(res.squared_singular_values.shape)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    norm2 = (res.squared_singular_values * c**2).sum(axis=1)
    alive = np.log(norm2[norm2 > 0])
    dd = alive - alive.mean()
    se_mean = math.sqrt(law.var / alive.size)
    se_var = math.sqrt(max(np.mean(dd**4) - np.var(alive) ** 2, 0.0) / alive.size)
    checks.append(check(f"E ln‖Ju‖² relu widths {widths[0]}×{len(widths) - 1}", law.mean, alive.mean(),
                        SAFETY * se_mean, stderr=se_mean, note=f"HN leading order {law.leading_order_mean:.4f}"))
    checks.append(check(f"Var ln‖Ju‖² relu widths {widths[0]}×{len(widths) - 1}", law.var, float(np.var(alive)),
                        SAFETY * se_var, stderr=se_var, note=f"HN leading order 5β = {law.leading_order_var:.4f}"))
    se_n2 = float(norm2.std() / math.sqrt(t))
    checks.append(check("E‖Ju‖² (exact)", law.mean_norm2, norm2.mean(), SAFETY * se_n2, stderr=se_n2))
    key["Var ln‖Ju‖² (exact / MC / 5β)"] = f"{law.var:.4f} / {np.var(alive):.4f} / {law.leading_order_var:.4f}"
    bins = np.linspace(alive.min(), alive.max(), 60)
    axes[1].hist(alive, bins=bins, density=True, color="0.75", label=f"{t} torch relu nets")
    axes[1].plot(bins, law.as_scipy().pdf(bins), "C3-", label="Gaussian, exact mean/var")
    axes[1].set_xlabel(r"$\ln\|Ju\|^2$", fontsize=10)
    axes[1].set_ylabel("density", fontsize=10)
    axes[1].set_title(f"Hanin–Nica: ReLU widths {widths[0]}, depth {len(widths) - 1}, β = {law.beta:.3f}",
                      fontsize=10)
    axes[1].legend(fontsize=8)
    # --- condition number growth
    n = cfg["kappa_width"]
    for depth in cfg["kappa_depths"]:
        res = product_spectrum(depth, n, trials=cfg["kappa_trials"], seed=500 + depth, stabilize=True, device=device)
        lk = res.log_singular_values[:, 0] - res.log_singular_values[:, -1]
        m, se = mean_se(lk)
        pred = condition_number_growth(n, depth)
        lo, hi = pred.lower_bound - SAFETY * se, pred.lyapunov_mean + SAFETY * se
        checks.append(check(f"E ln κ N={n} L={depth}", pred.lyapunov_mean, m, hi - pred.lyapunov_mean, stderr=se,
                            passed=lo <= m <= hi, note=f"bounds [{pred.lower_bound:.3f}, {pred.lyapunov_mean:.3f}]"))
        key[f"E ln κ N={n} L={depth}"] = f"{m:.2f} in [{pred.lower_bound:.2f}, {pred.lyapunov_mean:.2f}]"
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "finite_width.png", dpi=110)
    return record("finite_width", __name__, size, config_for(__name__, size, device), checks, ["finite_width.png"],
                  t0, key)
