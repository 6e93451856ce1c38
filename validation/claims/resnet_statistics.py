"""CIFAR ResNets at initialization: without batch norm activations grow geometrically with depth, with it additively.

Source: Bjorck, Gomes, Selman & Weinberger, *Understanding Batch Normalization*, NeurIPS 2018 (arXiv 1806.02375),
§3: in a ResNet-110 without BN "activations grow uncontrollably with network depth" and the gradients of the last
layers are large; with BN they stay controlled. De & Smith 2020 (NeurIPS, arXiv 2002.10444): BN at the end of
a residual branch makes the skip path accumulate variance only additively. Networks: ``cifar_resnet`` (He et al.
2016 §4.2, option A, post-activation blocks ``x_out = φ(h₂ + s)``), ``kaiming_normal_`` fan_in relu weights,
zero biases, train-mode BN (γ = 1, β = 0), i.i.d. N(0, 1) 3×32×32 inputs; statistics by ``model_layer_stats``
(cross-entropy against random labels). q = mean square of a block output (act_std² + act_mean²).

Derivation (expectations over the weights). Flipping the last conv W₂ → −W₂ flips the branch h₂ (and BN(h₂), BN
being odd at β = 0) and nothing else, so given everything before it h₂ is symmetric: E[h₂ s] = 0 and, for the
shortcut s ≥ 0, E φ(h₂ + s)² ≥ ½ E(h₂ + s)² (pair ±|h₂|); also φ(z)² ≤ z².
* No BN: E h₁² = 2ρ q_in, E φ(h₁)² = ½ E h₁², E h₂² = 2ρ E φ(h₁)², with ρ = ((3S − 2/stride)/(3S))² the share of
  3×3 taps inside the zero-padded map at output size S (border activations not larger than inner ones). An
  identity block multiplies q by ≥ ½ + ρ² (1.419 at S = 32, 1.343 at 16, 1.206 at 8); a downsampling block
  (s keeps half the channels) by ≥ ½(½ + 2ρ_stride2 ρ). Over the net, q_last/q_stem ≥ Π_n (Π_9 = e^7.1 for
  ResNet-56, Π_18 = e^14.6 for ResNet-110): geometric growth.
* BN: E h₂² = v/(v + eps) ≤ 1, so E q_out ≤ 1 + E q_s, and q_s ≤ q_in (identity, or half the channels of a
  subsample): q_last ≤ q_stem + 3n: additive growth (q ~ l, std ~ √l).
Checks (one-sided, 5 SE over independent initializations): the two growth bounds over the whole net, each
block's BN increment q_out − q_s ≤ 1 (q_s measured at the shortcut module), and the no-BN per-block growth in
stage 1 ≥ ln 1.419. The effect of the whole-net checks is the gap ln Π_n − ln(1 + 6n) between the geometric
lower bound and the additive upper bound (q_stem = ½ with BN): 3.1 at ResNet-56, 9.9 at ResNet-110; ResNet-20
is too shallow for these loose bounds to separate, so the smoke size is ResNet-56 at a small batch.

Reported, not checked (no derived prediction): the fc weight-gradient norm with and without BN, and the share of
the gradient norm² carried by the top-1 example (per-example contributions; k/B when all examples contribute
equally). With i.i.d. Gaussian inputs and no biases a relu ResNet is positively homogeneous, so an example's
activations scale with its input norm and not with depth: the shares stay near k/B in both nets; without BN the
logits are so large that the softmax saturates and the output gradients are input-independent one-hot
differences (‖g_b‖² ≈ 2 or 0), whose share is 1/#(misclassified examples).

Measured at the default size (ResNet-110, batch 8, 8 initializations per net, CPU, 27 s): ln q_last/q_stem = 39.3
without BN (bound ≥ 14.6; ≈ 0.73 per block, the variance doubling per block) and 3.99 with BN (bound ≤ 4.69); BN
increments 0.85 per block on average (worst block 0.95 ≤ 1); fc weight-gradient norm 3.4e10 without BN, 240 with;
top-1 example share at fc 0.153 in both (equal share 0.125).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, mean_se, record

STATEMENT = ("At initialization a CIFAR ResNet without BN has activations growing geometrically with depth "
             "(≥ ½ + ρ² per block), with BN only additively (≤ +1 per block).")
SOURCE = "Bjorck et al. 2018 (NeurIPS, arXiv 1806.02375) §3; De & Smith 2020 (arXiv 2002.10444); He et al. 2016"

SIZES = {
    "smoke": {"depth": 56, "batch": 4, "trials": 8},
    "default": {"depth": 110, "batch": 8, "trials": 8},
    "full": {"depth": 110, "batch": 32, "trials": 16},
}


def rho(size: int, stride: int = 1) -> float:
    """Share of 3×3 taps inside the zero-padded input at output size ``size`` (2 padded rows of 3·size per
    dimension at stride 1, 1 at stride 2)."""
    return ((3 * size - 2 / stride) / (3 * size)) ** 2


def no_bn_log_bounds(n: int) -> np.ndarray:
    """Per-block lower bounds of ln(q_out/q_in) without BN, for the 3n blocks in order."""
    out = []
    for stage, size in enumerate((32, 16, 8)):
        for i in range(n):
            if stage > 0 and i == 0:
                out.append(math.log(0.5 * (0.5 + 2 * rho(size, 2) * rho(size))))
            else:
                out.append(math.log(0.5 + rho(size) ** 2))
    return np.asarray(out)


def run(size: str, device: str, out_dir: Path) -> dict:
    import matplotlib.pyplot as plt
    import torch

    from rmt_init.montecarlo import cifar_resnet, initialize_, model_layer_stats

    t0 = time.perf_counter()
    cfg = SIZES[size]
    depth, batch, trials = cfg["depth"], cfg["batch"], cfg["trials"]
    n = (depth - 2) // 6
    blocks = [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(n)]
    modules = ["act"] + [m for b in blocks for m in (b + ".shortcut", b)] + ["fc"]
    per_example = ["act", "layer1.0", blocks[-1], "fc"]
    q = {False: [], True: []}
    stats = {False: [], True: []}
    for bn in (False, True):
        for t in range(trials):
            gen = torch.Generator(device=device).manual_seed(1000 * int(bn) + t)
            model = cifar_resnet(depth, batchnorm=bn, device=device)
            initialize_(model, "kaiming_normal_", nonlinearity="relu", generator=gen)
            x = torch.randn(batch, 3, 32, 32, generator=gen, device=device)
            r = model_layer_stats(model, x, modules=modules, loss="cross_entropy", per_example=per_example, seed=t)
            q[bn].append(dict(zip(r.names, r["act_std"].astype(np.float64) ** 2 + r["act_mean"] ** 2)))
            stats[bn].append(r)
    names = ["act"] + blocks
    lnq = {bn: np.log(np.array([[row[k] for k in names] for row in q[bn]])) for bn in (False, True)}

    checks = []
    lower = no_bn_log_bounds(n)
    gap = float(lower.sum()) - math.log(1 + 6 * n)
    m, se = mean_se(lnq[False][:, -1] - lnq[False][:, 0])
    checks.append(check("no BN: ln q_last/q_stem ≥ ln Π_n (geometric)", float(lower.sum()), m, SAFETY * se, stderr=se,
                        passed=m >= lower.sum() - SAFETY * se, effect=gap,
                        note="one-sided; effect: gap to the additive (BN) bound ln(1 + 6n)"))
    stem_bn = np.array([row["act"] for row in q[True]])
    last_bn = np.array([row[blocks[-1]] for row in q[True]])
    m, se = mean_se(np.log(last_bn) - np.log(stem_bn + 3 * n))
    checks.append(check("BN: ln q_last − ln(q_stem + 3n) ≤ 0 (additive)", 0.0, m, SAFETY * se, stderr=se,
                        passed=m <= SAFETY * se, effect=gap, note="one-sided; effect: gap to the no-BN bound"))
    inc = np.array([[row[b] - row[b + ".shortcut"] for b in blocks] for row in q[True]])
    means, ses = inc.mean(0), inc.std(0, ddof=1) / math.sqrt(trials)
    worst = int(np.argmax(means - 1.0 - SAFETY * ses))
    pre_last_lower = math.exp(float(np.log(np.mean([row["act"] for row in q[False]])) + lower[:-1].sum()))
    checks.append(check(f"BN: every block adds ≤ 1 to q (worst: {blocks[worst]})", 1.0, float(means[worst]),
                        SAFETY * float(ses[worst]), stderr=float(ses[worst]),
                        passed=bool(np.all(means <= 1.0 + SAFETY * ses)),
                        effect=(rho(8) ** 2 - 0.5) * pre_last_lower - 1.0,
                        note="one-sided; effect: the no-BN last block's minimum increment minus 1"))
    stage1 = (lnq[False][:, n] - lnq[False][:, 0]) / n
    m, se = mean_se(stage1)
    b1 = math.log(0.5 + rho(32) ** 2)
    checks.append(check("no BN: stage-1 ln growth per block ≥ ln(½ + ρ₃₂²)", b1, m, SAFETY * se, stderr=se,
                        passed=m >= b1 - SAFETY * se, effect=b1, note="one-sided; effect: margin over no growth"))

    # figure: ln q per block with the bounds; fc/last-block gradient statistics
    fig, axes = plt.subplots(1, 2, figsize=(12.0, 4.8))
    ax = axes[0]
    pos = np.arange(len(names))
    for bn, color, label in ((False, "C3", "no BN"), (True, "C0", "BN (train mode)")):
        mu = lnq[bn].mean(0)
        err = lnq[bn].std(0, ddof=1) / math.sqrt(trials)
        ax.errorbar(pos, mu, yerr=SAFETY * err, fmt="o", ms=3, color=color, label=f"{label}: ln q (±5 SE)")
    ax.plot(pos, lnq[False][:, 0].mean() + np.concatenate([[0.0], np.cumsum(lower)]), "--", color="C3",
            label="no-BN lower bound: Π (½ + ρ²)")
    ax.plot(pos, np.log(stem_bn.mean() + pos), "--", color="C0", label="BN upper bound: q_stem + l")
    ax.set_xlabel("block l (0 = stem output)")
    ax.set_ylabel("ln q = ln E y²")
    ax.set_title(f"ResNet-{depth}, batch {batch}, {trials} initializations each")
    ax.legend(fontsize=8)
    ax = axes[1]
    wn = {bn: np.array([[r.stats["weight_grad_norm"][r.names.index(b)] for b in blocks + ["fc"]] for r in stats[bn]])
          for bn in (False, True)}
    for bn, color, label in ((False, "C3", "no BN"), (True, "C0", "BN")):
        ax.plot(np.arange(1, len(blocks) + 2), np.log10(wn[bn]).mean(0), "o-", ms=3, color=color,
                label=f"{label}: log10 ‖∂ℓ/∂θ‖ (blocks, fc last)")
    ax.set_xlabel("block l (last point: fc)")
    ax.set_ylabel("log10 weight-gradient norm (cross-entropy, random labels)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    atomic_savefig(fig, out_dir / "resnet_statistics.png", dpi=90)

    def fc(bn: bool, stat: str) -> float:
        return float(np.mean([r.stats[stat][r.names.index("fc")] for r in stats[bn]]))

    key = {
        "ln q_last/q_stem no BN": f"{np.mean(lnq[False][:, -1] - lnq[False][:, 0]):.2f} (bound {lower.sum():.2f})",
        "ln q_last/q_stem BN": f"{np.mean(lnq[True][:, -1] - lnq[True][:, 0]):.2f} (bound ln(1 + 6n) ≈ "
                               f"{math.log(1 + 6 * n):.2f})",
        "BN increment per block": f"{inc.mean():.3f} (≤ 1)",
        "fc weight-grad norm no BN / BN": f"{fc(False, 'weight_grad_norm'):.3g} / {fc(True, 'weight_grad_norm'):.3g}",
        "fc top-1 example share no BN / BN": f"{fc(False, 'weight_grad_top_k_share'):.3f} / "
                                             f"{fc(True, 'weight_grad_top_k_share'):.3f} (equal: {1 / batch:.3f})",
    }
    return record("resnet_statistics", __name__, size, config_for(__name__, size, device), checks,
                  ["resnet_statistics.png"], t0, key)
