"""The whole spectrum of a batch-normalised network's batch Jacobian: heavy tailed, with 2/B structural zeros.

Source: the law is the package's own (docs/derivations.md §11; ``rmt_init.theory.bn_spectrum``): for linear
Linear → BatchNorm (train mode) → φ networks the squared singular values of the batch map's Jacobian (B·N × B·N,
normalised over all B·N dimensions) follow ``(1/B) δ₀ + ((B − 1)/B) ⊠_l (ν_l ⊠ MP)`` — an atom 2/B at 0, a
power-law tail ``P(λ > x) ∝ x^{−(B−1)/2}`` (moments of order ≥ (B − 1)/2 infinite), mean ``((B − 2)/(B − 3))^L/q₀``
(Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz 2019, ICLR, arXiv 1902.08129, the per-layer gradient growth);
for relu/tanh its m₁, m₂, m₃ come from the M_B-valued recursion ``bn_jacobian_moments`` (§11.5) and its law from
``bn_jacobian_spectrum(L, φ, B)`` (§11.5b: the same free product with channel laws built from the eigenvalues of
``C(n)``, sampled, mean exact; atom ``1/B + ((B − 1)/B) ν({0})``, relu ≈ 1/2). The figure is the
picture behind Bjorck, Gomes, Selman & Weinberger 2018 (NeurIPS, arXiv 1806.02375): at the same depth the BN-free
linear network's spectrum (Fuss–Catalan) against the BN network's.

Measured: ``rmt_init.montecarlo.network_jacobian_spectrum(L, N, φ, batchnorm="train", batch_size=B,
drop_structural_zeros=False)`` — real ``torch.nn`` BatchNorm1d networks, the Jacobian of the whole batch map.

Checks and tolerances (trials = independent networks; SE across them; SAFETY = 5):

* ``m1 = growth^L`` (theory only): the law's exact mean against ``bn_gradient_growth("linear", B)^L/q₀`` to 1e−10.
* Moments ``m_k`` (k = 1, 2, 3), Monte Carlo per-network ``tr (JJᵀ)ᵏ/(BN)`` against the law (linear, exact) or
  ``bn_jacobian_moments`` (relu/tanh; its sphere-sampling SE added in quadrature). Heavy tails: the per-network
  estimate of ``m_k`` has finite variance only if ``m_{2k}`` is finite, i.e. ``2k < (B − 1)/2``; the others
  (B = 4: all; B = 8: m₂, m₃) have an SE that does not exist and a mean dominated by rare networks, and medians do
  not estimate means — they are **skipped**, and the record says so. Tolerance ``5 SE + bias``, with the
  finite-width bias bound ``bias = c_k · L/N · |m_k|`` (c₁ = 0.5, c₂ = 2.5, c₃ = 5). Measured N-scan (40 networks
  each, (MC − theory)/theory ± SE at N = 16 / 32 / 64): linear B = 16, L = 2: m₂ −10.6±5.9, −11.5±4.1, −3.6±2.9 %,
  m₃ −18±10, −17±7, −6±4 %; linear B = 64, L = 3: m₂ −18.3±2.3, −13.1±2.2 % (N = 16, 32), m₃ −35.3±3.5, −26.7±3.2 %;
  relu B = 64, L = 2: m₂ +9.7±3.5, −2.0±2.1 %, m₃ +19.1±6.4, −0.8±3.3 %; tanh B = 16, L = 2: m₃ +33±18, +2±8,
  +6±5 %; m₁ everywhere within 2 SE except −5.9±2.9 % (linear B = 8, L = 2, N = 32). The resolved excesses give
  c = |excess|·N/L ≤ 1.4 (m₂, linear B = 64) and ≤ 2.9 (m₃): the c_k above cover them by ≥ 1.7×. The excess
  comes from the O(1/N) corrections that the N → ∞ theory drops (the dependence of BN statistics on W, rank B per
  layer, and the finite-N 1/s² tails; docs/derivations.md §11.6), which grow with depth; B = 64 converges slowest.
* Deep, wide networks (``deep`` sweeps, every size; depth 10–20, N 256–2048): ``m_k`` by
  ``rmt_init.montecarlo.network_jacobian_moments`` — per network, Hutchinson traces ``tr (JᵀJ)^k = E‖w_k‖²``
  (``w₁ = Jv``, ``w₂ = Jᵀw₁``, ``w₃ = Jw₂``) with 4 Gaussian probes pushed through the layer maps, never the B·N × B·N
  Jacobian (same networks as ``network_jacobian_spectrum`` for a seed; exact with a full orthonormal frame, tested
  to 1e−10 against the dense spectrum); the SE over networks includes the probe noise. Same heavy-tail skips.
  (i) Per width: against ``bn_jacobian_moments``, tolerance ``5 SE + (exp(c_k L/N) − 1)|m_k|``, c = 3.5, 9.5, 18
  (``DEEP_BIAS_C``), recorded instead of checked where that is not below |m_k|. The constants are measured (40
  networks a point; table in docs/derivations.md §11.6): the excess is multiplicative, ``ln(MC/theory) ≈ c L/N``,
  largest for tanh at B = 64 (c = 2.4, 6.5, 12.5 for m₁, m₂, m₃ at depth 20, N = 512; linear B = 8: c₁ ≈ −2.3; linear
  B = 64: c₂ ≈ −4.5, c₃ ≈ −9; relu B = 16: 0.6, 2.2, 5), covered ≥ 1.4×. The old constants (``BIAS_C``, c·L/N with 0.5, 2.5, 5, measured
  at depth ≤ 3) do **not** hold at depth 20: tanh B = 16 has m₁ +4.8 ± 1.8 %, m₂ +18 ± 4 %, m₃ +41 ± 8 % at N = 512
  (c·L/N = 1.2, 4.5, 10.5) and linear B = 16 m₁ −4.7 ± 1.4 %; the excess grows faster than L (tanh B = 64 at
  L/N = 0.039: m₁ +3.6 % at depth 10, +9.7 % at depth 20), so DEEP_BIAS_C is for L ≤ 20. Width sweep at depth 20,
  B = 16 (excess at N = 128 / 256 / 512 / 1024): relu m₂ +41, +15, +11, +1.8 %, m₃ +122, +40, +26, +5.4 %; tanh m₂
  +91, +34, +18, +6.8 %, m₃ +286, +96, +41, +15 %; linear m₂ −24, −16, −9.3, −6.6 %, m₃ −18, −14, −10, −7.4 %.
  (ii) Per sweep of ≥ 2 widths, the sharp check: the weighted least-squares fit ``ln m_k(N) = ln m_k(∞) + c L/N``
  (weights from the delta-method SEs) extrapolates to N = ∞ with no bias bound; ``m_k(∞)`` against the theory,
  tolerance ``|m_k|(exp(5 SE) − 1)`` (SE of the intercept and the theory's, in quadrature). Measured on the
  sweeps above (N = 512, 1024): intercepts within 2 SE of the theory (tanh B = 64, depth 20: −0.5 ± 1.5 %,
  −1.3 ± 2.7 %, −2.7 ± 4.3 %); the fitted c is in the key numbers. Full size (run on one CPU thread: 93/93 deep
  checks pass, 26 min): extrapolated m₁, m₂, m₃ within 1.5 SE everywhere, e.g. depth 20, B = 16, N = 512–2048:
  tanh +0.2 ± 1.3, +0.6 ± 2.7, +1.1 ± 4.3 %, relu +1.3 ± 1.5, +3.0 ± 2.8, +4.7 ± 4.3 %; depth 10, B = 64,
  N = 256–1024: tanh +0.3 ± 0.6, +0.9 ± 1.1, +1.9 ± 1.6 % (docs/derivations.md §11.6). Default size: 49/49 deep
  checks pass (relu B = 8, depth 10, N = 512: m₁ −0.2 ± 2.2 %). Cost: ≈ 0.15 / 0.6 s a network at B = 16,
  depth 20, N = 512 / 1024 and ≈ 1 s at B = 64, N = 1024 (one thread), against ≈ 430× more for the dense path at
  B = 16, N = 128, depth 4 (``benchmarks/bench_bn_moments.py``); the default size runs depth 20 at N ≤ 1024 for
  B = 16 and depth 10 at N ≤ 512 for B = 64, the full size adds depth 20 at B = 64 and N = 2048.
* Structural zeros (linear φ): 2/B (the shift and scale direction of each channel; PyTorch's eps leaves the scale
  directions at ~(eps/s²)² relative); tolerance: one eigenvalue per network, 1/(BN). With the law's table (sizes
  with ``ks``): ``compare``'s atom fraction, which counts the law's continuous mass in the window at 0 (deep nets
  have some far below 1e−9 × the largest: B = 16, L = 4, N = 128 had 0.0196 of its eigenvalues there beyond 2/B,
  and snapping them to 0 had cost a KS of 0.0196); tolerance 1/(BN) + 0.5/N, the second term for the finite-N
  excess of eigenvalues at the hard edge 0 inside the window, a cdf difference bounded like the KS distance
  (KS·N ≤ 0.61 measured; this excess measured 0.0022 = 0.14/N at B = 16, L = 4, N = 64); recorded, not checked,
  where that is not below 2/B. Without it (smoke): the fraction ≤ 1e−9 × the network's
  largest, at depth ≤ 2 and B ≤ 16 only, where the law's lower edge is ~1e−30 (measured excess ≤ 0.4 eigenvalue
  per network at B = 8, 16; B = 64: 0.006–0.009, not checked). Relu: checked against its own atom (below); tanh
  (tanh' ≪ 1 far out: 0.002–0.005 above 2/B, ~1 eigenvalue per network): recorded in the key numbers only.
* relu/tanh, every size: ``compare``'s KS distance to ``bn_jacobian_spectrum(L, φ, B)``, tolerance
  ``5 SE(KS) + 1/N + 1e−3`` (the last: the law's own sampling error, seed-to-seed cdf differences ≤ 5e−4 at the
  default 100 000 directions); effect: the KS distance between that law and the linear BN law of the same B, L
  (relu: the atom alone differs by ≈ 1/2 − 2/B). Measured (N = 64, 10–20 networks): see docs/derivations.md §11.6.
  The default size also has relu at B = 4, depth 10 and B = 8, depth 20 (N = 128), whose laws refused their cdf
  before the continuation's start for heavy tails and the deep tail's spline (§11.12); a trial run of these (20
  networks) passed KS (relu B = 4: tolerance 0.020; B = 8: 0.013), the zero fractions and the B = 4 tail count.
  Their moments are recorded, not checked: BIAS_C is measured at depth ≤ 4 (relu B = 8, depth 20, N = 128 had m₁
  +28 ± 13 %, a tolerance of 73 % with BIAS_C); the deep sweeps check moments at depth 10–20 with their own bounds.
  relu zero fraction (≤ 1e−9 × the network's largest) against the law's atom plus its continuous mass below that
  threshold, tolerance ``5 SE + σ(L − 1)/√(2L − 1) + 1/(BN)``: at finite N the network's kernel is that of its
  largest-kernel layer, and the mean of the largest of L i.i.d. layer fractions of SD σ exceeds their mean by at
  most σ(L − 1)/√(2L − 1) (σ from the spread of min(k, B − 2) over sampled sphere directions, k the positive
  coordinates; the per-layer rank is min(k, B − 2) per channel). Checked where N ≥ B only: with fewer channels
  than examples the zero fraction has a further excess this bound does not model, falling fast once N reaches B
  (measured at L = 2, 20 networks (4 at N = 64, B = 64): B = 64: +0.038, +0.022, +0.0057 at N = 16, 32, 64 — depth 1:
  within ±0.004; B = 16: +0.048, +0.028 at N = 4, 8, then +0.009, +0.011, +0.007 at N = 16, 32, 64, within the bound);
  recorded in the key numbers there (it failed at the default size's relu B = 64, N = 32: 0.5193 against 0.5000 ±
  0.0100).
* KS (sizes with ``ks``): ``rmt_init.compare.compare``'s KS distance between the pooled torch eigenvalues and the
  law (atom included; numerical zeros ≤ 1e−9 × the largest snapped to 0), tolerance ``5 SE(KS) + 1/N`` (SE from
  the spread of per-network empirical cdfs). The 1/N bias bound is measured (20 networks each): KS = 0.0128,
  0.0135, 0.0191 at N = 32 (B = 8, 16, 64; L = 2) and 0.0060, 0.0085, 0.0067, 0.0049 at N = 64 (B = 8, 4, 16 at
  L = 2; B = 8, L = 4), i.e. KS·N ≤ 0.61, with SE 0.003–0.007: the bound covers them by ≥ 1.6×. Effect: the KS
  distance to the BN-free network's law of the same depth (≈ 2/B + the bulk's difference). Where the tolerance is
  not below it (B = 64 at N = 32: 0.06 against 0.031) the KS distance is recorded in the key numbers, not checked.
* The top of the spectrum (every case; docs/derivations.md §11.8). (i) Tail fraction: per network, the fraction
  of the B·N eigenvalues above the law's ``sf⁻¹(p)``, p = 0.02, against p; tolerance ``5 SE + 9 p L/N``, the bias
  bound from the measured finite-N deficit (−37 % at L = 2, N = 32; −12.5 % at L = 4, N = 64; −16 %, −14 % for relu,
  tanh at B = 16, L = 4, N = 128; ≤ 5 % at L = 2, N = 128: |bias|·N/(pL) ≤ 5.9, covered 1.5×);
  effect p (a law without mass above that point); not checked where the tolerance is ≥ p (N = 32). (ii) λ_max: the
  extreme-value law ``P(λ_max ≤ x) = exp(−θ B N sf(x))`` with θ the extremal index (clusters of one channel's
  eigenvalues; 1/(B − 2) for linear φ as N → ∞); at finite N the clusters split and θ_eff lies between θ∞ and 1
  (measured 0.22–0.92), so the check is that the median of the per-network λ_max lies in [median at θ∞, median at
  θ = 1] ± 5 order-statistics SE (half the spread between the order statistics at ranks T/2 ∓ √T/2); effect: the
  bracket's midpoint's distance to the BN-free Fuss–Catalan top edge. θ_eff (1/mean of ``B N sf(λ_max)``) is in the
  key numbers. Checked for B ≤ 8 only: at larger B λ_max sits at the bulk's finite-N edge, not in the tail, and
  above even the θ = 1 median (relu, B = 64, L = 2, N = 32: 11.2 against the bracket [7.2, 8.8], θ_eff = 36; relu,
  tanh, B = 16, L = 4, N = 128: 70.7 ± 2.6 against [54.5, 62.7], 25.4 ± 2.1 against [22.4, 23.6], θ_eff 1.35, 2.2).

* Per-example blocks (``block_cases``, default and full sizes; ``batchnorm="train_diagonal"``, all B blocks of each
  network pooled): KS distance to ``bn_jacobian_spectrum(L, φ, B, block="per_example")``, tolerance
  ``5 SE(KS) + 1/N`` (measured KS·N ≤ 1.0 at depth 1, docs/derivations.md §11.9; ≤ 0.95 at depth 2–4, linear,
  §11.10), checked where the law is derived: depth 1 (any φ), linear φ at any depth (§11.10), relu and tanh deeper
  (§11.11: the channel average over a sampled rule of batch directions; measured KS·N ≤ 0.7 at B = 8, L = 2–3, N = 128;
  building that law takes minutes, so these cases are in the default size only); effect: the KS distance to MP(1) of
  the same mean (the BN-free block). Linear φ: the mean against ``bn_per_example_mean`` (exact), 5 SE +
  0.5·L/N·m₁.

Figure: the density of ln λ (λ·ρ(λ) on a log λ axis) of the batch Jacobian with BN (theory
``bn_jacobian_spectrum``, and torch histograms) and without BN (``jacobian_spectrum`` linear, σ_w² = 1: the
Fuss–Catalan law of depth L, and torch histograms), at the same depth: without BN the spectrum spreads over
~L decades with a hard edge; with BN the bulk is narrower but it has a power-law top tail (exploding directions,
whose number grows as B shrinks) and 2/B exactly flat directions.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..common import SAFETY, atomic_savefig, check, config_for, record

STATEMENT = ("The batch Jacobian of a train-mode BN network has the spectrum of bn_jacobian_spectrum (linear, relu, "
             "tanh) and the moments of bn_jacobian_moments: 2/B structural zeros (relu: ≈ 1/2), mean growth "
             "((B−2)/(B−3))^L (linear), and a power-law tail x^(−(B−1)/2).")
SOURCE = ("docs/derivations.md §11 (this package); Yang et al. 2019 (ICLR, arXiv 1902.08129) for the mean; "
          "Bjorck et al. 2018 (NeurIPS, arXiv 1806.02375) for the picture")

SIZES = {  # cases: [activation, batch size B, depth L, width N]
    "smoke": {"trials": 30, "moment_samples": 20000, "ks": False,
              "cases": [["linear", 16, 2, 32], ["tanh", 16, 2, 32], ["linear", 8, 2, 32], ["relu", 8, 2, 32]],
              "figure": [8, 2, 32],
              # matrix-free moments (network_jacobian_moments): [activation, B, L, [widths]]
              "deep": {"trials": 20, "probes": 4, "sweeps": [["relu", 16, 10, [512]]]}},
    # CPU: the batch Jacobian is B·N × B·N (2048 at B = 16, N = 128: ~10 s per network with one thread)
    "default": {"trials": 20, "moment_samples": 200000, "ks": True,
                "cases": [["linear", 4, 2, 64], ["linear", 8, 2, 128], ["linear", 16, 4, 128], ["linear", 64, 2, 32],
                          ["relu", 8, 4, 128], ["relu", 16, 4, 128], ["relu", 64, 2, 32], ["tanh", 16, 4, 128],
                          ["tanh", 64, 2, 32], ["relu", 4, 10, 128], ["relu", 8, 20, 128]],
                "figure": [8, 4, 128],
                # per-example blocks (batchnorm="train_diagonal"): [activation, B, L, N]
                "block_cases": [["linear", 8, 1, 128], ["relu", 8, 1, 128], ["linear", 16, 3, 128],
                                ["linear", 8, 4, 128], ["relu", 8, 2, 128], ["tanh", 8, 2, 128]],
                "deep": {"trials": 40, "probes": 4,
                         "sweeps": [["linear", 16, 20, [512, 1024]], ["relu", 16, 20, [512, 1024]],
                                    ["tanh", 16, 20, [512, 1024]], ["linear", 64, 10, [256, 512]],
                                    ["relu", 64, 10, [256, 512]], ["tanh", 64, 10, [256, 512]],
                                    ["relu", 8, 10, [512]]]}},
    # a GPU: N = 256–512 (B·N up to 16384)
    "full": {"trials": 20, "moment_samples": 400000, "ks": True,
             "cases": [["linear", 4, 4, 256], ["linear", 8, 10, 512], ["linear", 16, 20, 512], ["linear", 64, 10, 256],
                       ["relu", 8, 10, 512], ["relu", 16, 20, 512], ["relu", 64, 10, 256], ["tanh", 16, 20, 512],
                       ["tanh", 64, 10, 256]],
             "figure": [8, 10, 512],
             "block_cases": [["linear", 8, 1, 512], ["relu", 16, 1, 512], ["linear", 16, 3, 512]],
             "deep": {"trials": 40, "probes": 4,
                      "sweeps": [["linear", 16, 20, [512, 1024, 2048]], ["relu", 16, 20, [512, 1024, 2048]],
                                 ["tanh", 16, 20, [512, 1024, 2048]], ["linear", 64, 20, [512, 1024]],
                                 ["relu", 64, 20, [512, 1024]], ["tanh", 64, 20, [512, 1024]],
                                 ["linear", 64, 10, [256, 512, 1024]], ["relu", 64, 10, [256, 512, 1024]],
                                 ["tanh", 64, 10, [256, 512, 1024]], ["linear", 8, 20, [1024]],
                                 ["relu", 8, 20, [1024]], ["tanh", 8, 20, [1024]]]}},
}
#: finite-width bias bound of m_k, relative: c_k · L/N (module docstring; depth ≤ 4, dense cases)
BIAS_C = {1: 0.5, 2: 2.5, 3: 5.0}
#: … measured to this depth; the dense cases' moments deeper are recorded, not checked (the deep sweeps check them)
BIAS_C_MAX_DEPTH = 4
#: finite-width bias bound of m_k for the deep matrix-free cases, relative: exp(c_k · L/N) − 1, measured at depth 10
#: and 20 (module docstring, docs/derivations.md §11.6); valid for L ≤ 20 (the excess grows faster than L)
DEEP_BIAS_C = {1: 3.5, 2: 9.5, 3: 18.0}
ZERO_THRESHOLD = 1e-9
#: finite-width bias bound of the KS distance: KS_BIAS_C/N (module docstring)
KS_BIAS_C = 1.0
#: tail level p of the count check, and its finite-N bias bound TAIL_BIAS_C·L/N, relative (module docstring)
TAIL_P = 0.02
TAIL_BIAS_C = 9.0
#: the λ_max bracket is checked up to this B only: at larger B (tail exponent (B − 1)/2 ≥ 7.5) λ_max is not in the
#: power-law tail but at the bulk's finite-N edge, above even θ = 1 (relu, B = 64, N = 32: median 11.2 against the
#: bracket [7.2, 8.8]; relu, B = 16, L = 4, N = 128: 70.7 ± 2.6 against [54.5, 62.7]; §11.8)
LAMBDA_MAX_B = 8
#: the sampled channel law's own KS error (bn_jacobian_spectrum, any φ: seed-to-seed cdf differences ≤ 5e−4)
LAW_KS = 1e-3


def _finite_variance(k: int, batch: int) -> bool:
    """Whether the per-network estimate of m_k has a finite variance: m_{2k} finite, 2k < (B − 1)/2."""
    return 2 * k < (batch - 1) / 2


def run(size: str, device: str, out_dir: Path) -> dict:
    from rmt_init.compare import compare
    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import bn_gradient_growth
    from rmt_init.theory.bn_spectrum import bn_jacobian_moments, bn_jacobian_spectrum

    from ..common import ks_distance, ks_with_se

    t0 = time.perf_counter()
    cfg = SIZES[size]
    trials = cfg["trials"]
    checks: list[dict] = []
    key: dict[str, str] = {}
    skipped: list[str] = []
    samples: dict[tuple, np.ndarray] = {}
    for idx, (act, batch, depth, n) in enumerate(cfg["cases"]):
        tag = f"{act} B={batch} L={depth} N={n}"
        res = network_jacobian_spectrum(depth, n, act, batchnorm="train", batch_size=batch, trials=trials,
                                        drop_structural_zeros=False, seed=200 + idx, device=device)
        x = np.asarray(res.squared_singular_values, np.float64)
        samples[(act, batch, depth, n)] = x
        # structural zeros: 2/B exactly
        zero = float(np.mean(x <= ZERO_THRESHOLD * x.max(axis=1, keepdims=True)))
        if act == "linear" and batch <= 16 and depth <= 2 and not cfg["ks"]:
            checks.append(check(f"zero fraction {tag}", 2.0 / batch, zero, 1.0 / (batch * n),
                                note="eigenvalues <= 1e-9 x the network's largest"))
        if act == "linear":
            law = bn_jacobian_spectrum(depth, batch_size=batch)
            growth = bn_gradient_growth("linear", batch) ** depth
            checks.append(check(f"m1 = growth^L {tag} (theory)", growth, law.moment(1), 1e-10 * growth))
            theory = {k: law.moment(k) if 2 * k < batch - 1 else math.inf for k in (1, 2, 3)}
            theory_se = {k: 0.0 for k in (1, 2, 3)}
        else:
            mom = bn_jacobian_moments(depth, act, batch, samples=cfg["moment_samples"], seed=idx)
            theory = {1: mom.m1, 2: mom.m2, 3: mom.m3}
            theory_se = {1: 0.0, 2: mom.m2_stderr, 3: mom.m3_stderr}
        parts = []
        for k in (1, 2, 3):
            if not (math.isfinite(theory[k]) and _finite_variance(k, batch)):
                why = "infinite" if not math.isfinite(theory[k]) else f"finite, but m{2 * k} = inf"
                skipped.append(f"m{k} {tag} ({why}: per-network estimate without a finite variance)")
                continue
            per = np.mean(x**k, axis=1)
            mean = float(per.mean())
            se = math.hypot(float(per.std(ddof=1)) / math.sqrt(trials), theory_se[k])
            if depth > BIAS_C_MAX_DEPTH:  # BIAS_C is measured at depth ≤ 4; deeper moments are the deep sweeps'
                parts.append(f"m{k} {100 * (mean / theory[k] - 1):+.1f}±{100 * se / theory[k]:.1f}% (not checked: "
                             f"depth > {BIAS_C_MAX_DEPTH}; see the deep sweeps)")
                continue
            bias = BIAS_C[k] * depth * abs(theory[k]) / n
            checks.append(check(f"m{k} {tag}", theory[k], mean, SAFETY * se + bias, stderr=se,
                                note=f"5 SE + bias bound {BIAS_C[k]}·L/N·m{k}"))
            parts.append(f"m{k} {100 * (mean / theory[k] - 1):+.1f}±{100 * se / theory[k]:.1f}%")
        if act == "linear" and cfg["ks"]:
            from rmt_init.theory import jacobian_spectrum

            # compare decides which samples near 0 are numerical atoms from the law's continuous mass there (deep
            # nets have continuous mass far below 1e−9 × the largest: 2 % at B = 16, L = 4)
            cmp = compare(law, x)
            zero = 2.0 / batch + cmp.atom_errors[0.0]
            zero_tol = 1.0 / (batch * n) + 0.5 / n
            if zero_tol < 2.0 / batch:
                checks.append(check(f"zero fraction {tag}", 2.0 / batch, zero, zero_tol,
                                    note="compare's atom window at 0, the law's continuous mass in it accounted for"))
            # SE of the KS distance from per-network empirical cdfs, numerical zeros snapped to the atom
            snapped = np.where(x <= ZERO_THRESHOLD * x.max(axis=1, keepdims=True), 0.0, x)
            _, ks_se = ks_with_se(lambda v: law.cdf(v, method="table"), snapped, atoms=law.atoms)
            plain = jacobian_spectrum(depth, "linear", weights="gaussian", sigma_w2=1.0)
            grid = np.geomspace(1e-12, 1e4, 400) * growth
            effect = ks_distance(lambda v: law.cdf(v, method="table"), plain.cdf, grid)
            ks_tol = SAFETY * ks_se + KS_BIAS_C / n
            if ks_tol < effect:
                checks.append(check(f"KS {tag}", 0.0, cmp.ks, ks_tol, stderr=ks_se, effect=effect,
                                    note="effect: KS distance to the BN-free law at the same depth"))
                parts.insert(0, f"KS {cmp.ks:.4f}±{ks_se:.4f}")
            else:  # a check that could not fail on the BN-free law: the number is recorded, not checked
                parts.insert(0, f"KS {cmp.ks:.4f}±{ks_se:.4f} (not checked: tolerance {ks_tol:.3f} >= effect "
                                f"{effect:.3f})")
        if act != "linear":
            law = bn_jacobian_spectrum(depth, act, batch)
        _top_checks(act, batch, depth, n, x, law, checks, parts)
        if act != "linear":
            zero_law = law.atoms[0][1]
            _nonlinear_checks(act, batch, depth, n, x, law, checks, parts)
            key[tag] = ", ".join(parts + [f"zeros {zero:.4f} (law {zero_law:.4f})"])
            continue
        key[tag] = ", ".join(parts + [f"zeros {zero:.4f} (2/B {2 / batch:.4f})"])
    _block_checks(cfg, device, checks, key)
    _deep_checks(cfg, device, checks, key, skipped)
    if skipped:
        key["skipped (heavy tails)"] = "; ".join(skipped)
    figure = _figure(cfg, samples, device, out_dir)
    return record("bn_batch_spectrum", __name__, size, config_for(__name__, size, device), checks, [figure], t0, key)


def _block_checks(cfg: dict, device: str, checks: list, key: dict) -> None:
    """Per-example blocks (module docstring): KS against ``bn_jacobian_spectrum(L, φ, B, block="per_example")``
    (checked where the law is exact: depth 1, and linear φ at any depth) and, for linear φ, the mean against
    ``bn_per_example_mean``."""
    from rmt_init.compare import compare
    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import marchenko_pastur
    from rmt_init.theory.bn_spectrum import bn_jacobian_spectrum, bn_per_example_mean

    from ..common import ks_with_se

    trials = cfg["trials"]
    for idx, (act, batch, depth, n) in enumerate(cfg.get("block_cases", [])):
        tag = f"per-example {act} B={batch} L={depth} N={n}"
        res = network_jacobian_spectrum(depth, n, act, batchnorm="train_diagonal", batch_size=batch, trials=trials,
                                        seed=400 + idx, device=device)
        x = np.asarray(res.squared_singular_values, np.float64)
        law = bn_jacobian_spectrum(depth, act, batch, block="per_example")
        cmp = compare(law, x)
        snapped = np.where(x <= ZERO_THRESHOLD * x.max(axis=1, keepdims=True), 0.0, x)
        _, ks_se = ks_with_se(lambda v: law.cdf(v, method="table"), snapped, atoms=law.atoms)
        m1 = float(law.moment(1))
        grid = np.geomspace(1e-6, 1e3, 2000) * m1
        plain = marchenko_pastur(1.0, m1)  # the BN-free block of the same mean
        effect = float(np.max(np.abs(np.asarray(law.cdf(grid, method="table")) - plain.cdf(grid))))
        ks_tol = SAFETY * ks_se + KS_BIAS_C / n
        parts = []
        # docs/derivations.md §11.9 (depth 1), §11.10 (linear, any depth), §11.11 (relu/tanh deeper: sampled rule)
        exact_law = depth == 1 or act in ("linear", "relu", "tanh")
        if exact_law and ks_tol < effect:
            checks.append(check(f"KS {tag}", 0.0, cmp.ks, ks_tol, stderr=ks_se, effect=effect,
                                note="exact law; 5 SE + 1/N; effect: KS distance to MP(1) of the same mean"))
            parts.append(f"KS {cmp.ks:.4f}±{ks_se:.4f}")
        else:
            why = "no derived law (docs/derivations.md §11.11)" if not exact_law else f"tolerance {ks_tol:.3f} >= effect"
            parts.append(f"KS {cmp.ks:.4f}±{ks_se:.4f} (not checked: {why})")
        if act == "linear":
            exact = float(bn_per_example_mean(depth, batch))
            per = x.mean(axis=1)
            se = float(per.std(ddof=1)) / math.sqrt(trials)
            checks.append(check(f"m1 {tag}", exact, float(per.mean()), SAFETY * se + BIAS_C[1] * depth * exact / n,
                                stderr=se, note="bn_per_example_mean (exact); 5 SE + bias bound 0.5·L/N·m1"))
            parts.append(f"m1 {100 * (per.mean() / exact - 1):+.1f}±{100 * se / exact:.1f}%")
        key[tag] = ", ".join(parts)


def _deep_checks(cfg: dict, device: str, checks: list, key: dict, skipped: list) -> None:
    """Deep, wide networks by matrix-free Hutchinson moments (module docstring): per width, m_k against
    ``bn_jacobian_moments`` with tolerance 5 SE + |m_k|(exp(c_k L/N) − 1); per sweep of ≥ 2 widths, the width
    extrapolation ``ln m_k(N) = ln m_k(∞) + c·L/N`` (weighted least squares) against the theory, 5 SE."""
    from rmt_init.montecarlo import network_jacobian_moments
    from rmt_init.theory.bn_spectrum import bn_jacobian_moments

    deep = cfg.get("deep")
    if not deep:
        return
    trials, probes = deep["trials"], deep["probes"]
    theories: dict[tuple, object] = {}
    for idx, (act, batch, depth, widths) in enumerate(deep["sweeps"]):
        if (act, batch, depth) not in theories:
            theories[(act, batch, depth)] = bn_jacobian_moments(depth, act, batch, samples=cfg["moment_samples"],
                                                                seed=50 + idx)
        mom = theories[(act, batch, depth)]
        theory = {1: mom.m1, 2: mom.m2, 3: mom.m3}
        theory_se = {1: 0.0, 2: mom.m2_stderr, 3: mom.m3_stderr}
        orders = [k for k in (1, 2, 3) if math.isfinite(theory[k]) and _finite_variance(k, batch)]
        for k in (1, 2, 3):
            if k not in orders:
                why = "infinite" if not math.isfinite(theory[k]) else f"finite, but m{2 * k} = inf"
                skipped.append(f"m{k} deep {act} B={batch} L={depth} ({why}: per-network estimate without a finite "
                               "variance)")
        points: dict[int, list[tuple[float, float, float]]] = {k: [] for k in orders}  # (L/N, mean, se)
        for j, n in enumerate(widths):
            tag = f"deep {act} B={batch} L={depth} N={n}"
            res = network_jacobian_moments(depth, n, act, batchnorm="train", batch_size=batch, trials=trials,
                                           probes=probes, orders=max(orders), seed=600 + 10 * idx + j, device=device)
            parts = []
            for k in orders:
                mean, se_mc = res.moment(k)
                points[k].append((depth / n, mean, se_mc))
                se = math.hypot(se_mc, theory_se[k])
                bias = abs(theory[k]) * math.expm1(DEEP_BIAS_C[k] * depth / n)
                tol = SAFETY * se + bias
                excess = f"m{k} {100 * (mean / theory[k] - 1):+.1f}±{100 * se / theory[k]:.1f}%"
                if tol < abs(theory[k]):
                    checks.append(check(f"m{k} {tag}", theory[k], mean, tol, stderr=se,
                                        note=f"Hutchinson, {trials} nets x {probes} probes; 5 SE + bias bound "
                                             f"(exp({DEEP_BIAS_C[k]:g}·L/N) − 1)·m{k}"))
                    parts.append(excess)
                else:
                    parts.append(excess + f" (not checked: tolerance {tol / abs(theory[k]):.2f}·m{k} >= m{k})")
            key[tag] = ", ".join(parts)
        if len(widths) < 2:
            continue
        tag = f"deep {act} B={batch} L={depth} N={widths[0]}..{widths[-1]}"
        parts = []
        for k in orders:
            a, se_a, c, se_c = _width_extrapolation(points[k])
            se = math.hypot(se_a, theory_se[k] / theory[k])
            measured = math.exp(a)
            tol = abs(theory[k]) * math.expm1(SAFETY * se)
            text = f"m{k}(N→∞) {100 * (measured / theory[k] - 1):+.1f}±{100 * se:.1f}%, c = {c:+.2f}±{se_c:.2f}"
            if tol < abs(theory[k]):
                checks.append(check(f"m{k} width-extrapolated {tag}", theory[k], measured, tol, stderr=measured * se,
                                    note="ln m_k(N) = ln m_k(inf) + c L/N, weighted least squares over the widths; "
                                         "tolerance m_k (exp(5 SE) - 1)"))
            else:
                text += f" (not checked: tolerance {tol / abs(theory[k]):.2f}·m{k} >= m{k})"
            parts.append(text)
        key[tag] = ", ".join(parts)


def _width_extrapolation(points: list[tuple[float, float, float]]) -> tuple[float, float, float, float]:
    """Weighted least-squares fit ``ln m = a + c x`` (x = L/N) to ``(x, mean, se)`` points, weights
    ``(mean/se)²`` (delta method: SE of ln m = se/mean); returns ``(a, SE(a), c, SE(c))`` from ``(XᵀWX)⁻¹``."""
    x = np.array([p[0] for p in points])
    y = np.log([p[1] for p in points])
    w = np.array([(p[1] / p[2]) ** 2 for p in points])
    design = np.stack([np.ones_like(x), x], axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    a, c = cov @ (design.T @ (w * y))
    return float(a), math.sqrt(cov[0, 0]), float(c), math.sqrt(cov[1, 1])


def _median_se(v: np.ndarray) -> float:
    """Order-statistics SE of a sample median: half the distance between the order statistics at ranks
    T/2 ∓ √T/2 (± one SD of the binomial rank of the true median among T samples)."""
    v = np.sort(v)
    t = v.size
    lo = int(math.floor(t / 2 - math.sqrt(t) / 2))
    hi = int(math.ceil(t / 2 + math.sqrt(t) / 2))
    return 0.5 * float(v[min(hi, t - 1)] - v[max(lo, 0)])


def _top_checks(act: str, batch: int, depth: int, n: int, x: np.ndarray, law, checks: list, parts: list) -> None:
    """The top of the spectrum (module docstring): the count above the law's (1 − TAIL_P) quantile, and the
    median of λ_max against the extreme-value law ``exp(−θ B N sf(x))`` for θ between θ∞ and 1."""
    from rmt_init.theory import jacobian_spectrum

    trials = x.shape[0]
    count = batch * n
    tag = f"{act} B={batch} L={depth} N={n}"
    # tail count: eigenvalues above sf⁻¹(p), per network, over B·N
    level = float(law.isf(TAIL_P))
    per = np.sum(x > level, axis=1) / count
    se = float(per.std(ddof=1)) / math.sqrt(trials)
    frac = float(per.mean())
    tol = SAFETY * se + TAIL_BIAS_C * depth / n * TAIL_P
    if tol < TAIL_P:
        checks.append(check(f"tail fraction above sf^-1({TAIL_P:g}) {tag}", TAIL_P, frac, tol, stderr=se,
                            note=f"5 SE + measured finite-N bias bound {TAIL_BIAS_C:g}·L/N·p; effect: a law with no mass "
                                 f"above x = {level:.3g}"))
        checked = ""
    else:
        checked = f", not checked: tolerance {tol:.4f} >= {TAIL_P:g}"
    # λ_max: median within the extreme-value bracket θ ∈ [θ∞, 1]
    top = law.largest_eigenvalue(n)
    lo = top.median()
    hi = float(law.isf(math.log(2.0) / count))  # θ = 1: no clustering
    lmax = x.max(axis=1)
    med = float(np.median(lmax))
    mse = _median_se(lmax)
    plain_edge = float(jacobian_spectrum(depth, "linear", weights="gaussian", sigma_w2=1.0).upper_edge)
    mid = 0.5 * (lo + hi)
    tol_med = 0.5 * (hi - lo) + SAFETY * mse
    if batch > LAMBDA_MAX_B:
        checked += f"; λmax not checked: B > {LAMBDA_MAX_B} (λmax at the bulk edge, not in the tail)"
    elif tol_med < abs(mid - plain_edge):
        checks.append(check(f"median lambda_max {tag}", mid, med, tol_med, stderr=mse, effect=abs(mid - plain_edge),
                            note=f"extreme-value law exp(-theta B N sf(x)), theta in [theta_inf = {top.extremal_index:.3f}, 1]: "
                                 f"median in [{lo:.4g}, {hi:.4g}]; 5 order-statistics SE; effect: distance to the "
                                 f"BN-free top edge {plain_edge:.3g}"))
    else:
        checked += f"; λmax not checked: tolerance {tol_med:.3g} >= effect {abs(mid - plain_edge):.3g}"
    theta_eff = 1.0 / float(np.mean(count * np.asarray(law.sf(lmax), float)))
    parts.append(f"tail {frac:.4f}±{se:.4f} (p {TAIL_P:g}{checked})")
    parts.append(f"median λmax {med:.4g}±{mse:.2g} (θ∞ {lo:.4g}, θ=1 {hi:.4g}; θ_eff {theta_eff:.2f}, θ∞ "
                 f"{top.extremal_index:.2f})")


def _layer_zero_sd(act: str, batch: int, n: int) -> float:
    """Per-network SD of one layer's zero fraction: Σ_j (B − min(k_j, B − 2))/(BN) over the N channels, k_j the
    positive coordinates of channel j's normalised batch vector (i.i.d. across channels at N → ∞); 0 unless relu."""
    if act != "relu":
        return 0.0
    from rmt_init.theory.bn_spectrum import _sphere_samples

    k = (_sphere_samples(batch, 200_000, np.random.default_rng(5)) > 0).sum(axis=1)
    return float(np.minimum(k, batch - 2).std()) * math.sqrt(n) / (batch * n)


