"""Batch normalization (train mode) makes gradients explode geometrically at initialization.

Source: Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz, *A Mean Field Theory of Batch Normalization*,
ICLR 2019 (arXiv 1902.08129), Thm 3.9 and §3: in a feed-forward Linear → BN → φ network the squared
gradient norm grows per layer (going backward) by a factor λ(φ, B) > 1 whatever the initialization;
linear φ: exactly (B − 2)/(B − 3); relu/tanh: ``rmt_init.theory.bn_gradient_growth(φ, B)``. The BN-free
critical network (relu, σ_w² = 2) has growth χ₁ = 1 (Schoenholz et al. 2017), exactly at any width.

Measured: ``rmt_init.montecarlo.network_layer_stats(L = 10, N, φ, "gaussian", σ_w² = 1, batchnorm="train",
batch_size=B)`` — real ``torch.nn`` BatchNorm1d networks, one forward + backward per trial — and its
``gradient_growth()`` (least-squares growth of the trial-mean E‖g_l‖² over layers 1..L−1, jackknife SE).

Tolerance: 5·SE + c/N, with c the finite-width bias bound measured in ``tests/test_bn_montecarlo.py``
(depth 10, 100 trials, N = 64–256): linear c = 3 (N ≥ 128), relu c = 2, tanh c = 2. B ≥ 6 throughout (for
linear nets the per-layer factor has infinite variance at B ≤ 5). The no-BN control: 5 SE only (exact).
Also checked: each BN growth exceeds 1 (the explosion) by more than 5 SE, and relu B = 8 vs B = 64 are
resolved (finite-batch theory, not only its large-batch limit).

Figure: ln E‖g_l‖² against l with the predicted slopes ln λ. Layers 1..L−1 (filled markers) are the fitted
steady state. Layer 0, the input, is drawn open and is not fitted: the input is raw N(0, 1) data, while every
deeper layer's input is φ(BN(·)) with per-coordinate variance Var φ(z) (z ~ N(0, 1): 1 linear,
½ − 1/(2π) = 0.341 relu, 0.394 tanh); the first BN divides by the std of W₁x₀, larger by 1/sqrt(Var φ(z)) than
in the steady state, so the gradient reaching the input carries an extra factor Var φ(z) — the predicted
offset ln Var φ(z) (−1.08 relu, −0.93 tanh, 0 linear) is drawn as ×, and matches (measured ≈ −1.0 and
−0.8 at smoke size). Layer L, the output, is drawn open too: there g_L = u is the unit output direction itself.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, record

STATEMENT = ("Train-mode BN networks' squared gradient norms grow by bn_gradient_growth(φ, B) > 1 per layer at "
             "initialization, while the BN-free critical network has χ₁ = 1.")
SOURCE = "Yang et al. 2019 (ICLR, arXiv 1902.08129), Thm 3.9 / §3; Schoenholz et al. 2017 (χ₁)"

SIZES = {
    "smoke": {"depth": 10, "width": 128, "trials": 50,
              "cases": [["linear", 6], ["linear", 8], ["relu", 8], ["relu", 64], ["tanh", 8], ["tanh", 64]]},
    "default": {"depth": 10, "width": 128, "trials": 100,
                "cases": [["linear", 6], ["linear", 8], ["linear", 16], ["relu", 8], ["relu", 64], ["tanh", 8],
                          ["tanh", 64]]},
    "full": {"depth": 16, "width": 1024, "trials": 200,
             "cases": [["linear", 6], ["linear", 8], ["linear", 16], ["relu", 8], ["relu", 64], ["tanh", 8],
                       ["tanh", 64]]},
}
BIAS_C = {"linear": 3.0, "relu": 2.0, "tanh": 2.0}
# Var φ(z), z ~ N(0, 1): the steady-state layer input's variance relative to the raw input's (= 1); tanh by
# 200-point Gauss–Hermite quadrature of tanh(z)² (E tanh(z) = 0)
INPUT_VAR_RATIO = {"linear": 1.0, "relu": 0.5 - 1.0 / (2.0 * math.pi), "tanh": 0.3942944903978}


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt

    from rmt_init.montecarlo import network_layer_stats
    from rmt_init.theory import bn_gradient_growth

    t0 = time.perf_counter()
    cfg = SIZES[size]
    depth, n, trials = cfg["depth"], cfg["width"], cfg["trials"]
    checks: list[dict] = []
    fig, ax = plt.subplots(figsize=(8.0, 5.2))
    layers = np.arange(depth + 1)
    est = {}
    for k, (act, batch) in enumerate(cfg["cases"]):
        res = network_layer_stats(depth, n, act, "gaussian", sigma_w2=1.0, batchnorm="train", batch_size=batch,
                                  trials=trials, seed=100 + k, device=device)
        g = res.gradient_growth()
        pred = bn_gradient_growth(act, batch)
        est[(act, batch)] = g
        checks.append(check(f"growth {act} B={batch}", pred, g.value, SAFETY * g.stderr + BIAS_C[act] / n,
                            stderr=g.stderr))
        checks.append(check(f"explodes {act} B={batch}", 1.0, g.value, SAFETY * g.stderr, stderr=g.stderr,
                            passed=g.value - 1.0 > SAFETY * g.stderr, effect=pred - 1.0,
                            note="passes if growth − 1 > 5 SE"))
        gm = np.log(res.layer_stats["grad_sq_norm"].mean(axis=0))
        gm -= gm[depth - 1]
        mid = slice(1, depth)
        line, = ax.plot(layers[mid], gm[mid], "o", ms=5, label=f"{act}, B = {batch}")
        c = line.get_color()
        ax.plot([0, depth], gm[[0, depth]], "o", ms=6, mfc="white", mec=c)
        ax.plot(layers[: depth], (depth - 1 - layers[: depth]) * math.log(pred), "--", lw=1, color=c)
        ax.plot([0], [(depth - 1) * math.log(pred) + math.log(INPUT_VAR_RATIO[act])], "x", ms=8, mew=2, color=c)
    if ("relu", 8) in est and ("relu", 64) in est:
        a, b = est[("relu", 8)], est[("relu", 64)]
        gap = bn_gradient_growth("relu", 8) - bn_gradient_growth("relu", 64)
        se = math.hypot(a.stderr, b.stderr)
        checks.append(check("relu B=8 minus B=64", gap, a.value - b.value, SAFETY * se + 4.0 / n, stderr=se))
    ctrl = network_layer_stats(depth, n, "relu", "gaussian", sigma_w2=2.0, batch_size=8, trials=trials, seed=99,
                               device=device)
    g = ctrl.gradient_growth()
    checks.append(check("no-BN critical relu growth (χ₁)", 1.0, g.value, SAFETY * g.stderr, stderr=g.stderr))
    gm = ctrl.layer_stats["grad_sq_norm"].mean(axis=0)
    ax.plot(layers, np.log(gm / gm[depth - 1]), "ks", ms=4, label="relu, no BN (χ₁ = 1)")
    ax.plot(layers, 0 * layers, "k--", lw=1)
    ax.plot([], [], "k--", lw=1, label="theory: slope −ln λ(φ, B)")
    ax.plot([], [], "ko", ms=6, mfc="white", label="layer 0 (input) and L (output): not fitted")
    ax.plot([], [], "kx", ms=8, mew=2, label="layer 0 predicted: + ln Var φ(z) (raw input)")
    ax.set_xlabel("layer l (0 = input)", fontsize=11)
    ax.set_ylabel(r"$\ln E\|g_l\|^2 - \ln E\|g_{L-1}\|^2$", fontsize=11)
    ax.set_title(f"BN gradient explosion: torch nets (markers) vs theory, N = {n}, {trials} nets each", fontsize=11)
    ax.tick_params(labelsize=10)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "bn_gradient_explosion.png", dpi=90)
    key = {f"{a} B={b}": f"{e.value:.4f}±{e.stderr:.4f} (pred {bn_gradient_growth(a, b):.4f})"
           for (a, b), e in est.items() if (a, b) in (("relu", 8), ("tanh", 64))}
    key["no-BN relu"] = f"{g.value:.4f}±{g.stderr:.4f}"
    return record("bn_gradient_explosion", __name__, size, config_for(__name__, size, device), checks,
                  ["bn_gradient_explosion.png"], t0, key)
