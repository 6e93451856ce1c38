"""Monte Carlo engine benchmarks (float64, CPU, one thread unless stated), each with its same-run baseline.

* ``chained_jacobian``: the chained layer Jacobian of a tanh MLP (width ``N``, depth ``L``: ``L`` dense
  ``N×N×N`` products) vs ``L`` plain ``torch`` GEMMs of the same sizes — the fraction of the machine's
  GEMM rate the engine reaches.
* ``network_spectrum``: ``network_jacobian_spectrum`` (one ReLU trial, layer statistics on; float64 draws and,
  second target, ``init_dtype="float32"`` draws) vs the
  pipeline it wraps on a prebuilt network (chain + ``svdvals``), vs the same pipeline building the network
  (drawing its weights with ``torch.nn.init``) inside the timing, and vs drawing the network's
  ``L·N²`` Gaussian weights with ``torch``'s generator (the part of the "overhead" that is random numbers).
* ``product``: ``product_spectrum`` QR-stabilised with blocks (``qr_every="auto"``) vs the direct product
  and vs the every-layer QR recursion (``qr_every=1``).
* ``product_well_conditioned``: the same for Haar factors, where the direct product is exact to rounding.
* ``threads``: a GEMM and a chained Jacobian on 2 threads (target) vs 1 thread (baseline).
"""
from __future__ import annotations

import pytest
import torch

from _helpers import pick, run
from rmt_init.montecarlo import chained_jacobian, network_jacobian_spectrum, product_spectrum
from rmt_init.montecarlo.network_setup import network_setup

F64 = torch.float64


def _sizes(size):
    return pick(size, (32, 4), (512, 20), (1024, 50))  # (width, depth)


def _mlp(width, depth, activation):
    setup = network_setup(depth, width, activation, "kaiming_normal", trials=1, seed=0, device="cpu")
    model, x, _ = setup.build(0)
    return model, x


@pytest.mark.benchmark(group="chained_jacobian")
def bench_chained_jacobian(benchmark, size):
    width, depth = _sizes(size)
    model, x = _mlp(width, depth, "tanh")
    run(benchmark, lambda: chained_jacobian(model, x, "per_example"), "target", size, width=width, depth=depth)


@pytest.mark.benchmark(group="chained_jacobian")
def bench_gemm_chain(benchmark, size):
    width, depth = _sizes(size)
    gen = torch.Generator().manual_seed(0)
    ws = [torch.randn(width, width, generator=gen, dtype=F64) / width**0.5 for _ in range(depth)]

    def chain():
        t = torch.eye(width, dtype=F64)
        for w in ws:
            t = t @ w.T
        return t

    run(benchmark, chain, "baseline", size, width=width, depth=depth)


@pytest.mark.benchmark(group="network_spectrum")
def bench_network_jacobian_spectrum(benchmark, size):
    width, depth = _sizes(size)
    run(
        benchmark,
        lambda: network_jacobian_spectrum(depth, width, "relu", "kaiming_normal", trials=1, seed=0, device="cpu"),
        "target", size, width=width, depth=depth,
    )


@pytest.mark.benchmark(group="network_spectrum")
def bench_network_jacobian_spectrum_float32_draws(benchmark, size):
    # Weights drawn as a float32 model's (torch's vectorised float32 normal sampler), Jacobian in float64.
    width, depth = _sizes(size)
    run(
        benchmark,
        lambda: network_jacobian_spectrum(
            depth, width, "relu", "kaiming_normal", trials=1, seed=0, device="cpu", init_dtype="float32"
        ),
        "target", size, width=width, depth=depth,
    )


@pytest.mark.benchmark(group="network_spectrum")
def bench_chain_and_svd(benchmark, size):
    width, depth = _sizes(size)
    model, x = _mlp(width, depth, "relu")
    run(
        benchmark, lambda: torch.linalg.svdvals(chained_jacobian(model, x, "per_example")), "baseline", size,
        width=width, depth=depth,
    )


@pytest.mark.benchmark(group="network_spectrum")
def bench_build_chain_and_svd(benchmark, size):
    # The same pipeline with the network built (its weights drawn by torch.nn.init) inside the timing: what
    # network_jacobian_spectrum must do per trial. target / this = the engine's own overhead.
    width, depth = _sizes(size)
    run(benchmark, lambda: torch.linalg.svdvals(chained_jacobian(*_mlp(width, depth, "relu"), "per_example")),
        "baseline", size, width=width, depth=depth)


