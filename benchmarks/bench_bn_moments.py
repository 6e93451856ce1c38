"""Benchmark: m1, m2, m3 of a BN network's batch Jacobian — matrix-free Hutchinson vs dense Jacobian + SVD.

Same networks (same seed) for all paths: ReLU MLP, ``batchnorm="train"``, float64, one CPU thread.

* dense: ``network_jacobian_spectrum(..., drop_structural_zeros=False, layer_stats=False)`` — the chained
  ``B·N × B·N`` batch Jacobian and its ``svdvals``; moments as means of ``λ^k`` (exact).
* hutchinson: ``network_jacobian_moments(..., probes=P)`` — ``3 P`` probe passes through the layer maps (``J v``,
  ``Jᵀ J v``, ``J Jᵀ J v``), never the matrix.
* slq (the generic ``model_jacobian_spectrum(method="slq", probes=P, steps=2)`` on the same ``nn.Sequential``, one
  network): stochastic Lanczos quadrature with 2 steps is exact for polynomials of degree ≤ 3, so it gives the same
  kind of estimate, through ``torch.func``/autograd on a private copy of the model.

Prints seconds per network, the ratios against dense (same run), and the relative difference of the Hutchinson
moments from the exact ones against their probe SE.

Sizes: default B = 16, N = 128, depth 4 (the batch Jacobian is 2048 × 2048); ``--quick``: B = 8, N = 64, depth 4.
Usage: python benchmarks/bench_bn_moments.py [--quick] [--probes P] [--trials T]
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--probes", type=int, default=8)
    ap.add_argument("--trials", type=int, default=3)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from rmt_init.montecarlo import model_jacobian_spectrum, network_jacobian_moments, network_jacobian_spectrum
    from rmt_init.montecarlo.network_setup import network_setup

    batch, width, depth = (8, 64, 4) if args.quick else (16, 128, 4)
    act, seed, trials, probes = "relu", 7, args.trials, args.probes
    common = dict(batchnorm="train", batch_size=batch, trials=trials, seed=seed, device="cpu")
    print(f"relu MLP, batchnorm='train', B = {batch}, N = {width}, depth {depth}: batch Jacobian "
          f"{batch * width} x {batch * width}; {trials} networks, P = {probes} probes; float64, 1 thread")

    network_jacobian_moments(depth, width, act, **{**common, "trials": 1}, probes=2)  # warm-up
    t = time.perf_counter()
    dense = network_jacobian_spectrum(depth, width, act, **common, drop_structural_zeros=False, layer_stats=False)
    t_dense = (time.perf_counter() - t) / trials
    lam = np.asarray(dense.squared_singular_values, np.float64)
    exact = np.stack([np.mean(lam**k, axis=1) for k in (1, 2, 3)], axis=1)

    t = time.perf_counter()
    hut = network_jacobian_moments(depth, width, act, **common, probes=probes)
    t_hut = (time.perf_counter() - t) / trials

    setup = network_setup(depth, width, act, batchnorm="train", batch_size=batch, trials=1, seed=seed, device="cpu")
    model, x, _ = setup.build(0)
    t = time.perf_counter()
    slq = model_jacobian_spectrum(model, x, method="slq", probes=probes, steps=2, seed=seed, points=10)
    t_slq = time.perf_counter() - t

    print(f"{'path':>12s} {'s/network':>10s} {'x dense':>8s}")
    for name, sec in (("dense", t_dense), ("hutchinson", t_hut), ("slq", t_slq)):
        print(f"{name:>12s} {sec:10.3f} {sec / t_dense:8.4f}")
    print(f"speed-up of hutchinson over dense: {t_dense / t_hut:.1f}x; over slq: {t_slq / t_hut:.1f}x")
    rel = (hut.per_network - exact) / exact
    z = (hut.per_network - exact) / hut.probe_stderr
    for k in (1, 2, 3):
        print(f"m{k}: hutchinson - exact, relative per network {np.array2string(rel[:, k - 1], precision=4)}; "
              f"in probe SEs {np.array2string(z[:, k - 1], precision=2)}")
    slq_m = [slq.moment(k)[0] for k in (1, 2, 3)]
    print("slq (network 0) relative to exact: " + ", ".join(f"m{k} {slq_m[k - 1] / exact[0, k - 1] - 1:+.4f}"
                                                            for k in (1, 2, 3)))


if __name__ == "__main__":
    main()
