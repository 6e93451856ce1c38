"""BN-ResNet Jacobians: per-example spectra of train-mode batch-norm residual MLPs match the per-block-α law.

Source: De & Smith 2020 (NeurIPS, arXiv 2002.10444, §2): with BN at the end of each residual branch the stream
variance grows as q_l = q_0 + l and block l acts as I + α_l D_l W_l with α_l = 1/s_l (s_l the branch's pre-BN
batch std), so the depth parameter τ_L = Σ α_l² σ_w² E φ'² = c_φ(ψ(q_0 + L) − ψ(q_0)) grows like log L
(:mod:`rmt_init.theory.residual_bn`, docs/derivations.md §10); the law of the product is the free product of
Tarnowski et al. 2019 (arXiv 1809.08848), ``jacobian_spectrum(L, φ, residual=bn_residual_alphas(...))``.

Measured: torch ``rmt_init.montecarlo.ResidualMLP(N, L, activation, alpha=1, batchnorm=True, bias=False)`` in train
mode (float64, BN eps 1e−5), weights N(0, σ_w²/N) with σ_w² = 1 (linear) / 2 (relu) (BN makes the branch scale
invariant, so σ_w² only enters through α_l σ_w, which the law uses), a batch of B inputs with N(0, 1) entries
(q_0 = 1), L = 9, 27, 54 blocks (the residual blocks of ResNet-20/56/110). For example 0 of each network (networks
are the independent unit) the exact per-example Jacobian ∂x_L^0/∂x_0^0 — the diagonal block of the batch map, the
other inputs fixed, the batch statistics still moving with x^0 — by forward tangents of the whole batch (per unit
BN's batch Jacobian is (I − 11ᵀ/B − ŷŷᵀ/B)/s), checked against ``torch.func.jacrev`` of the module (max difference
1e−15). Two controls from the same networks: ``frozen`` Π(I + diag(φ'(h_l)/s_{l,i}) W_l) (batch statistics held
fixed: BN's O(1/B) per-example derivative terms dropped) and ``meanfield`` Π(I + α_l D_l W_l) (the law's factors,
theory α_l, the networks' own W_l and D_l).

Default size (N = B = 96, 8 networks; law in brackets):

==========  ================  ================  ================  ==========================
L           m1 exact          m1 frozen         m1 meanfield      m2 exact
==========  ================  ================  ================  ==========================
lin 9       9.970 (10)        10.58             9.98              417 (431)
lin 27      26.92 (28)        29.10             25.96             4234 (4896)
lin 54      52.56 (55)        57.68             54.47             19505 (22870)
relu 9      23.32 (23.32)     26.33             24.37             3557 (3269)
relu 27     108 ± 6 (103.4)   127               135               1.43e5 (9.47e4)
relu 54     367 ± 97 (276.7)  477               1886              1.04e7 (8.26e5)
==========  ================  ================  ================  ==========================

* **The two O(1/B) pieces cancel to leading order.** Frozen statistics overshoot: the per-unit batch std s_{l,i}
  fluctuates across units (relative O(1/B + 1/N), more at depth, where the stream's batch covariance is
  anisotropic), so mean_i 1/s_{l,i}² exceeds α_l² = 1/s_l² (measured ratio 1.05–1.20: the Jensen term); BN's
  per-example derivative (1 − 1/B − ŷ²/B, plus the feedback through the other examples' statistics) takes it back.
  Paired over the same networks (linear): frozen − exact = 6.1 %, 7.8 %, 9.3 % of m1 (0.61 ± 0.02, 2.18 ± 0.12,
  5.12 ± 0.18) against 2τ_L/B = 5.9 %, 8.1 %, 9.5 %; exact − meanfield = −0.01 ± 0.09, +0.96 ± 0.47, −1.9 ± 1.1
  (−0.1 %, +3.4 %, −3.5 %: zero within 2 SE — the net O(1/B) bias of the law is below ~3 % here). The exact
  m1 deficits at L = 27, 54 (−3.9 %, −4.4 %) are mostly sampling of the 8 networks: meanfield, whose E m1 = 1 + L
  is exact at every N for linear blocks, gives 25.96 ± 0.39 and 54.47 ± 0.89 on the same networks.
* **Tolerances.** m_k (k = 1, 2): 5 SE over networks + a bias bound k·2τ_L(1/B + 1/N) relative (the size of either
  O(1/B) piece above, no cancellation assumed, plus the same for the finite-N fluctuation of s_{l,i}); effect: the
  distance to a wrong law — for linear the α → 0 limit law exp(−τ(1 + 2w)) at the same τ_L (the BN blocks' first
  gains are O(1), not small), for relu the law with α_l = 1/√E φ² (no mean subtraction: c_φ = 1 instead of
  π/(π − 1)). Checks whose tolerance is not below the effect are reported, not checked.
* **ReLU: an outlier, and L²/N.** As for fixed-α relu residual nets (``residual_networks``), D_l = 1[h_l > 0] depends
  on W_l and relu(h) has a positive mean: the Jacobian maps x_{l−1} to x_{l−1} + relu(h_l)/s_l, whose constant part
  μ_l/s_l ≈ 0.68 per unit is not removed by BN's (batch-wise) centring of the forward pass; these pile up along
  (1, …, 1) and compound. At N = 96 the top eigenvalue is 3820 against λ₂ = 1568 at L = 27 and 21 270 against
  3916 at L = 54 (heavy-tailed over networks), so the full-spectrum moments carry λ_max^k/N; at L = 9 there is no
  separated outlier (λ_max ≈ the edge 368) and the full m1 is 23.32 ± 0.66 against 23.32. The relu checks use the
  spectrum with the top eigenvalue left out, with + λ₂^k/N in the bias bound (the removed value, were it a bulk
  one); the full moments are reported. With L²/N = 30 at L = 54 the relu net is far from N → ∞ (the batch std of
  the last blocks differs from the mean field by −15 %: mean 1/s² / α² = 0.85), so the relu L = 54 checks are weak
  (tolerance 0.7–0.9 × effect; m2 at L = 27 is reported, not checked) and at the smoke size (N = 48) no relu
  check resolves its effect (all reported); a sharp relu test at ResNet-110 depth needs N ≫ L² (thousands).
* **Plain vs fixed α vs BN** (linear, measured; relu theory only — fixed-α relu nets carry an outlier exponential
  in αL): α = 0.561 gives the fixed-α net the BN net's τ at L = 9. Depth parameter τ (fixed α / BN): 2.83 / 2.83,
  8.49 / 3.89, 16.97 / 4.58 at L = 9, 27, 54 — ∝ L against c_φ(ψ(1 + L) − ψ(1)) ~ log L (relu: 4.15 / 4.15,
  12.45 / 5.71, 24.9 / 6.71). Spectral variance, law (measured): plain 9, 27, 54 (9.5, 40.6, 73.4; the plain
  critical net has m1 = 1 and variance L); fixed α 519, 2.9e7, 1.5e14 (550, 3.1e7, 1.8e14); BN 331, 4112, 19 840
  (318, 3509, 16 740). The BN-ResNet's m1 = 1 + L and variance ~ L² grow polynomially where the fixed-α ResNet's
  grow like e^{τ} ∝ e^{cL}. Checked: the plain spectral variance against its exact finite-N value (Gaussian
  products, ``masked_variance``), the fixed-α m1 against (1 + α²)^L (exact at every N).
* **KS and top edge (L = 9).** The law's full cdf tables (down to its hard edge at 0) take 12–16 s for 9
  distinct blocks (they took minutes before the blocks were solved in (κ, 1 + ψ)), beyond the smoke budget with the
  wrong law's tables added, so the KS distance uses F(x) = 1 − ∫_x^edge ρ at 40 quantiles of the pooled sample
  above 10⁻⁴ of the edge (:func:`tail_cdf`: Gauss–Legendre in ln x between the probes, the density solved with
  the blocks stacked — ``ResidualBlockS.one_plus_psi_many``). Tolerance: 5 SE (networks the unit) + 1/N (finite N: one eigenvalue's
  mass) + ε·max xρ(x), ε = 2τ_L(1/B + 1/N) (the m1 bias bound read as a relative scale error of the spectrum,
  which moves F by at most ε·max xρ) — relu + 1/N for the outlier (one eigenvalue). Effect: the KS distance to the
  wrong law above. Top edge (linear): E λ_max against the law's edge, 5 SE + 1.5 σ_N + ε·edge, σ_N = (πCN)^(−2/3)
  (``residual_networks.tracy_widom_scale``); relu λ_max is the outlier's, reported. Deeper laws: the KS at 27
  and 54 blocks is not run (the quadrature's density solves scale with the number of blocks). Smoke size (N = 48,
  B = 64, 10 networks): KS 0.017 ± 0.006 (linear), 0.017 ± 0.008 (relu) against tolerances 0.081, 0.113 — not
  below the effects 0.055, 0.080, so reported, not checked (the ε·max xρ and 1/N terms dominate; at N = B = 96
  they halve); linear top edge 83.6 ± 5.0 against 107.8 (tolerance 69, effect 195: checked, weak — λ_max sits
  ~1.7 σ_N inside the edge at N = 48); ~5 s per law.

Figure: histograms of log10 λ for the plain, fixed-α and BN-residual linear nets at the largest depth (L = 54 at
the default size) over the theory densities.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, masked_variance, mean_se, record

STATEMENT = ("Per-example Jacobian spectra of torch ResidualMLP(batchnorm=True) in train mode (linear, relu) follow "
             "jacobian_spectrum(residual=bn_residual_alphas(L)) at ResNet-20/56/110 block counts (9, 27, 54), and "
             "the depth parameter grows like log L with BN against L for plain and fixed-α residual nets.")
SOURCE = "De & Smith 2020 (NeurIPS, arXiv 2002.10444); Tarnowski, Warchoł, Jastrzębski, Tabor & Nowak 2019 (arXiv 1809.08848)"

SIZES = {
    "smoke": {"width": 48, "batch": 64, "trials": 10, "depths": [9, 27], "compare_depths": [9, 27],
              "compare_trials": 10, "figure_density": False, "ks_depths": [9]},
    "default": {"width": 96, "batch": 96, "trials": 8, "depths": [9, 27, 54], "compare_depths": [9, 27, 54],
                "compare_trials": 12, "figure_density": True, "ks_depths": [9]},
    "full": {"width": 128, "batch": 192, "trials": 16, "depths": [9, 27, 54], "compare_depths": [9, 27, 54],
             "compare_trials": 20, "figure_density": True, "ks_depths": [9]},
}
SIGMA_W2 = {"linear": 1.0, "relu": 2.0}  # the critical plain-net values; the BN branch is scale invariant
Q0 = 1.0  # inputs i.i.d. N(0, 1) entries


def bn_resnet_jacobians(depth: int, width: int, batch: int, activation: str, sigma_w2: float, trials: int,
                        seed: int, device: str = "cpu", alphas_mf: np.ndarray | None = None,
                        check_autograd: bool = False, exact: bool = True) -> dict:
    """Per-example Jacobians of torch ``ResidualMLP(width, depth, batchnorm=True, bias=False)`` in train mode.

    x_l = x_{l−1} + BN(φ(W_l x_{l−1})) over a batch of ``batch`` inputs with i.i.d. N(0, 1) entries (q_0 = 1),
    W_l entries N(0, σ_w²/N). For example b = 0 of each network (the independent unit) returns squared
    singular values of

    * ``exact``: the diagonal block ∂x_L^b/∂x_0^b of the batch map (the other inputs fixed; the batch statistics
      still depend on x^b), by forward-mode tangents of all B examples: per unit i the BN Jacobian over the batch
      is (I − 11ᵀ/B − ŷ_iŷ_iᵀ/B)/s_i, so dy = (du − mean_c du − ŷ·mean_c(ŷ du))/s;
    * ``frozen``: Π_l (I + diag(φ'(h_l^b)/s_{l,i}) W_l), the batch statistics held fixed (drops the O(1/B) part);
    * ``meanfield`` (if ``alphas_mf``): Π_l (I + α_l diag φ'(h_l^b) W_l) with the theory's α_l, same W, h;

    and per block the mean over units of 1/s_{l,i}² (``inv_s2``, shape trials × depth) and the
    example's stream |x_l^b|²/N (``stream``). ``check_autograd``: the largest difference of ``exact`` (first
    network) from ``torch.func.jacrev`` of the ``ResidualMLP`` module (``autograd_gap``).
    """
    import torch

    from rmt_init.montecarlo import ResidualMLP

    dev = torch.device("cuda" if device == "cuda" and torch.cuda.is_available() else "cpu")
    gen = torch.Generator(device="cpu").manual_seed(seed)
    out: dict = {"exact": [], "frozen": [], "meanfield": [], "inv_s2": [], "stream": []}
    eye = torch.eye(width, dtype=torch.float64, device=dev)
    for t in range(trials):
        model = ResidualMLP(width, depth, activation=activation, alpha=1.0, batchnorm=True, bias=False,
                            dtype=torch.float64, device=dev)
        model.train()
        for blk in model.blocks:
            w = torch.randn(width, width, generator=gen, dtype=torch.float64) * math.sqrt(sigma_w2 / width)
            with torch.no_grad():
                blk.linear.weight.copy_(w.to(dev))
        x0 = torch.randn(batch, width, generator=gen, dtype=torch.float64).to(dev)
        x = x0
        tan = torch.zeros(width, batch if exact else 1, width, dtype=torch.float64, device=dev)  # e_k at example 0
        tan[:, 0, :] = eye
        frozen = eye.clone()
        mf = eye.clone() if alphas_mf is not None else None
        inv_s2, stream = [], []
        for layer, blk in enumerate(model.blocks):
            w = blk.linear.weight.detach()
            eps = blk.bn.eps
            h = x @ w.T
            hr = h.detach().requires_grad_(True)
            u = blk.act(hr)
            (dphi,) = torch.autograd.grad(u.sum(), hr)
            u, dphi = u.detach(), dphi.detach()
            mu = u.mean(0)
            s = torch.sqrt(u.var(0, unbiased=False) + eps)
            y = (u - mu) / s
            if exact:
                du = dphi * (tan @ w.T)
                dy = (du - du.mean(1, keepdim=True) - y * (y * du).mean(1, keepdim=True)) / s
                tan = tan + dy
            frozen = frozen + (dphi[0] / s)[:, None] * (w @ frozen)
            if mf is not None:
                mf = mf + float(alphas_mf[layer]) * dphi[0][:, None] * (w @ mf)
            inv_s2.append(float(torch.mean(1.0 / s**2)))
            x = x + y
            stream.append(float(x[0].square().mean()))
        with torch.no_grad():
            ref = model(x0)
        if not torch.allclose(ref, x, rtol=1e-10, atol=1e-10):
            raise RuntimeError("manual forward pass differs from ResidualMLP's")
        jac = tan[:, 0, :].T  # row: output unit, column: input direction k
        if check_autograd and t == 0 and exact:
            out["autograd_gap"] = _autograd_gap(model, x0, jac)
        with torch.no_grad():
            if exact:
                out["exact"].append((torch.linalg.svdvals(jac) ** 2).cpu().numpy())
            out["frozen"].append((torch.linalg.svdvals(frozen) ** 2).cpu().numpy())
            if mf is not None:
                out["meanfield"].append((torch.linalg.svdvals(mf) ** 2).cpu().numpy())
        out["inv_s2"].append(inv_s2)
        out["stream"].append(stream)
    return {k: (np.array(v) if isinstance(v, list) else v) for k, v in out.items()}


def _autograd_gap(model, x0, jac) -> float:
    """max |jac − ∂x_L^0/∂x_0^0| with the Jacobian from torch.func.jacrev of the module (train-mode BN; the running
    statistics are not tracked in a copy, as in rmt_init.montecarlo.model_jacobian)."""
    import copy

    import torch

    net = copy.deepcopy(model)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm1d):
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None

    def f(v):
        xb = torch.cat([v[None], x0[1:]], 0)
        return net(xb)[0]

    ref = torch.func.jacrev(f)(x0[0])
    return float(torch.max(torch.abs(ref.detach() - jac)))


_GAUSS = np.polynomial.legendre.leggauss(4)
_KS_PROBES = 40
_KS_LOW = 1e-4  # KS probes from this fraction of the top edge up
_KS_FLOOR = 1e-9  # probes below this fraction of the top edge take F there (the mass below is reported)


def tail_cdf(law, edge: float):
    """F(x) = 1 − ∫_x^edge ρ for a law without atoms whose density ends at ``edge``: 4-point Gauss–Legendre in ln x on
    panels ≤ 1 wide between the sorted probes (xρ(x) is smooth in ln x away from the top edge; a hard edge at 0 is
    never approached, so the law's full cdf tables — 12–16 s for 9 distinct blocks — are not needed). Probes at or
    above ``edge`` give 1, below ``_KS_FLOOR``·edge the value there. Returns (cdf, max xρ over the nodes seen)."""
    seen: dict = {"x_rho": 0.0}

    def cdf(x):
        x = np.asarray(x, dtype=np.float64)
        if x.tobytes() in seen:  # the same probes again (the KS and its effect)
            return seen[x.tobytes()]
        order = np.argsort(x)
        xs = np.clip(x[order], _KS_FLOOR * edge, edge)
        ends = np.log(np.concatenate([xs, [edge]]))
        count = np.maximum(1, np.ceil(np.diff(ends) / 1.0).astype(int))
        owner = np.repeat(np.arange(xs.size), count)
        start = np.concatenate([np.linspace(a, b, k + 1)[:-1] for a, b, k in zip(ends[:-1], ends[1:], count)])
        width = np.repeat(np.diff(ends) / count, count)
        g, gw = _GAUSS
        nodes = np.exp(start[:, None] + 0.5 * width[:, None] * (g[None, :] + 1.0))
        x_rho = np.asarray(law.pdf(nodes.ravel())).reshape(nodes.shape) * nodes
        seen["x_rho"] = max(seen["x_rho"], float(np.max(x_rho)))
        mass = np.zeros(xs.size)
        np.add.at(mass, owner, (x_rho * gw).sum(axis=1) * 0.5 * width)
        out = np.empty(x.shape)
        out[order] = 1.0 - np.cumsum(mass[::-1])[::-1]
        seen[x.tobytes()] = out = np.clip(out, 0.0, 1.0)
        return out

    return cdf, seen


def _ks_and_edge(act: str, depth: int, law, wrong, what: str, x: np.ndarray, tau: float, n: int, batch: int,
                 checks: list, key: dict) -> tuple:
    """KS distance of the networks' spectra to the law and (linear) the top edge (module docstring); returns the
    probes, the law's F, the networks' mean empirical F and the wrong law's F there (for the figure)."""
    from .residual_networks import tracy_widom_scale

    label = f"{act} L={depth}"
    edge = float(law.support[1])
    cdf, seen = tail_cdf(law, edge)
    # probes: _KS_PROBES quantiles of the pooled sample above _KS_LOW·edge (next to the hard edge at 0 each density
    # solve takes seconds: linear, 9 blocks), the per-network empirical cdfs there, SE from their spread (as in
    # ks_with_se)
    flat = np.sort(x.ravel())
    flat = flat[flat >= _KS_LOW * edge]
    grid = np.unique(flat[np.linspace(0, flat.size - 1, min(_KS_PROBES, flat.size)).round().astype(int)])
    per = np.stack([np.searchsorted(np.sort(r), grid, side="right") / r.size for r in x])
    law_f = cdf(grid)
    ks = float(np.max(np.abs(per.mean(0) - law_f)))
    se = float(np.max(per.std(0, ddof=1)) / math.sqrt(x.shape[0]))
    eps = 2.0 * tau * (1.0 / batch + 1.0 / n)  # the relative O(1/B + 1/N) scale bias of m1 (moment checks)
    shift = eps * seen["x_rho"]  # |F(x(1 + ε)) − F(x)| ≤ ε max xρ(x)
    outlier = 1.0 / n if act == "relu" else 0.0  # the relu outlier: one eigenvalue of N, at most 1/N of F
    tol = SAFETY * se + 1.0 / n + shift + outlier
    wrong_edge = float(wrong.support[1])
    wrong_cdf, _ = tail_cdf(wrong, wrong_edge)
    wrong_f = wrong_cdf(grid)
    effect = float(np.max(np.abs(law_f - wrong_f)))
    curves = (grid, law_f, per.mean(0), wrong_f)
    key[f"KS {label}: law F at the lowest probe {grid[0]:.3g}"] = float(cdf(grid)[0])
    note = (f"tolerance 5 SE + 1/N (finite N) + ε·max xρ = {shift:.3g} (ε = 2τ_L(1/B + 1/N) = {eps:.3g}, the m1 "
            f"bias bound as a scale error)" + (" + 1/N (the outlier)" if outlier else "") +
            f"; effect: the KS distance to {what}")
    if tol < effect:
        checks.append(check(f"KS {label}", 0.0, ks, tol, stderr=se, effect=effect, note=note))
    else:
        key[f"KS {label} (not checked: tolerance {tol:.3g} ≥ effect {effect:.3g})"] = f"{ks:.4f} (SE {se:.2g})"
    top, se_top = mean_se(x.max(axis=1))
    if act == "relu":  # λ_max is the outlier's (module docstring), not the edge's
        key[f"top edge {label} (not checked: the relu outlier): λ_max MC / law edge"] = f"{top:.4g}±{se_top:.2g} / {edge:.4g}"
        return curves
    sigma = tracy_widom_scale(law, edge, n)
    tol_e, effect_e = SAFETY * se_top + 1.5 * sigma + eps * edge, abs(wrong_edge - edge)
    note_e = (f"tolerance 5 SE + 1.5 σ_N + ε·edge, σ_N = (πCN)^(-2/3) = {sigma:.3g} (the finite-N shift of a "
              f"square-root edge, as in residual_networks), ε = {eps:.3g}; effect: the edge of {what}")
    if tol_e < effect_e:
        checks.append(check(f"top edge {label}", edge, top, tol_e, stderr=se_top, effect=effect_e, note=note_e))
    else:
        key[f"top edge {label} (not checked: tolerance {tol_e:.3g} ≥ effect {effect_e:.3g}): MC / law"] = (
            f"{top:.4g}±{se_top:.2g} / {edge:.4g}")
    return curves


def _bn_laws(depth: int, act: str):
    """(α_l, the BN-ResNet law, τ_L, the 'wrong' law the checks must tell apart, its description)."""
    from rmt_init.theory import jacobian_spectrum, residual_limit_law
    from rmt_init.theory.residual_bn import bn_residual_alphas, bn_residual_depth_parameter

    sw2 = SIGMA_W2[act]
    alphas = bn_residual_alphas(depth, act, q0=Q0, sigma_w2=sw2)
    law = jacobian_spectrum(depth, act, residual=alphas, weights="gaussian", sigma_w2=sw2, sigma_b2=0.0)
    tau = bn_residual_depth_parameter(depth, act, q0=Q0, sigma_w2=sw2)
    if act == "relu":  # BN without its mean subtraction (RMS scaling, α_l = 1/√E φ²): c_φ = 1 instead of π/(π − 1)
        wrong = jacobian_spectrum(depth, act, residual=alphas * math.sqrt(1.0 - 1.0 / math.pi), weights="gaussian",
                                  sigma_w2=sw2, sigma_b2=0.0)
        what = "the law with α_l = 1/√(E φ²) (no mean subtraction, c_φ = 1)"
    else:  # the small-α universal limit at the same τ (the BN blocks' first gains are O(1), not small)
        wrong = residual_limit_law(tau)
        what = "the α → 0 limit law exp(−τ(1 + 2w)) at the same τ_L"
    return alphas, law, tau, wrong, what


def run(size: str, device: str, out_dir: Path) -> dict:
    t0 = time.perf_counter()
    cfg = SIZES[size]
    n, batch, trials = cfg["width"], cfg["batch"], cfg["trials"]
    checks: list[dict] = []
    key: dict = {}
    spectra: dict = {}
    seed = 3000
    for act in ("linear", "relu"):
        for depth in cfg["depths"]:
            seed += 1
            alphas, law, tau, wrong, what = _bn_laws(depth, act)
            res = bn_resnet_jacobians(depth, n, batch, act, SIGMA_W2[act], trials, seed, device, alphas_mf=alphas,
                                      check_autograd=(seed == 3001))
            x = res["exact"]
            spectra[(act, depth)] = x
            label = f"{act} L={depth}"
            if "autograd_gap" in res:  # the hand-chained tangents against torch.func.jacrev of the module
                gap = res["autograd_gap"]
                frozen_gap = float(np.max(np.abs(np.mean(res["frozen"], 1) - np.mean(x, 1))))
                checks.append(check(f"exact diagonal block = torch.func.jacrev ({label}, first network)", 0.0, gap,
                                    1e-9 * float(np.max(x)), effect=frozen_gap / n,
                                    note="max entry difference; effect: the frozen-statistics Jacobian's m1 shift / N"))
            # the O(1/B) pieces, measured (see the module docstring): frozen statistics, mean-field α
            srt = np.sort(x, axis=1)
            lam2 = float(np.mean(srt[:, -2]))
            for k in (1, 2):
                pred = float(law.moment(k))
                bias = k * 2.0 * tau * (1.0 / batch + 1.0 / n)
                note = f"bias bound {bias:.3g} relative (k·2τ_L(1/B + 1/N), τ_L = {tau:.3f})"
                if act == "relu":  # the relu outlier (module docstring) is left out; the removed value ≤ ~λ₂ if bulk
                    full, full_se = mean_se(np.mean(x**k, axis=1))
                    key[f"m{k} {label} full spectrum (not checked): MC / law"] = f"{full:.5g}±{full_se:.2g} / {pred:.5g}"
                    m, se = mean_se(np.sum(srt[:, :-1] ** k, axis=1) / n)
                    tol = SAFETY * se + bias * pred + lam2**k / n
                    note += f" + λ₂^{k}/N = {lam2**k / n:.3g} (the removed eigenvalue, were it a bulk one)"
                    name = f"m{k} (top eigenvalue left out) {label}"
                else:
                    m, se = mean_se(np.mean(x**k, axis=1))
                    tol = SAFETY * se + bias * pred
                    name = f"m{k} {label}"
                effect = abs(float(wrong.moment(k)) - pred)
                for var in ("frozen", "meanfield"):
                    mv, sv = mean_se(np.mean(res[var] ** k, axis=1))
                    key[f"m{k} {label} {var}: MC / law"] = f"{mv:.5g}±{sv:.2g} / {pred:.5g}"
                if tol < effect:
                    checks.append(check(name, pred, m, tol, stderr=se, effect=effect,
                                        note=f"{note}; effect: distance to {what}"))
                else:
                    key[f"{name} (not checked: tolerance {tol:.3g} ≥ effect {effect:.3g}): MC / law"] = (
                        f"{m:.5g}±{se:.2g} / {pred:.5g}")
            if depth in cfg["ks_depths"]:
                t_ks = time.perf_counter()
                spectra[("ks", act, depth)] = _ks_and_edge(act, depth, law, wrong, what, x, tau, n, batch, checks, key)
                key[f"KS/edge {label}: seconds"] = round(time.perf_counter() - t_ks, 1)
            key[f"{label}: τ_L, mean 1/s² over units / α_l² (first, middle, last block)"] = (
                f"{tau:.4f}, " + ", ".join(f"{r:.3f}" for r in (res['inv_s2'].mean(0) / alphas**2)[[0, depth // 2, -1]]))
            key[f"{label}: stream |x_L|²/N MC / q_0 + L"] = f"{float(res['stream'][:, -1].mean()):.4g} / {Q0 + depth:g}"
            d, d_se = mean_se(np.mean(x, 1) - np.mean(res["meanfield"], 1))  # paired: the same W, h
            key[f"m1 {label}: exact − meanfield (paired, the net O(1/B) + batch-std terms)"] = f"{d:.4g}±{d_se:.2g}"
            d, d_se = mean_se(np.mean(res["frozen"], 1) - np.mean(x, 1))
            key[f"m1 {label}: frozen − exact (paired, BN's per-example derivative terms)"] = f"{d:.4g}±{d_se:.2g}"
    _compare(cfg, device, checks, key, spectra)
    return _finish(size, device, out_dir, cfg, checks, key, spectra, t0)


def _compare(cfg: dict, device: str, checks: list, key: dict, spectra: dict) -> None:
    """Plain vs fixed-α residual vs BN-residual (linear, measured; relu: theory) at the same depths.

    Fixed α: α² σ_w² μ₁ = τ_BN(L_min)/L_min, the same depth parameter as the BN net at the shallowest depth;
    then τ = L α² σ_w² μ₁ grows ∝ L, the BN net's τ_L like log L, and the plain critical net's spectral
    variance (L for linear, 2L relu) ∝ L."""
    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import jacobian_spectrum, residual_depth_parameter

    from .residual_networks import torch_residual_jacobians

    n, trials, depths = cfg["width"], cfg["compare_trials"], cfg["compare_depths"]
    lmin = depths[0]
    for act in ("linear", "relu"):
        sw2 = SIGMA_W2[act]
        tau_min = _bn_laws(lmin, act)[2]
        alpha = math.sqrt(tau_min / residual_depth_parameter(lmin, act, 1.0, sw2))  # linear/relu: τ ∝ α² exactly
        key[f"compare {act}: fixed α (τ matched to the BN net at L={lmin})"] = f"{alpha:.4f}"
        for depth in depths:
            _, bn_law, tau_bn, _, _ = _bn_laws(depth, act)
            plain = jacobian_spectrum(depth, act, weights="gaussian", sigma_w2=sw2)
            fixed = jacobian_spectrum(depth, act, residual=alpha, weights="gaussian", sigma_w2=sw2)
            tau_fixed = residual_depth_parameter(depth, act, alpha, sw2)

            def var(law):
                return float(law.moment(2)) - float(law.moment(1)) ** 2

            key[f"compare {act} L={depth}: τ fixed-α / τ BN; law variance plain / fixed-α / BN"] = (
                f"{tau_fixed:.3f} / {tau_bn:.3f}; {var(plain):.4g} / {var(fixed):.4g} / {var(bn_law):.4g}")
            if act != "linear":
                continue  # relu fixed-α residual nets carry the N-independent outlier (residual_networks): theory only
            seed = 5000 + depth
            xp = network_jacobian_spectrum(depth, n, "linear", batchnorm=None, weights="gaussian", sigma_w2=sw2,
                                           trials=trials, seed=seed, device=device,
                                           layer_stats=False).squared_singular_values
            xf = torch_residual_jacobians(depth, n, "linear", alpha, trials, seed=seed + 1, device=device)
            spectra[("plain", depth)], spectra[("fixed", depth)] = xp, xf
            vp, sp = mean_se(np.mean(xp**2, 1) - np.mean(xp, 1) ** 2)
            pred_p = masked_variance(n, depth, 1.0, "gaussian")[0]  # exact finite-N variance of a Gaussian product
            checks.append(check(f"compare: plain linear L={depth} spectral variance (finite N, exact)", pred_p, vp,
                                SAFETY * sp, stderr=sp, effect=abs(pred_p - var(bn_law)),
                                note="tolerance 5 SE (the prediction is exact at this N); effect: the BN-ResNet law's "
                                     "variance at the same depth"))
            mf_, sf_ = mean_se(np.mean(xf, 1))
            pred_f = (1.0 + alpha**2 * sw2) ** depth  # E tr JJᵀ/N, exact at every N for linear blocks
            key[f"compare linear L={depth} m1 fixed-α: MC / (1 + α²)^L / BN law"] = (
                f"{mf_:.5g}±{sf_:.2g} / {pred_f:.5g} / {float(bn_law.moment(1)):.5g}")
            if depth > lmin:  # at L_min the two nets share τ by construction: nothing to resolve
                checks.append(check(f"compare: fixed-α linear residual L={depth} m1 = (1 + α²)^L", pred_f, mf_, SAFETY * sf_,
                                    stderr=sf_, effect=abs(pred_f - float(bn_law.moment(1))),
                                    note="exact at every N; tolerance 5 SE; effect: the BN-ResNet's m1 = 1 + L"))
            vf, sfv = mean_se(np.mean(xf**2, 1) - np.mean(xf, 1) ** 2)
            key[f"compare linear L={depth} measured variance plain / fixed-α / BN (law: above)"] = (
                f"{vp:.4g}±{sp:.2g} / {vf:.4g}±{sfv:.2g} / " + (
                    "{:.4g}±{:.2g}".format(*mean_se(np.mean(spectra[("linear", depth)] ** 2, 1)
                                                   - np.mean(spectra[("linear", depth)], 1) ** 2))
                    if ("linear", depth) in spectra else "not run"))


def _finish(size: str, device: str, out_dir: Path, cfg: dict, checks: list, key: dict, spectra: dict,
            t0: float) -> dict:
    """The figure (plain / fixed-α residual / BN-residual linear spectra at the largest depth, on log10 λ) and
    the record."""
    import matplotlib.pyplot as plt

    from rmt_init.theory import jacobian_spectrum, residual_depth_parameter

    depth = cfg["compare_depths"][-1]
    lmin = cfg["compare_depths"][0]
    tau_min = _bn_laws(lmin, "linear")[2]
    alpha = math.sqrt(tau_min / residual_depth_parameter(lmin, "linear", 1.0, 1.0))
    _, bn_law, tau_bn, _, _ = _bn_laws(depth, "linear")
    laws = {
        "plain": (jacobian_spectrum(depth, "linear", weights="gaussian", sigma_w2=1.0),
                  f"plain linear net, L = {depth} (critical, σ_w² = 1)"),
        "fixed": (jacobian_spectrum(depth, "linear", residual=alpha, weights="gaussian", sigma_w2=1.0),
                  f"residual, fixed α = {alpha:.3f}: τ = {depth * alpha**2:.2f}"),
        "linear": (bn_law, f"BN-residual (train mode, B = {cfg['batch']}): τ_L = {tau_bn:.2f}"),
    }
    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    for ax, (name, (law, title)) in zip(axes[0], laws.items()):
        x = spectra[(name, depth)]
        logs = np.log10(np.clip(x.ravel(), 1e-300, None))
        lo, hi = float(np.quantile(logs, 0.002)), float(np.max(logs)) + 0.3
        bins = np.linspace(lo, hi, 50)
        ax.hist(logs, bins=bins, density=True, color="0.78", label=f"torch nets ({x.shape[0]} × {x.shape[1]})")
        if cfg["figure_density"]:  # density of log10 λ: ρ(λ) λ ln 10
            g = np.linspace(lo, hi, 40)
            lam = 10.0**g
            ax.plot(g, np.asarray(law.pdf(lam)) * lam * math.log(10.0), "C0-", lw=1.5, label="theory density")
        m1, m2 = float(law.moment(1)), float(law.moment(2))
        ax.axvline(math.log10(m1), color="C3", ls="--", lw=1.2, label=f"law mean {m1:.3g}")
        extra = {"plain": "\n(spike near 1e−31: the SVD's rounding\nfloor, σ_min/σ_max ≈ 1e−16)"}.get(name, "")
        ax.text(0.03, 0.95, f"law variance {m2 - m1 * m1:.3g}\nMC mean {float(np.mean(x)):.3g}{extra}",
                transform=ax.transAxes, va="top", fontsize=8, bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(r"$\log_{10}\lambda$ (squared singular values, per-example Jacobian)", fontsize=9)
        ax.set_ylabel("density of log10 λ", fontsize=9)
        ax.legend(fontsize=7, loc="center right")
    shallow = cfg["depths"][0]
    for ax, act in zip(axes[1, :2], ("linear", "relu")):  # the BN law's shape at the shallowest depth
        x = spectra[(act, shallow)]
        law = _bn_laws(shallow, act)[1]
        hi = float(np.quantile(x, 0.995)) * 1.1
        bins = np.linspace(0.0, hi, 60)
        ax.hist(x.ravel(), bins=bins, density=True, color="0.78", label=f"torch BN-ResNets ({x.shape[0]} × {x.shape[1]})")
        if cfg["figure_density"]:
            g = np.linspace(hi / 60, hi, 30)
            ax.plot(g, law.pdf(g), "C2-", lw=1.5, label="law density: jacobian_spectrum(residual=bn_residual_alphas)")
        ax.set_yscale("log")
        if ("ks", act, shallow) in spectra:  # the KS comparison: cumulative distributions on a second axis
            grid, law_f, mc_f, wrong_f = spectra[("ks", act, shallow)]
            sel = grid <= hi
            grid, law_f, mc_f, wrong_f = grid[sel], law_f[sel], mc_f[sel], wrong_f[sel]
            twin = ax.twinx()
            twin.step(grid, mc_f, "k-", where="post", lw=1, label="torch nets: mean empirical cdf")
            twin.plot(grid, law_f, "C0.-", ms=3, lw=1, label="law cdf (tail quadrature)")
            twin.plot(grid, wrong_f, "C3:", lw=1, label="wrong law's cdf (the KS effect)")
            twin.set_ylim(0.0, 1.02)
            twin.set_ylabel("cumulative distribution", fontsize=9)
            twin.legend(fontsize=7, loc="center right")
        ax.set_title(f"BN-residual {act}, L = {shallow}, B = {cfg['batch']}", fontsize=10)
        ax.set_xlabel(r"$\lambda$", fontsize=9)
        ax.set_ylabel("density (log scale)", fontsize=9)
        ax.legend(fontsize=7, loc="lower center")  # the cdfs fill the upper part
    ax = axes[1, 2]  # log m1 against depth: ∝ L with a fixed α, ~ log L with BN
    ls = np.arange(1, depth + 1)
    ax.plot(ls, [math.log((1 + alpha**2) ** l) for l in ls], "C1-", label=f"fixed α = {alpha:.3f}: L log(1 + α²)")
    ax.plot(ls, np.log1p(ls / Q0), "C0-", label="BN: log(1 + L/q₀)")
    for name, color in (("fixed", "C1"), ("linear", "C0")):
        pts = [(d, float(np.mean(spectra[(name, d)]))) for d in cfg["compare_depths"] if (name, d) in spectra]
        ax.plot([d for d, _ in pts], [math.log(v) for _, v in pts], "o", color=color, ms=6)
    ax.plot([], [], "ko", ms=5, label="torch nets (mean m1)")
    ax.set_xlabel("depth L (blocks)", fontsize=9)
    ax.set_ylabel(r"$\log m_1$ (linear nets)", fontsize=9)
    ax.set_title("the mean squared singular value against depth", fontsize=10)
    ax.legend(fontsize=7)
    fig.suptitle(f"Per-example Jacobian spectra, width N = {cfg['width']}: with BN the residual net behaves like a "
                 f"log-depth one", fontsize=11)
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "bn_residual_networks.png", dpi=110)
    return record("bn_residual_networks", __name__, size, config_for(__name__, size, device), checks,
                  ["bn_residual_networks.png"], t0, key)
