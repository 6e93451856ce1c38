"""Benchmark of the Monte Carlo engine (prints figures; no assertions).

(a) Per-example input-output Jacobian of a ReLU MLP (width 512, depth 20, kaiming_normal, float64):
    the engine's chained layer Jacobians vs ``torch.autograd.functional.jacobian`` (one backward pass per
    output, the default) and its ``vectorize=True`` variant; prints the seconds, the ratios and the
    largest absolute difference between the Jacobians.
(b) Throughput of squared singular values per second of Gaussian products (``product_spectrum``):
    direct and QR-stabilised algorithms (every layer, and every k layers with the automatic k), on the CPU and, when available, on CUDA (with the GPU/CPU ratio).

Quick default: (a) as above, (b) width 256, depth 50. ``--full``: (b) at width 1024, depth 50 (the issue's sizes).

Each part runs once per CPU thread count in ``--threads`` (default: 1 and torch's default): on a busy
machine intra-op threads can make dense kernels many times slower, so both figures are printed.
(The engine itself always runs LAPACK decompositions single-threaded on the CPU.)

The ratios that track regressions are in the pytest-benchmark suite (``benchmarks/suite``).

Usage: python benchmarks/bench_montecarlo.py [--full] [--repeat 3] [--trials N] [--threads 1 2]
"""
from __future__ import annotations

import argparse
import time

import torch

from rmt_init.montecarlo import build_mlp, chained_jacobian, product_spectrum, weight_init
from rmt_init.montecarlo.networks import kaiming_defaults


def _best(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def bench_jacobian(width: int, depth: int, repeat: int) -> None:
    gen = torch.Generator().manual_seed(0)
    spec = weight_init("kaiming_normal", default_kwargs=kaiming_defaults("relu"))
    model = build_mlp([width] * (depth + 1), "relu", spec, generator=gen)
    x = torch.randn(1, width, generator=gen, dtype=torch.float64)

    def ours():
        return chained_jacobian(model, x, "per_example")[0]

    def f(v):
        return model(v[None])[0]

    def baseline():
        return torch.autograd.functional.jacobian(f, x[0])

    def baseline_vec():
        return torch.autograd.functional.jacobian(f, x[0], vectorize=True)

    j1, j2 = ours(), baseline()
    diff = float((j1 - j2).abs().max())
    t_ours = _best(ours, repeat)
    t_base = _best(baseline, repeat)
    t_vec = _best(baseline_vec, repeat)
    print(f"(a) MLP Jacobian, width {width}, depth {depth}, relu, float64, {torch.get_num_threads()} CPU threads")
    print(f"    chained layer Jacobians              {t_ours:9.4f} s")
    print(f"    autograd.functional.jacobian         {t_base:9.4f} s   ratio {t_base / t_ours:7.1f}x")
    print(f"    autograd.functional.jacobian(vec.)   {t_vec:9.4f} s   ratio {t_vec / t_ours:7.1f}x")
    print(f"    max |J_chained - J_autograd|          {diff:.2e}")


def bench_products(width: int, depth: int, trials: int, device: str, stabilize: bool, qr_every="auto") -> float:
    product_spectrum(depth, width, trials=1, device=device, stabilize=stabilize, qr_every=qr_every)  # warm-up
    start = time.perf_counter()
    res = product_spectrum(depth, width, trials=trials, seed=0, device=device, stabilize=stabilize, qr_every=qr_every)
    if device == "cuda":
        torch.cuda.synchronize()
    secs = time.perf_counter() - start
    rate = res.samples.size / secs
    name = f"QR every {res.config['qr_every']}" if stabilize else "direct"
    print(f"    {device:4s} {name:14s} {trials} products: {secs:8.3f} s, {rate:12.1f} squared singular values/s")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="issue sizes for (b): width 1024, depth 50")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trials", type=int, default=None)
    parser.add_argument("--threads", type=int, nargs="+", default=sorted({1, torch.get_num_threads()}))
    args = parser.parse_args()
    width = 1024 if args.full else 256
    trials = args.trials or (2 if args.full else 8)
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"=== {threads} CPU thread(s) ===")
        bench_jacobian(512, 20, args.repeat)
        print(f"(b) products of {50} Gaussian {width}x{width} matrices, float64")
        rates = {}
        bench_products(width, 50, trials, "cpu", True, qr_every=1)  # the every-layer recursion, for reference
        for stabilize in (False, True):
            rates[("cpu", stabilize)] = bench_products(width, 50, trials, "cpu", stabilize)
            if torch.cuda.is_available():
                rates[("cuda", stabilize)] = bench_products(width, 50, 4 * trials, "cuda", stabilize)
                print(f"    GPU/CPU throughput ratio: {rates[('cuda', stabilize)] / rates[('cpu', stabilize)]:.1f}x")
        if not torch.cuda.is_available():
            print("    (no CUDA device: GPU figures skipped)")


if __name__ == "__main__":
    main()
