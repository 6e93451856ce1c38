"""Benchmark: matrix-free top-k squared singular values of a deep MLP's Jacobian vs the dense Jacobian.

(a) Per-example input-output Jacobian of a ReLU MLP (kaiming_normal, float64, no bias): the 10 largest squared
    singular values by Golub–Kahan–Lanczos on Jacobian-vector / vector-Jacobian products
    (``lanczos_squared_singular_values`` on a ``JacobianOperator``, tol 1e-10) vs the dense Jacobian
    (``torch.func.jacrev``) followed by ``torch.linalg.svdvals``. Prints seconds, peak memory, the ratios
    and the largest relative difference between the two top-10 lists.
(b) Peak memory of the matrix-free path vs the number of parameters at 4 widths (same depth), with the
    least-squares slope in bytes per parameter (8 for the float64 weights themselves) and the largest relative
    deviation from the fitted line (small: linear growth).

Memory: every measurement runs in a fresh subprocess (``python bench_matrix_free.py --worker ...``), which
reads ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (peak resident set size; KiB on Linux) after importing torch
and warming up ``torch.func`` (its first use costs 1–2 s and tens of MiB once per process; excluded from the
figures, printed), after building the model, and after the computation. "model" = the increase from building the network;
"working" = the further increase of the peak during the computation (Jacobian or Krylov basis, activations,
autograd buffers); "total" = both. (tracemalloc does not see torch's allocations.) All runs use one CPU thread.

Sizes: default (the issue's): (a) width 2048, depth 50; (b) widths 512, 1024, 1536, 2048 at depth 50.
``--quick``: (a) width 256, depth 10; (b) widths 128, 256, 384, 512 at depth 10.

Usage: python benchmarks/bench_matrix_free.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def _worker(method: str, width: int, depth: int, k: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from rmt_init.montecarlo import (
        JacobianOperator,
        build_mlp,
        lanczos_squared_singular_values,
        weight_init,
    )
    from rmt_init.montecarlo.networks import kaiming_defaults

    # one-off costs of the first torch.func transform in a process (lazy imports, ~1-2 s, tens of MiB), paid by
    # both methods: done before the measurements and reported separately
    start = time.perf_counter()
    small = torch.randn(3, 3, dtype=torch.float64)
    torch.func.jacrev(lambda x: small @ x)(torch.ones(3, dtype=torch.float64))
    warm = JacobianOperator(lambda x: torch.tanh(small @ x), torch.ones(3, dtype=torch.float64))
    warm.matvec(torch.ones(3, 2, dtype=torch.float64)), warm.rmatvec(torch.ones(3, 2, dtype=torch.float64))
    warmup_seconds = time.perf_counter() - start
    rss_import = _maxrss_bytes()
    gen = torch.Generator().manual_seed(0)
    spec = weight_init("kaiming_normal", default_kwargs=kaiming_defaults("relu"))
    model = build_mlp([width] * (depth + 1), "relu", spec, generator=gen)
    for p in model.parameters():
        p.requires_grad_(False)
    params = sum(p.numel() for p in model.parameters())
    x0 = torch.randn(width, generator=gen, dtype=torch.float64)
    rss_model = _maxrss_bytes()

    def fn(x):
        return model(x[None])[0]

    start = time.perf_counter()
    products = 0
    if method == "dense":
        J = torch.func.jacrev(fn)(x0)
        top = np.sort(torch.linalg.svdvals(J).numpy() ** 2)[-k:]
    else:
        op = JacobianOperator(fn, x0)
        top = lanczos_squared_singular_values(op, k, generator=1, tol=1e-10)
        products = op.matvecs + op.rmatvecs
    seconds = time.perf_counter() - start
    rss_end = _maxrss_bytes()
    return {
        "method": method,
        "width": width,
        "depth": depth,
        "params": params,
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
        "model_bytes": rss_model - rss_import,
        "working_bytes": rss_end - rss_model,
        "total_bytes": rss_end - rss_import,
        "products": products,
        "top": top.tolist(),
    }


def _run(method: str, width: int, depth: int, k: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, str(width), str(depth), str(k)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mib(b: float) -> str:
    return f"{b / 2**20:9.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: width 256 depth 10; widths 128..512")
    parser.add_argument("--worker", nargs=4, metavar=("METHOD", "WIDTH", "DEPTH", "K"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        method, width, depth, k = args.worker
        print(json.dumps(_worker(method, int(width), int(depth), int(k))))
        return

    k = 10
    width, depth = (256, 10) if args.quick else (2048, 50)
    widths = (128, 256, 384, 512) if args.quick else (512, 1024, 1536, 2048)
    print(f"(a) top-{k} squared singular values of the per-example Jacobian, ReLU MLP width {width}, depth {depth},")
    print("    kaiming_normal, float64, 1 CPU thread; each method in its own subprocess")
    dense = _run("dense", width, depth, k)
    lanczos = _run("lanczos", width, depth, k)
    print(f"    parameters {dense['params']:,}; model memory {_mib(dense['model_bytes']).strip()}")
    for r in (dense, lanczos):
        name = "dense jacrev + svdvals" if r["method"] == "dense" else "Lanczos (matrix-free)"
        extra = f", {r['products']} products" if r["products"] else ""
        print(
            f"    {name:24s} {r['seconds']:9.2f} s   peak working {_mib(r['working_bytes'])}"
            f"   peak total {_mib(r['total_bytes'])}{extra}"
        )
    print(f"    (one-off torch.func warm-up per process, excluded above: {lanczos['warmup_seconds']:.2f} s)")
    print(f"    time ratio dense/Lanczos          {dense['seconds'] / lanczos['seconds']:7.2f}x")
    print(f"    working-memory ratio dense/Lanczos {dense['working_bytes'] / max(lanczos['working_bytes'], 1):7.2f}x")
    print(f"    total-memory ratio dense/Lanczos   {dense['total_bytes'] / lanczos['total_bytes']:7.2f}x")
    rel = np.max(np.abs(np.array(lanczos["top"]) / np.array(dense["top"]) - 1))
    print(f"    max relative difference of the top-{k} lists: {rel:.1e}")

    print(f"(b) peak memory of the matrix-free path (top-{k}) vs parameters, depth {depth}")
    rows = [lanczos if w == width else _run("lanczos", w, depth, k) for w in widths]
    params = np.array([r["params"] for r in rows], dtype=float)
    for r in rows:
        print(
            f"    width {r['width']:5d}  params {r['params']:12,d}  total {_mib(r['total_bytes'])}"
            f"  working {_mib(r['working_bytes'])}  {r['seconds']:8.2f} s"
        )
    for key in ("total_bytes", "working_bytes"):
        mem = np.array([r[key] for r in rows], dtype=float)
        slope, intercept = np.polyfit(params, mem, 1)
        dev = np.max(np.abs(mem - (slope * params + intercept))) / np.max(mem)
        print(
            f"    {key.split('_')[0]:7s} memory: slope {slope:6.2f} bytes/parameter, intercept {_mib(intercept).strip()},"
            f" max deviation from the line {dev:.1%} of the largest"
        )


if __name__ == "__main__":
    main()
