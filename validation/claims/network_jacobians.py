"""Input–output Jacobian spectra of real torch.nn networks at initialization match ``jacobian_spectrum``.

Source: Pennington, Schoenholz & Ganguli 2017 (NeurIPS, "Resurrecting the sigmoid", eqs. 9–16) and 2018
(AISTATS, "The emergence of spectral universality"): in the wide limit the squared singular values of
J = D_L W_L ⋯ D_1 W_1 follow the free multiplicative convolution of the weight laws and of φ'(h)²'s law at q*.

Measured: ``network_jacobian_spectrum(L, N, φ, ...)`` (torch.nn Linear → φ, torch.nn.init weights) for relu
with kaiming_normal (σ_w² = 2) and orthogonal (gain √2) weights, and tanh at its critical point
(σ_b² = 0.05, σ_w² = critical_sigma_w2, inputs at q*) with Gaussian and orthogonal weights.

Checks and tolerances:

* **mean** m1 = tr JJᵀ/N. ReLU: E m1 = 1 exactly at any N (flipping the sign of a row of W flips the unit's
  activity but not (w·v)², and sign flips preserve both weight laws), tolerance 5 SE. Tanh: 5 SE + 3L/N
  relative (O(1/N) fluctuation of q_l around q*; the bound used in notebook 02).
* **variance** of λ (pooled over the spectrum, per network): 5 SE + a finite-width bias (L + 1)·L/N relative.
  For linear nets the exact bias is (b − a − L)/L ≈ (L+1)/(2N)·… (``product_moments``); nonlinear nets
  add the q-fluctuation; the bound (L+1)L/N is ≥ 2× the values measured here (see the report's numbers).
* **relu atom at 0**: rank J = min_l K_l with K_l ~ Bin(N, ½) active units, so the zero fraction f has
  ½ ≤ E f ≤ ½ + √(2 ln L)/(2√N) (max of L sub-Gaussians) — ± 5 SE (engine test's bound).
* **relu KS** (closed-form cdf, atom included): 5·SE (per-trial ECDF spread) + the atom excess bound above
  + 2/N for the continuous part's finite-N bias.
* **tanh KS** (default/full only; the smooth law's cdf costs ~1–3 s per point, so it is evaluated by
  panel-wise tanh–sinh quadrature of the density at K sample quantiles, :func:`quadrature_cdf`): 5 SE + 3L/N
  + 1/K (the sup over all x exceeds the value at the K probes by at most the probes' level spacing).
* **edge** E λ_max vs ``law.upper_edge``: relative 5 SE + c_L N^{−2/3} (claim 1's Tracy–Widom-scale bound,
  applied with L replaced by 2L for relu: its edge behaves like a deeper product).

Figure: histograms of the torch spectra over the theory densities (``rmt_init.plot.density``; atoms as markers).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, edge_bias_coefficient, ks_with_se, mean_se, \
    record

STATEMENT = ("Squared singular values of real torch.nn network Jacobians (relu kaiming/orthogonal, critical tanh "
             "Gaussian/orthogonal) follow rmt_init.jacobian_spectrum (KS, mean, variance, edge, relu atom).")
SOURCE = "Pennington, Schoenholz & Ganguli 2017 (NeurIPS) eqs. 9–16; 2018 (AISTATS) spectral universality"

SIZES = {
    "smoke": {"depth": 3, "width": 64, "trials": 60, "tanh_ks": False},
    "default": {"depth": 4, "width": 128, "trials": 100, "tanh_ks": True, "tanh_ks_probes": 20},
    "full": {"depth": 8, "width": 1024, "trials": 20, "tanh_ks": True, "tanh_ks_probes": 30},
}
SIGMA_B2 = 0.05


def quadrature_cdf(law):
    """The smooth law's cdf at sorted points x > 0: tanh–sinh quadrature of its density on [0, x_1], [x_1, x_2], …

    Each panel is integrated separately (the density grows like x^{−L/(L+1)} at the hard edge 0 for Gaussian
    weights, so one panel per probe keeps the quadrature on the scale of the probe). A first attempt that
    tabulated the cdf on a 400-point Chebyshev grid (tanh–sinh only on the panels next to 0, trapezoids
    elsewhere, linear interpolation) lost ≈ 0.1 of mass below 1e−3 at L = 4 and gave a spurious KS of 0.16;
    panel-wise quadrature at the probes agrees with the torch networks to ~0.01 (N = 64–256).
    """
    from rmt_init.theory.laws import _tanhsinh

    def cdf(x):
        x = np.asarray(x, dtype=np.float64)
        lo = np.concatenate([[0.0], x[:-1]])
        return np.minimum(np.cumsum(_tanhsinh(law._pdf_vectorised, lo, x)), 1.0)

    return cdf


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt

    import rmt_init
    import rmt_init.plot
    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import critical_sigma_w2, q_star

    t0 = time.perf_counter()
    cfg = SIZES[size]
    L, n, trials = cfg["depth"], cfg["width"], cfg["trials"]
    checks: list[dict] = []
    key: dict = {}
    sw_tanh = critical_sigma_w2("tanh", SIGMA_B2)
    qs = q_star("tanh", sw_tanh, SIGMA_B2)
    cases = {
        "relu kaiming_normal": ("relu", "kaiming_normal", None, dict(init_kwargs={"nonlinearity": "relu"}),
                                dict(weights="gaussian", sigma_w2=2.0)),
        "relu orthogonal": ("relu", "orthogonal", None, dict(init_kwargs={"gain": math.sqrt(2.0)}),
                            dict(weights="orthogonal", sigma_w2=2.0)),
        "tanh critical gaussian": ("tanh", "gaussian", "gaussian",
                                   dict(sigma_w2=sw_tanh, sigma_b2=SIGMA_B2, bias=True,
                                        input_variance=(qs - SIGMA_B2) / sw_tanh),
                                   dict(weights="gaussian", sigma_w2=sw_tanh, sigma_b2=SIGMA_B2)),
        "tanh critical orthogonal": ("tanh", "gaussian", "orthogonal",
                                     dict(sigma_w2=sw_tanh, sigma_b2=SIGMA_B2, bias=True,
                                          input_variance=(qs - SIGMA_B2) / sw_tanh),
                                     dict(weights="orthogonal", sigma_w2=sw_tanh, sigma_b2=SIGMA_B2)),
    }
    fig, axes = plt.subplots(1, len(cases), figsize=(3.8 * len(cases), 3.3))
    for k, (label, (act, init, weights, mc_kw, th_kw)) in enumerate(cases.items()):
        res = network_jacobian_spectrum(L, n, act, init, weights=weights, trials=trials, seed=300 + k, device=device,
                                        layer_stats=False, **mc_kw)
        law = rmt_init.jacobian_spectrum(L, act, **th_kw)
        x = res.squared_singular_values
        mean_pred, var_pred = float(law.mean()), float(law.var())
        m1, s1 = mean_se(x.mean(axis=1))
        bias_m = 0.0 if act == "relu" else 3.0 * L / n
        checks.append(check(f"mean {label}", mean_pred, m1, SAFETY * s1 + bias_m * mean_pred, stderr=s1))
        v, sv = mean_se(x.var(axis=1))
        checks.append(check(f"variance {label}", var_pred, v, SAFETY * sv + (L + 1) * L / n * var_pred, stderr=sv))
        edge = float(law.upper_edge)
        top, se_top = mean_se(x.max(axis=1))
        c_l = edge_bias_coefficient(2 * L if act == "relu" else L)
        checks.append(check(f"edge {label}", edge, top, SAFETY * se_top + c_l * n ** (-2 / 3) * edge, stderr=se_top))
        key[f"{label} var (theory/MC)"] = f"{var_pred:.3f}/{v:.3f}"
        if act == "relu":
            zero = (x <= 1e-20 * x.max(axis=1, keepdims=True)).mean(axis=1)
            f, sf = mean_se(zero)
            excess = math.sqrt(2 * math.log(L)) / (2 * math.sqrt(n))
            lo, hi = 0.5 - SAFETY * sf, 0.5 + excess + SAFETY * sf
            checks.append(check(f"atom at 0 {label}", 0.5, f, hi - 0.5, stderr=sf, passed=lo <= f <= hi,
                                note=f"interval [{lo:.4f}, {hi:.4f}]"))
            snapped = np.where(x <= 1e-20 * x.max(axis=1, keepdims=True), 0.0, x)
            ks, se = ks_with_se(law.cdf, snapped, atoms=law.atoms)
            checks.append(check(f"KS {label}", 0.0, ks, SAFETY * se + excess + 2.0 / n, stderr=se))
            key[f"{label} KS"] = ks
        elif cfg["tanh_ks"]:
            probes = cfg["tanh_ks_probes"]
            ks, se = ks_with_se(quadrature_cdf(law), x, probes=probes)
            checks.append(check(f"KS {label}", 0.0, ks, SAFETY * se + 3.0 * L / n + 1.0 / probes, stderr=se,
                                note=f"cdf by quadrature at {probes} sample quantiles"))
            key[f"{label} KS"] = ks
        hi = min(edge * 1.05, float(np.quantile(x, 0.995)) * 1.2)
        axes[k].hist(x.ravel(), bins=60, range=(0, hi), density=True, color="0.75", label="torch nets")
        rmt_init.plot.density(law, ax=axes[k], n=300 if act == "relu" else 120, label="jacobian_spectrum")
        axes[k].set_xlim(0, hi)
        axes[k].set_title(f"{label}, L={L}, N={n}", fontsize=8)
        axes[k].legend(fontsize=5)
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "network_jacobians.png", dpi=90)
    return record("network_jacobians", __name__, size, config_for(__name__, size, device), checks,
                  ["network_jacobians.png"], t0, key)
