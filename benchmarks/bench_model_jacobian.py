"""Benchmark: matrix-free vs dense Jacobian spectra of the CIFAR ResNets through ``model_jacobian_spectrum``.

Networks: ``cifar_resnet(depth, batchnorm=False)`` (He et al. 2016 §4.2, option A) initialised with
``initialize_(model, "kaiming_normal_", nonlinearity="relu")`` (zero biases), float64 unless said, one
3×32×32 input drawn from N(0, 1), the per-example Jacobian (no train-mode BatchNorm, so examples are not
coupled; with BN in eval mode at initialization the net is the same up to the factor 1/√(1 + eps) per BN).

(a) ResNet-56 in float32 (the dense forward-mode Jacobian holds all 3072 tangents of every activation at once:
    ≈ 6.5 GiB in float32, twice that in float64 — the quick run's 0.6 GiB × 16), Jacobian from the input
    (3·32·32 = 3072) to the output of the last stage ``"layer3"`` (64·8·8 = 4096): the 10 largest squared
    singular values by ``method="lanczos"`` (Golub–Kahan–Lanczos on Jacobian-vector / vector-Jacobian
    products, tol 1e-10) vs ``method="dense"`` (``vmap(jacfwd)`` — forward mode, as n_in < n_out — then
    ``torch.linalg.svdvals``). Seconds, peak memory, their ratios, and the largest relative difference of the
    two top-10 lists.
(b) ResNet-110: the top-10 squared singular values of the per-example Jacobian input → ``"layer3"``
    (4096 × 3072) by Lanczos, and of input → logits (10 × 3072: rank 10, so the "top 10" are all its values;
    Lanczos runs exactly 10 steps there and is compared with ``method="dense"``, 10 reverse-mode passes).
    Time in minutes.

Memory: each measurement runs in a fresh subprocess (``--worker METHOD DEPTH IMAGE END DTYPE``) that reads
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak RSS) after importing torch and warming up ``torch.func``
(excluded, printed), after building the model, and after the computation: "working" = the increase of the peak
during the computation, "total" = model + working (as ``bench_matrix_free.py``). One CPU thread throughout.

``--quick``: ResNet-20 for both parts, 16×16 inputs and float64 for (a) (so the dense Jacobian is 1024 × 768).

Measured (2-core shared machine, one thread, 2026-12): (a) dense 241 s and 6.5 GiB working memory, Lanczos 5.5 s
and 24 MiB (44× faster, 268× less memory), top-10 lists equal to 2.3e-7 relative (float32); (b) ResNet-110
input → layer3 top-10 in 29 s (0.48 min, 62 MiB), input → logits in 3 s (dense 1 s, equal to 4e-15).

Usage: python benchmarks/bench_model_jacobian.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

K = 10


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _worker(method: str, depth: int, image: int, end: str | None, dtype_name: str) -> dict:
    import torch

    torch.set_num_threads(1)
    dtype = getattr(torch, dtype_name)
    from rmt_init.montecarlo import cifar_resnet, initialize_, model_jacobian_spectrum

    start = time.perf_counter()  # one-off torch.func costs of a process, paid by both methods
    warm = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU()).to(dtype)
    xw = torch.randn(1, 3, 4, 4, dtype=dtype)
    model_jacobian_spectrum(warm, xw, method="dense", dtype=dtype)
    model_jacobian_spectrum(warm, xw, method="lanczos", k=2, seed=0, dtype=dtype)
    warmup_seconds = time.perf_counter() - start
    rss_import = _maxrss_bytes()
    gen = torch.Generator().manual_seed(0)
    model = cifar_resnet(depth, batchnorm=False, dtype=dtype)
    initialize_(model, "kaiming_normal_", nonlinearity="relu", generator=gen)
    x = torch.randn(1, 3, image, image, generator=gen, dtype=dtype)
    params = sum(p.numel() for p in model.parameters())
    rss_model = _maxrss_bytes()
    start = time.perf_counter()
    res = model_jacobian_spectrum(model, x, method=method, k=K, end=end, seed=1, dtype=dtype)
    seconds = time.perf_counter() - start
    rss_end = _maxrss_bytes()
    return {
        "method": method,
        "dtype": dtype_name,
        "depth": depth,
        "image": image,
        "end": end,
        "params": params,
        "shape": res.config["jacobian_shape"],
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
        "model_bytes": rss_model - rss_import,
        "working_bytes": rss_end - rss_model,
        "total_bytes": rss_end - rss_import,
        "top": np.sort(res.squared_singular_values[0]).tolist(),
    }


def _run(method: str, depth: int, image: int, end: str | None, dtype: str = "float64") -> dict:
    cmd = [sys.executable, __file__, "--worker", method, str(depth), str(image), str(end), dtype]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mib(b: float) -> str:
    return f"{b / 2**20:9.1f} MiB"


def _rel(a: list[float], b: list[float]) -> float:
    return float(np.max(np.abs(np.array(a) / np.array(b) - 1.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="ResNet-20; 16×16 inputs for (a)")
    parser.add_argument("--worker", nargs=5, metavar=("METHOD", "DEPTH", "IMAGE", "END", "DTYPE"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, depth, image, end, dtype = args.worker
        print(json.dumps(_worker(method, int(depth), int(image), None if end == "None" else end, dtype)))
        return

    depth_a, image_a, depth_b = (20, 16, 20) if args.quick else (56, 32, 110)
    dtype_a = "float64" if args.quick else "float32"
    print(f"(a) ResNet-{depth_a} (no BN, kaiming_normal relu, {dtype_a}, 1 thread), per-example Jacobian input "
          f"({image_a}×{image_a}) → 'layer3', top-{K}; each method in its own subprocess")
    dense = _run("dense", depth_a, image_a, "layer3", dtype_a)
    lanczos = _run("lanczos", depth_a, image_a, "layer3", dtype_a)
    print(f"    Jacobian {dense['shape'][0]} × {dense['shape'][1]}; parameters {dense['params']:,}; "
          f"model memory {_mib(dense['model_bytes']).strip()}")
    for r in (dense, lanczos):
        name = "dense (jacfwd + svdvals)" if r["method"] == "dense" else "Lanczos (matrix-free)"
        print(f"    {name:26s} {r['seconds']:9.2f} s   peak working {_mib(r['working_bytes'])}"
              f"   peak total {_mib(r['total_bytes'])}")
    print(f"    (one-off torch.func warm-up per process, excluded above: {lanczos['warmup_seconds']:.2f} s)")
    print(f"    time ratio dense/Lanczos           {dense['seconds'] / lanczos['seconds']:8.2f}x")
    print(f"    working-memory ratio dense/Lanczos {dense['working_bytes'] / max(lanczos['working_bytes'], 1):8.2f}x")
    print(f"    total-memory ratio dense/Lanczos   {dense['total_bytes'] / max(lanczos['total_bytes'], 1):8.2f}x")
    print(f"    max relative difference of the top-{K} lists: {_rel(lanczos['top'], dense['top']):.1e}")
    print(f"    top-{K} squared singular values (Lanczos): {', '.join(f'{v:.4g}' for v in lanczos['top'][::-1])}")

    print(f"(b) ResNet-{depth_b} (no BN), per-example Jacobian, top-{K} squared singular values by Lanczos, "
          "32×32 input")
    for end in ("layer3", None):
        r = _run("lanczos", depth_b, 32, end)
        label = "input → 'layer3'" if end else "input → logits"
        print(f"    {label:17s} {r['shape'][0]:5d} × {r['shape'][1]}: {r['seconds']:8.2f} s = "
              f"{r['seconds'] / 60:.2f} min   peak working {_mib(r['working_bytes'])}")
        print(f"        top-{K}: {', '.join(f'{v:.4g}' for v in r['top'][::-1])}")
        if end is None:
            d = _run("dense", depth_b, 32, None)
            print(f"        dense (jacrev, 10 reverse passes): {d['seconds']:.2f} s; max relative difference "
                  f"{_rel(r['top'], d['top']):.1e}")


if __name__ == "__main__":
    main()