def _nonlinear_checks(act: str, batch: int, depth: int, n: int, x: np.ndarray, law, checks: list, parts: list) -> None:
    """KS against the law of ``bn_jacobian_spectrum(depth, act, B)`` and (relu) the zero fraction (module docstring)."""
    from rmt_init.compare import compare
    from rmt_init.theory.bn_spectrum import bn_jacobian_spectrum

    from ..common import ks_distance, ks_with_se

    trials = x.shape[0]
    cmp = compare(law, x)
    snapped = np.where(x <= ZERO_THRESHOLD * x.max(axis=1, keepdims=True), 0.0, x)
    _, ks_se = ks_with_se(lambda v: law.cdf(v, method="table"), snapped, atoms=law.atoms)
    linear = bn_jacobian_spectrum(depth, "linear", batch)
    grid = np.geomspace(1e-12, 1e4, 400) * law.moment(1)
    effect = ks_distance(lambda v: law.cdf(v, method="table"), lambda v: linear.cdf(v, method="table"), grid)
    ks_tol = SAFETY * ks_se + KS_BIAS_C / n + LAW_KS
    tag = f"{act} B={batch} L={depth} N={n}"
    if ks_tol < effect:
        checks.append(check(f"KS {tag}", 0.0, cmp.ks, ks_tol, stderr=ks_se, effect=effect,
                            note="5 SE + 1/N + the law's sampling error; effect: KS distance to the linear BN law"))
        parts.insert(0, f"KS {cmp.ks:.4f}±{ks_se:.4f}")
    else:
        parts.insert(0, f"KS {cmp.ks:.4f}±{ks_se:.4f} (not checked: tolerance {ks_tol:.3f} >= effect {effect:.3f})")
    if act == "relu":
        per = np.mean(x <= ZERO_THRESHOLD * x.max(axis=1, keepdims=True), axis=1)
        frac = float(per.mean())
        se = float(per.std(ddof=1)) / math.sqrt(trials)
        atom = law.atoms[0][1]
        # the law's continuous mass below the threshold (deep nets: a hard edge at 0) counts as zeros too
        below = float(law.cdf(ZERO_THRESHOLD * float(np.median(x.max(axis=1))))) - atom
        # finite N: the network's kernel is the largest of the L layers' (independent) kernels, E max − max E ≤
        # σ (L − 1)/√(2L − 1) for L i.i.d. layers of SD σ; plus one eigenvalue per network
        bias = _layer_zero_sd(act, batch, n) * (depth - 1) / math.sqrt(2 * depth - 1) + 1.0 / (batch * n)
        if n < batch:  # a further finite-N kernel the bias above does not model (module docstring): recorded only
            parts.append(f"zeros {frac:.4f}±{se:.4f} (law {atom:.4f} + {below:.1e} below the threshold; not checked: "
                         f"N = {n} < B = {batch})")
            return
        checks.append(check(f"zero fraction {tag}", atom + below, frac, SAFETY * se + bias, stderr=se,
                            note="eigenvalues <= 1e-9 x the network's largest; 5 SE + max-of-L-layers bias + 1/(BN)"))
        parts.append(f"zeros {frac:.4f}±{se:.4f} (law {atom:.4f} + {below:.1e} below the threshold)")