@pytest.mark.benchmark(group="network_spectrum")
def bench_weight_draws(benchmark, size):
    width, depth = _sizes(size)
    gen = torch.Generator().manual_seed(0)
    w = torch.empty(width, width, dtype=F64)

    def draws():
        for _ in range(depth):
            w.normal_(0.0, 1.0, generator=gen)

    run(benchmark, draws, "baseline", size, width=width, depth=depth)


def _product_sizes(size):
    return pick(size, (16, 40, 2), (256, 50, 4), (1024, 50, 2))  # (width, depth, trials)


@pytest.mark.benchmark(group="product")
def bench_product_stabilised(benchmark, size):
    n, depth, trials = _product_sizes(size)
    product_spectrum(depth, n, trials=1, device="cpu", stabilize=True)  # caches the measured spread
    run(
        benchmark, lambda: product_spectrum(depth, n, trials=trials, seed=0, device="cpu", stabilize=True),
        "target", size, width=n, depth=depth,
    )


@pytest.mark.benchmark(group="product")
def bench_product_direct(benchmark, size):
    n, depth, trials = _product_sizes(size)
    run(
        benchmark, lambda: product_spectrum(depth, n, trials=trials, seed=0, device="cpu", stabilize=False),
        "baseline", size, width=n, depth=depth,
    )


@pytest.mark.benchmark(group="product")
def bench_product_qr_every_layer(benchmark, size):
    n, depth, trials = _product_sizes(size)
    run(
        benchmark,
        lambda: product_spectrum(depth, n, trials=trials, seed=0, device="cpu", stabilize=True, qr_every=1),
        "baseline", size, width=n, depth=depth,
    )


def _isometry_sizes(size):
    return pick(size, (16, 10, 2), (256, 50, 4), (1024, 50, 2))  # (width, depth, trials)


# Haar factors: the direct product is exact to rounding at any depth (σ_max/σ_min = 1). Square Gaussian factors
# never are: one factor's smallest singular value sits at the hard edge (~1/n), so σ_max/σ_min ≈ 1e8 already at
# depth 3, n = 256, and the direct product's smallest σ carry ~1e-8 relative errors.
@pytest.mark.benchmark(group="product_well_conditioned")
def bench_isometry_product_stabilised(benchmark, size):
    n, depth, trials = _isometry_sizes(size)
    kw = dict(weights="orthogonal", sigma_w2=1.0, device="cpu")
    product_spectrum(depth, n, trials=1, stabilize=True, **kw)
    run(benchmark, lambda: product_spectrum(depth, n, trials=trials, seed=0, stabilize=True, **kw),
        "target", size, width=n, depth=depth)


@pytest.mark.benchmark(group="product_well_conditioned")
def bench_isometry_product_direct(benchmark, size):
    n, depth, trials = _isometry_sizes(size)
    kw = dict(weights="orthogonal", sigma_w2=1.0, device="cpu")
    run(benchmark, lambda: product_spectrum(depth, n, trials=trials, seed=0, stabilize=False, **kw),
        "baseline", size, width=n, depth=depth)


@pytest.mark.parametrize("threads", [2, 1])
@pytest.mark.parametrize("width", [256, 1024])
@pytest.mark.benchmark(group="threads_gemm")
def bench_threads_gemm(benchmark, size, threads, width):
    width = pick(size, width // 8, width, width)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(width, width, generator=gen, dtype=F64)
    benchmark.group = f"threads_gemm_{width}"
    torch.set_num_threads(threads)
    run(benchmark, lambda: [a @ a for _ in range(4)], "target" if threads > 1 else "baseline", size,
        threads=threads, width=width)


@pytest.mark.parametrize("threads", [2, 1])
@pytest.mark.parametrize("width", [256, 1024])
@pytest.mark.benchmark(group="threads_chain")
def bench_threads_chained_jacobian(benchmark, size, threads, width):
    width = pick(size, width // 8, width, width)
    depth = pick(size, 3, 10, 10)
    model, x = _mlp(width, depth, "relu")
    benchmark.group = f"threads_chain_{width}"
    torch.set_num_threads(threads)
    run(benchmark, lambda: chained_jacobian(model, x, "per_example"), "target" if threads > 1 else "baseline", size,
        threads=threads, width=width)
