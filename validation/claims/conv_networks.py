"""Delta-orthogonal conv nets keep the orthogonal Jacobian law at depth; Gaussian kernels spread like Fuss–Catalan.

Source: Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018 (ICML, "Dynamical isometry and a mean field
theory of CNNs", arXiv 1806.05393, §§3–4 and Algorithm 2). Theory: :func:`rmt_init.theory.conv_jacobian_spectrum`
(the c → ∞ law equals the fully connected one), :func:`rmt_init.theory.conv_linear_moments` (exact finite-c
moments of linear circular Gaussian conv nets), docs/derivations.md §9.

Measured: per-example Jacobians (input → output over all positions and channels) of torch ``Conv2d`` nets,
circular padding, 3×3 kernels, 4×4 images, by ``network_jacobian_spectrum(architecture="conv")``; kernels
Gaussian (σ_w² = fan_in × variance) or ``weights="delta_orthogonal"``.

Checks and tolerances (networks are the independent unit; 5 SE plus a stated bias bound):

* **linear Gaussian, exact finite c** (c = 4, L = 3, many nets): m1 = σ_w^{2L} = 1 and m2 from Wick's theorem
  with the kernel's pseudo-variance (4.842 against 4 at c → ∞), 5 SE, no bias term (exact); ``effect`` of m2 =
  its distance to the c → ∞ value. At depth 50 with c = 16 the per-network m2 is too heavy-tailed to estimate
  (L/c ≫ 1: 40 nets gave 407 ± 249 against the exact 677, median 19), so the exact check is run where L/c < 1.
* **linear delta-orthogonal at the largest depth**: every squared singular value equals 1 (J = I ⊗ orthogonal),
  tolerance 1e-9; effect = the Gaussian-kernel law's variance L.
* **critical tanh at the largest depth** (q* = 1/64 on the critical line of PSG 2017, inputs at q*):
  delta-orthogonal nets' mean per-network variance against the orthogonal law's plus the spread of the
  per-position means caused by the inputs' χ²_c norms (:func:`rmt_init.theory.conv_position_spread`: at c = 16, L = 10 it is 0.0074
  against the law's 0.0169; measured first as an unexplained 70 % excess, then derived), tolerance 5 SE + (L/c)·var (the
  remaining finite-c corrections, not derived); Gaussian-kernel nets: one-sided, their median
  per-network variance exceeds the orthogonal law's by more than that tolerance (effect: the Gaussian law's
  variance L μ₂/μ₁² minus the orthogonal one).
* **KS** (default/full): delta-orthogonal critical tanh nets (depth 4, c = 32) against the orthogonal fully
  connected law at the pooled sample's quartiles (cdf by trapezoids of the density, :func:`grid_cdf`: the law's
  own cdf costs 10–100 s a point), tolerance 5 SE + 2/c (O(1/c) finite-width bias of the expected spectral
  distribution); effect: the distance to the depth-2L law at the same probes (the depth-(L + 1) law, 0.054
  away, is closer than 2/c at c = 32).

Figure: variance against depth (per-network spectra, median and quartiles) for both kernels with the theory
lines, the depth-L_max histograms of log₁₀ λ, the linear exact-moment check, and the KS panel's density.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, mean_se, record

STATEMENT = ("Delta-orthogonal conv nets keep the orthogonal fully connected Jacobian law at depth (linear: exactly; "
             "critical tanh: variance O(1)), Gaussian kernels spread like Fuss–Catalan (variance ~ L); linear "
             "circular Gaussian conv nets meet the exact finite-c moments.")
SOURCE = "Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018 (ICML, arXiv 1806.05393) §§3–4, Algorithm 2"

SIZES = {
    "smoke": {"depths": [2, 5, 10], "channels": 16, "image": 4, "trials": 6, "exact_trials": 800, "ks": False},
    "default": {"depths": [10, 25, 50], "channels": 16, "image": 4, "trials": 6, "exact_trials": 2000,
                "ks": True, "ks_depth": 4, "ks_channels": 32, "ks_trials": 16},
    "full": {"depths": [10, 25, 50, 100], "channels": 32, "image": 4, "trials": 16, "exact_trials": 6000,
             "ks": True, "ks_depth": 6, "ks_channels": 64, "ks_trials": 8},
}
Q_STAR = 1.0 / 64.0
EXACT = {"depth": 3, "channels": 4}


def grid_cdf(law, start: float, x: np.ndarray, points: int = 600) -> tuple[np.ndarray, float]:
    """∫_start^x of the law's density by trapezoids on a uniform grid up to its upper edge, and the grid's total
    mass. The smooth law's own cdf costs 10–100 s a point; its density costs ~20 ms, and the orthogonal tanh law
    has no mass near 0 (the total is reported, and any mass below ``start`` shows up in the KS distance)."""
    edge = float(law.upper_edge)
    g = np.linspace(start, edge, points)
    y = np.asarray(law.pdf(g), dtype=np.float64)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (y[1:] + y[:-1]) * np.diff(g))])
    return np.interp(x, g, cum), float(cum[-1])


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt

    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import conv_jacobian_spectrum, conv_linear_moments, conv_position_spread, \
        critical_point_from_q

    t0 = time.perf_counter()
    cfg = SIZES[size]
    depths, c, img, trials = cfg["depths"], cfg["channels"], cfg["image"], cfg["trials"]
    checks: list[dict] = []
    key: dict = {}
    conv = dict(architecture="conv", image_size=img, kernel_size=3, padding="circular", layer_stats=False,
                device=device)

    # ---- linear Gaussian: exact finite-c moments
    le, lc = EXACT["depth"], EXACT["channels"]
    pred = conv_linear_moments(le, lc, img)
    res = network_jacobian_spectrum(le, lc, "linear", weights="gaussian", sigma_w2=1.0, trials=cfg["exact_trials"],
                                    seed=700, **conv)
    x = res.squared_singular_values
    m1, s1 = mean_se(x.mean(axis=1))
    m2, s2 = mean_se((x**2).mean(axis=1))
    checks.append(check(f"linear Gaussian m1 (exact, c={lc}, L={le})", pred.m1, m1, SAFETY * s1, stderr=s1))
    checks.append(check(f"linear Gaussian m2 (exact finite c, c={lc}, L={le})", pred.m2, m2, SAFETY * s2, stderr=s2,
                        effect=abs(pred.m2 - pred.m2_c_infinite),
                        note=f"c → ∞ (Fuss–Catalan): {pred.m2_c_infinite:g}"))
    key["linear Gaussian m2 exact / MC / c→∞"] = f"{pred.m2:.4f} / {m2:.4f}±{s2:.4f} / {pred.m2_c_infinite:g}"

    # ---- depth sweep: linear delta-orthogonal, critical tanh with both kernels
    cp = critical_point_from_q("tanh", Q_STAR)
    tanh_kw = dict(sigma_w2=cp.sigma_w2, sigma_b2=cp.sigma_b2, bias=True,
                   input_variance=(Q_STAR - cp.sigma_b2) / cp.sigma_w2)
    L_max = depths[-1]
    res = network_jacobian_spectrum(L_max, c, "linear", weights="delta_orthogonal", sigma_w2=1.0, trials=2, seed=701,
                                    **conv)
    dev = float(np.max(np.abs(res.squared_singular_values - 1.0)))
    checks.append(check(f"linear delta-orthogonal: all λ = 1 (L={L_max})", 0.0, dev, 1e-9, effect=float(L_max),
                        note="effect: the Gaussian-kernel law's variance L"))
    sweep: dict[str, list] = {"delta_orthogonal": [], "gaussian": []}
    samples: dict[str, np.ndarray] = {}
    for i, L in enumerate(depths):
        for j, ens in enumerate(("delta_orthogonal", "gaussian")):
            r = network_jacobian_spectrum(L, c, "tanh", weights=ens, trials=trials, seed=710 + 10 * i + j,
                                          **tanh_kw, **conv)
            v = r.squared_singular_values.var(axis=1)
            sweep[ens].append(v)
            if L == L_max:
                samples[ens] = r.squared_singular_values
    laws = {ens: [conv_jacobian_spectrum(L, "tanh", weights=ens, sigma_w2=cp.sigma_w2, sigma_b2=cp.sigma_b2,
                                         channels=c) for L in depths] for ens in sweep}
    v_orth, v_gauss = float(laws["delta_orthogonal"][-1].var()), float(laws["gaussian"][-1].var())
    vd, sd = mean_se(sweep["delta_orthogonal"][-1])
    spread = conv_position_spread(L_max, cp.sigma_w2, cp.sigma_b2, tanh_kw["input_variance"], c)
    tol = SAFETY * sd + (L_max / c) * v_orth
    checks.append(check(f"tanh delta-orthogonal variance (L={L_max}, c={c})", v_orth + spread, vd, tol, stderr=sd,
                        effect=v_gauss - v_orth,
                        note=f"law {v_orth:.4g} + input-norm spread over positions {spread:.3g}; bias bound "
                             f"(L/c)·var; Gaussian-kernel law: {v_gauss:.4g}"))
    vg_med = float(np.median(sweep["gaussian"][-1]))
    checks.append(check(f"tanh Gaussian-kernel spread exceeds the orthogonal law (L={L_max}, one-sided)", v_orth,
                        vg_med, tol, passed=bool(vg_med - v_orth > tol), effect=v_gauss - v_orth,
                        note=f"median per-net variance {vg_med:.4g}; c → ∞ Gaussian law {v_gauss:.4g}"))
    key[f"tanh variance at L={L_max}: delta-orth MC / orth law; Gaussian median MC / Gaussian law"] = \
        f"{vd:.4f} / {v_orth:.4f}; {vg_med:.3g} / {v_gauss:.4g}"

    # ---- KS of delta-orthogonal tanh nets against the orthogonal law
    ks_law = ks_x = None
    if cfg["ks"]:
        Lk, ck = cfg["ks_depth"], cfg["ks_channels"]
        r = network_jacobian_spectrum(Lk, ck, "tanh", weights="delta_orthogonal", trials=cfg["ks_trials"], seed=790,
                                      **tanh_kw, **conv)
        ks_x = r.squared_singular_values
        ks_law = conv_jacobian_spectrum(Lk, "tanh", weights="delta_orthogonal", sigma_w2=cp.sigma_w2,
                                        sigma_b2=cp.sigma_b2, channels=ck)
        probes = np.quantile(ks_x.ravel(), [0.25, 0.5, 0.75])
        per = np.stack([np.searchsorted(np.sort(row), probes, side="right") / row.size for row in ks_x])
        start = 0.5 * float(ks_x.min())
        cdf, mass = grid_cdf(ks_law, start, probes)
        ks = float(np.max(np.abs(per.mean(axis=0) - cdf)))
        se = float(np.max(per.std(axis=0, ddof=1)) / math.sqrt(ks_x.shape[0]))
        deeper = conv_jacobian_spectrum(2 * Lk, "tanh", weights="delta_orthogonal", sigma_w2=cp.sigma_w2,
                                        sigma_b2=cp.sigma_b2)
        effect = float(np.max(np.abs(grid_cdf(deeper, start, probes)[0] - cdf)))
        checks.append(check(f"KS delta-orthogonal tanh vs orthogonal law (L={Lk}, c={ck}, quartiles)", 0.0, ks,
                            SAFETY * se + 2.0 / ck, stderr=se, effect=effect,
                            note=f"cdf by trapezoids of the density from {start:.3g} (mass there {mass:.5f}); "
                                 f"effect: distance to the depth-{2 * Lk} law at the probes"))
        key["law mass on the KS grid"] = mass
        key["KS delta-orth tanh (quartile probes)"] = ks

    # ---- figure
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.4))
    ax = axes[0]
    for ens, colour in (("delta_orthogonal", "C0"), ("gaussian", "C3")):
        v = sweep[ens]
        med = [float(np.median(a)) for a in v]
        lo = [float(np.quantile(a, 0.25)) for a in v]
        hi = [float(np.quantile(a, 0.75)) for a in v]
        ax.errorbar(depths, med, yerr=[np.subtract(med, lo), np.subtract(hi, med)], fmt="o", color=colour,
                    capsize=3, label=f"{ens} kernels: torch (median, quartiles)")
        ax.plot(depths, [float(law.var()) for law in laws[ens]], "-", color=colour, label=f"{ens}: theory (c → ∞)")
    ax.plot(depths, [float(law.var()) + conv_position_spread(L, cp.sigma_w2, cp.sigma_b2, tanh_kw["input_variance"], c)
                     for L, law in zip(depths, laws["delta_orthogonal"])], "--", color="C0",
            label="delta_orthogonal: theory + input-norm spread (finite c)")
    ax.set_yscale("log")
    ax.set_xlabel("depth L")
    ax.set_ylabel("variance of the spectrum of JJᵀ")
    ax.set_title(f"critical tanh conv nets (q* = 1/64), c = {c}, {img}×{img} images", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1]
    floor = -12.0  # squared singular values below 1e-12 are at the rounding floor of the deep Gaussian products
    for ens, colour in (("delta_orthogonal", "C0"), ("gaussian", "C3")):
        lx = np.log10(np.maximum(samples[ens].ravel(), 1e-300))
        ax.hist(lx[lx > floor], bins=np.linspace(floor, 3.0, 91), weights=np.full(np.sum(lx > floor), 1.0 / lx.size),
                histtype="step", color=colour, lw=1.4,
                label=f"{ens} kernels ({np.mean(lx <= floor):.0%} of λ below 1e-12, not shown)")
    ax.set_xlabel(r"$\log_{10}\lambda$")
    ax.set_ylabel("fraction of values per bin")
    ax.set_title(f"spectra at L = {L_max} (theory variances: {v_orth:.3g} vs {v_gauss:.3g})", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[2]
    if ks_law is not None:
        lo, hi = float(np.quantile(ks_x, 0.001)), float(ks_law.upper_edge) * 1.02
        bins = np.linspace(lo, hi, 50)
        ax.hist(ks_x.ravel(), bins=bins, density=True, color="0.78", label=f"torch delta-orth nets, c = {ck}")
        g = np.linspace(lo, float(ks_law.upper_edge) * 0.999, 60)
        ax.plot(g, ks_law.pdf(g), "C0-", label="orthogonal FC law (conv_jacobian_spectrum)")
        ks_value = key["KS delta-orth tanh (quartile probes)"]
        ax.set_title(f"critical tanh, delta-orthogonal, L = {cfg['ks_depth']}: KS {ks_value:.3f}", fontsize=10)
        ax.set_xlabel(r"$\lambda$")
    else:
        ax.bar(["exact finite c", "MC", "c → ∞"], [pred.m2, m2, pred.m2_c_infinite], color=["C0", "0.6", "C3"],
               yerr=[0, SAFETY * s2, 0])
        ax.set_title(f"linear Gaussian conv, c = {lc}, L = {le}: m2", fontsize=10)
    if ks_law is not None:
        ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "conv_networks.png", dpi=110)
    return record("conv_networks", __name__, size, config_for(__name__, size, device), checks,
                  ["conv_networks.png"], t0, key)