def _nonlinear_panel(ax, cases: list) -> None:
    """λρ(λ) of bn_jacobian_spectrum (relu, tanh) against torch histograms of the same cases."""
    from rmt_init.theory.bn_spectrum import bn_jacobian_spectrum

    lines = []
    for i, ((act, batch, depth, n), x) in enumerate(cases):
        law = bn_jacobian_spectrum(depth, act, batch)
        nonzero = x[x > ZERO_THRESHOLD * x.max(axis=1, keepdims=True)]
        lo = 10.0 ** math.floor(math.log10(np.quantile(nonzero, 1e-3)))
        hi = 10.0 ** math.ceil(math.log10(nonzero.max()))
        color = ("C2", "C1")[i]
        _log_density_hist(ax, nonzero, x.size, lo, hi, color, f"{act}, B = {batch}, L = {depth}, N = {n}: torch ({x.shape[0]} nets)")
        g = np.geomspace(lo, hi, 160)
        ax.plot(g, g * np.asarray(law.pdf(g), float), color + "-", lw=1.8, label=f"{act}: bn_jacobian_spectrum")
        frac = float(np.mean(x <= ZERO_THRESHOLD * x.max(axis=1, keepdims=True)))
        lines.append(f"{act}: atom {law.atoms[0][1]:.3f}, torch {frac:.3f}")
    ax.set_xscale("log")
    ax.set_xlabel(r"squared singular value $\lambda$ (log scale)", fontsize=11)
    ax.set_ylabel(r"$\lambda\rho(\lambda)$", fontsize=11)
    ax.set_title("Batch Jacobian with BN, nonlinear φ (C(n)-eigenvalue channel laws, §11.5b)", fontsize=9)
    ax.text(0.02, 0.97, "zeros (not drawn)\n" + "\n".join(lines), transform=ax.transAxes, ha="left", va="top",
            fontsize=9, bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})
    ax.legend(fontsize=7, loc="upper right")


