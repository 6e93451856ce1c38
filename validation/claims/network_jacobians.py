"""Input–output Jacobian spectra of real torch.nn networks at initialization match ``jacobian_spectrum``.

Source: Pennington, Schoenholz & Ganguli 2017 (NeurIPS, "Resurrecting the sigmoid", eqs. 9–16) and 2018
(AISTATS, "The emergence of spectral universality"): in the wide limit the squared singular values of
J = D_L W_L ⋯ D_1 W_1 follow the free multiplicative convolution of the weight laws and of φ'(h)²'s law at q*.

Measured: ``network_jacobian_spectrum(L, N, φ, ...)`` (torch.nn Linear → φ, torch.nn.init weights) for relu
with kaiming_normal (σ_w² = 2) and orthogonal (gain √2) weights, and tanh at its critical point
(σ_b² = 0.05, σ_w² = critical_sigma_w2, inputs at q*) with Gaussian and orthogonal weights.

Checks and tolerances (5 SE from the trial-to-trial spread, networks being the independent unit, plus a
stated bias bound where the finite-N value is not exact; ``effect`` as in :func:`validation.common.check`):

* **mean** m1 = tr JJᵀ/N. ReLU: E m1 = 1 exactly at any N (flipping the sign of a row of W flips the unit's
  activity but not (w·v)², and sign flips preserve both weight laws), tolerance 5 SE. Tanh: 5 SE + 3L/N
  relative (O(1/N) fluctuation of q_l around q* per layer; not derived in closed form).
* **variance** v = tr(JJᵀ)²/N − (tr JJᵀ/N)² per network, against its finite-N expectation. ReLU with
  Gaussian weights: exact, ``rmt_init.finite_width_moments(N, L, σ_w² = 2, activation="relu")``
  (e.g. 6.48 at N = 64, L = 3, against 2L = 6 at N → ∞), 5 SE. Other nets: the model of
  :func:`validation.common.masked_variance` (squared slopes i.i.d. and independent of the weights, with the
  law's ratio E m²/(E m)²; exact weight part), whose N → ∞ limit is ``law.var()``; bias bound = the masks'
  part of the model's finite-N correction (what the model does not capture is of that order; for Gaussian
  weights the weights' own part, the linear product's exact correction, is not in the bound).
* **relu atom at 0**: the zero fraction is exactly f = 1 − min_l K_l/N with K_l i.i.d. Bin(N, ½)
  (:func:`rmt_init.theory.relu_zero_fraction`, derived there): E f = 0.5528 at N = 64, L = 3, not the
  N → ∞ atom ½. Tolerance 5 SE with the exact standard deviation of f; ``effect`` = E f − ½, which the
  tolerance stays below (the check fails on the N → ∞ atom). Full size uses 50 networks so that 5 SE
  (0.0067 with 50 networks, 0.011 with 20) stays below the excess 0.022 at N = 1024, L = 8.
* **relu KS: reported, not checked.** The finite-N cdf of a ReLU Jacobian is not derived here: besides the
  atom, the binomial spread of the active counts makes the factors rectangular, which pushes the small
  nonzero eigenvalues away from 0; after correcting the atom exactly the pooled cdf still differs from the
  law by 0.026, 0.023, 0.019 (N = 64, 128, 256; L = 3, 400/200/50 nets), decaying slowly (≈ N^{−1/4}) and
  of the order of the KS distance between the depth-L and depth-(L ± 1) laws (0.04–0.07 at L = 3, 4), so a
  tolerance covering it could not tell neighbouring depths apart. Both KS values (against the N → ∞ law,
  and against it with the exact finite-N atom) are in ``key_numbers``.
* **tanh KS** (default/full only; the smooth law's cdf costs ~1–3 s per point, so it is evaluated by
  panel-wise tanh–sinh quadrature of the density at K sample quantiles, :func:`quadrature_cdf`): the
  statistic is the largest cdf distance over those K probes (a lower bound on the full KS distance, which
  exceeds it by at most the probes' level spacing 1/K); tolerance 5 SE + 1/N (the finite-N bias of E[ESD],
  as for Gaussian products). ``effect``: the distance to the depth-(L+1) law over the same probes.
* **edge** (tanh only): E λ_max against the Tracy–Widom-corrected finite-N edge
  (:func:`validation.common.finite_n_edge`, tolerance 5 SE + 1.5 N^{−1/3}|shift|). ``effect`` = the larger
  of |shift| and the distance to the nearest neighbouring depth's edge: the check rejects at least one of
  the N → ∞ edge and the depth-(L ± 1) edge (at smoke size the orthogonal net's shift, 3 %, is below 5 SE).
  ReLU edges are reported, not checked: the active-count fluctuation also moves the edge, at O(N^{−1/2})
  (relu orthogonal, N = 64, L = 3: measured 6.37 ± 0.03 against 6.53 Tracy–Widom-corrected, 6.75 at N → ∞).

Figure: histograms of the torch spectra (atoms left out and stated as masses) over the theory densities.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, finite_n_edge, ks_distance, ks_with_se, \
    masked_variance, mean_se, record, spectrum_panel

STATEMENT = ("Squared singular values of real torch.nn network Jacobians (relu kaiming/orthogonal, critical tanh "
             "Gaussian/orthogonal) follow rmt_init.jacobian_spectrum (KS, mean, variance, edge, relu atom).")
SOURCE = "Pennington, Schoenholz & Ganguli 2017 (NeurIPS) eqs. 9–16; 2018 (AISTATS) spectral universality"

SIZES = {
    "smoke": {"depth": 3, "width": 64, "trials": 60, "tanh_ks": False},
    "default": {"depth": 4, "width": 128, "trials": 100, "tanh_ks": True, "tanh_ks_probes": 20},
    "full": {"depth": 8, "width": 1024, "trials": 50, "tanh_ks": True, "tanh_ks_probes": 30},
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
    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import critical_sigma_w2, q_star, relu_zero_fraction

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
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.4))
    lin_corr = rmt_init.finite_width_moments(n, L).per_matrix_variance - L  # exact, linear Gaussian product
    for k, (label, (act, init, weights, mc_kw, th_kw)) in enumerate(cases.items()):
        res = network_jacobian_spectrum(L, n, act, init, weights=weights, trials=trials, seed=300 + k, device=device,
                                        layer_stats=False, **mc_kw)
        law = rmt_init.jacobian_spectrum(L, act, **th_kw)
        x = res.squared_singular_values
        w_law = th_kw["weights"]
        mean_pred, var_inf = float(law.mean()), float(law.var())
        m1, s1 = mean_se(x.mean(axis=1))
        bias_m = 0.0 if act == "relu" else 3.0 * L / n
        checks.append(check(f"mean {label}", mean_pred, m1, SAFETY * s1 + bias_m * mean_pred, stderr=s1))
        # variance: exact (relu, Gaussian weights) or the masked model with the masks' part as bias bound
        ratio = var_inf / L if w_law == "gaussian" else 1.0 + var_inf / L
        var_pred, var_model_inf = masked_variance(n, L, ratio, w_law)
        var_pred += var_inf - var_model_inf  # the model's N → ∞ limit is law.var() up to rounding
        if act == "relu" and w_law == "gaussian":
            var_bias, how = 0.0, "exact (finite_width_moments relu)"
        else:
            corr = var_pred - var_inf
            var_bias = abs(corr - lin_corr) if w_law == "gaussian" else abs(corr)
            how = f"masked model, bias bound {var_bias:.3g}"
        v, sv = mean_se(x.var(axis=1))
        checks.append(check(f"variance {label}", var_pred, v, SAFETY * sv + var_bias, stderr=sv,
                            note=f"{how}; N→∞: {var_inf:.4g}"))
        key[f"{label} var (finite-N / MC / N→∞)"] = f"{var_pred:.3f} / {v:.3f} / {var_inf:.3f}"
        edge_pred, shift, edge_bias = finite_n_edge(law, n)
        top, se_top = mean_se(x.max(axis=1))
        atom_lines = None
        if act == "relu":
            zero_mask = x <= 1e-20 * x.max(axis=1, keepdims=True)
            f, _ = mean_se(zero_mask.mean(axis=1))
            f_pred, f_sd = relu_zero_fraction(n, L)
            sf = f_sd / math.sqrt(trials)
            checks.append(check(f"atom at 0 {label}", f_pred, f, SAFETY * sf, stderr=sf, effect=f_pred - 0.5,
                                note=f"exact finite-N zero fraction; N→∞: 0.5"))
            snapped = np.where(zero_mask, 0.0, x)
            ks_inf, _ = ks_with_se(law.cdf, snapped, atoms=law.atoms)

            def cdf_n(y, f_n=f_pred):
                return f_n + (1.0 - f_n) * (np.asarray(law.cdf(y), dtype=np.float64) - 0.5) / 0.5

            ks_n, _ = ks_with_se(cdf_n, snapped, atoms=((0.0, f_pred),))
            key[f"{label} KS vs N→∞ law / with finite-N atom (not checked)"] = f"{ks_inf:.4f} / {ks_n:.4f}"
            key[f"{label} edge MC / TW-corrected / N→∞ (not checked)"] = \
                f"{top:.3f}±{se_top:.3f} / {edge_pred:.3f} / {float(law.upper_edge):.3f}"
            atom_lines = ["atom at λ = 0 (not in the histogram):", f"mass 0.5 at N → ∞, {f_pred:.3f} at N = {n} "
                          "(exact),", f"{f:.3f} measured"]
        else:
            neighbour = min(abs(float(rmt_init.jacobian_spectrum(d, act, **th_kw).upper_edge) - float(law.upper_edge))
                            for d in (L - 1, L + 1))
            checks.append(check(f"edge {label}", edge_pred, top, SAFETY * se_top + edge_bias, stderr=se_top,
                                effect=max(abs(shift), neighbour),
                                note=f"N→∞: {float(law.upper_edge):.4g}; effect: max(|shift|, distance to the "
                                     f"depth-L±1 edge {neighbour:.3g})"))
            if cfg["tanh_ks"]:
                probes = cfg["tanh_ks_probes"]
                ks, se = ks_with_se(quadrature_cdf(law), x, probes=probes)
                flat = np.sort(x.ravel())
                xq = np.unique(flat[np.linspace(0, flat.size - 1, probes).round().astype(int)])
                other = rmt_init.jacobian_spectrum(L + 1, act, **th_kw)
                resolving = ks_distance(quadrature_cdf(law), quadrature_cdf(other), xq)
                checks.append(check(f"KS {label}", 0.0, ks, SAFETY * se + 1.0 / n, stderr=se,
                                    effect=resolving, note=f"max over {probes} sample quantiles, cdf by quadrature; "
                                                           f"KS to the depth-{L + 1} law {resolving:.3f}"))
                key[f"{label} KS"] = ks
        spectrum_panel(axes.flat[k], law, x, f"{label}, L = {L}, N = {n}", atom_lines)
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "network_jacobians.png", dpi=110)
    return record("network_jacobians", __name__, size, config_for(__name__, size, device), checks,
                  ["network_jacobians.png"], t0, key)