def _log_density_hist(ax, values: np.ndarray, total: int, lo: float, hi: float, color: str, label: str) -> None:
    """Histogram of ln λ: heights count/(total · Δ ln λ) on log-spaced bins (comparable with λ·ρ(λ))."""
    edges = np.geomspace(lo, hi, 61)
    heights = np.histogram(values, bins=edges)[0] / total / np.diff(np.log(edges))
    ax.stairs(heights, edges, fill=True, color=color, alpha=0.35, label=label)


def _figure(cfg: dict, samples: dict, device: str, out_dir: Path) -> str:
    import matplotlib.pyplot as plt

    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import jacobian_spectrum
    from rmt_init.theory.bn_spectrum import bn_jacobian_spectrum

    batch, depth, n = cfg["figure"]
    trials = cfg["trials"]
    x_bn = samples.get(("linear", batch, depth, n))
    if x_bn is None:
        x_bn = np.asarray(network_jacobian_spectrum(depth, n, "linear", batchnorm="train", batch_size=batch,
                                                    trials=trials, drop_structural_zeros=False, seed=300,
                                                    device=device).squared_singular_values, np.float64)
    x_plain = np.asarray(network_jacobian_spectrum(depth, n, "linear", "gaussian", sigma_w2=1.0, batch_size=1,
                                                   trials=trials, seed=301,
                                                   device=device).squared_singular_values, np.float64)
    bn_law = bn_jacobian_spectrum(depth, batch_size=batch)
    plain = jacobian_spectrum(depth, "linear", weights="gaussian", sigma_w2=1.0)
    nonlinear = [(key, v) for key, v in samples.items() if key[0] != "linear"][:2]
    if nonlinear:
        fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13.0, 4.4))
        _nonlinear_panel(ax2, nonlinear)
    else:
        fig, ax = plt.subplots(figsize=(7.0, 4.4))
    nonzero = x_bn[x_bn > ZERO_THRESHOLD * x_bn.max(axis=1, keepdims=True)]
    lo = 10.0 ** math.floor(math.log10(min(np.quantile(nonzero, 1e-3), np.quantile(x_plain, 1e-3))))
    hi = 10.0 ** math.ceil(math.log10(max(nonzero.max(), x_plain.max())))
    _log_density_hist(ax, x_plain.ravel(), x_plain.size, lo, hi, "C0", f"no BN, torch ({x_plain.shape[0]} nets)")
    _log_density_hist(ax, nonzero, x_bn.size, lo, hi, "C3", f"BN (train, B = {batch}), torch ({x_bn.shape[0]} nets)")
    g = np.geomspace(lo, hi, 160)
    ax.plot(g, g * np.asarray(plain.pdf(g), float), "C0-", lw=1.8, label=f"no BN: Fuss–Catalan (depth {depth})")
    with np.errstate(all="ignore"):
        y = g * np.asarray(bn_law.pdf(g), float)
    ax.plot(g, y, "C3-", lw=1.8, label="BN: bn_jacobian_spectrum")
    tail = bn_law.tail_exponent
    ax.set_xscale("log")
    ax.set_xlabel(r"squared singular value $\lambda$ of the batch Jacobian (log scale)", fontsize=11)
    ax.set_ylabel(r"density of $\ln\lambda$: $\lambda\rho(\lambda)$", fontsize=11)
    edge = float(plain.upper_edge)
    ax.axvline(edge, color="C0", ls=":", lw=1.2)
    ax.annotate(f"no-BN top edge {edge:.3g}", xy=(edge, 0.3), xycoords=("data", "axes fraction"), xytext=(4, 0),
                textcoords="offset points", rotation=90, ha="left", va="bottom", fontsize=8, color="C0")
    ax.set_title(f"Batch Jacobian of linear nets, depth {depth}, N = {n}:\nno BN (Fuss–Catalan, hard top edge) vs BN "
                 rf"(B = {batch}: power-law tail $P(\lambda > x) \propto x^{{-{tail:g}}}$)", fontsize=9)
    frac = float(np.mean(x_bn <= ZERO_THRESHOLD * x_bn.max(axis=1, keepdims=True)))
    ax.text(0.02, 0.97, f"BN: atom at λ = 0 (not drawn)\ntheory 2/B = {2 / batch:.3f}, torch {frac:.3f}",
            transform=ax.transAxes, ha="left", va="top", fontsize=9,
            bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})
    ax.set_xlim(lo, hi)
    ax.set_ylim(0.0, 1.3 * max(np.nanmax(y), float(np.max(g * plain.pdf(g)))))
    ax.legend(fontsize=8, loc="upper right")
    ax.tick_params(labelsize=10)
    fig.tight_layout()
    name = "bn_batch_spectrum.png"
    atomic_savefig(fig, out_dir / name, dpi=90)
    return name
