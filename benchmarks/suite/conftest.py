"""Benchmark suite of rmt_init (pytest-benchmark): every target timed next to its baseline or peer, same run.

Each benchmark sits in a ``group`` (``@pytest.mark.benchmark(group=...)``) with ``extra_info["role"]``
``"target"`` (rmt_init's code) or ``"baseline"`` (what it is measured against: a peer library, the
hardware's GEMM rate, the same work without the engine's wrapping). ``report.py`` turns the JSON of a run
into the Markdown table of target/baseline ratios; absolute times depend on the machine, the ratios much
less.

Sizes: ``--bench-size tiny`` (seconds, used by ``tests/test_bench_suite.py`` with ``--benchmark-disable``
so the suite cannot rot), ``small`` (default, a few minutes) and ``full`` (the issue's sizes: width 1024,
depth 50, 10⁶–10⁷ points; may take long today — the free-product quantiles at depth 1000 are marked
``slow``).

Everything runs on one CPU thread (``torch.set_num_threads(1)``) unless a benchmark says otherwise
(the thread benchmarks compare 1 and 2 threads explicitly).
"""
from __future__ import annotations

import pytest
import torch

SIZES = ("tiny", "small", "full")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--bench-size", default="small", choices=SIZES, help="problem sizes of the benchmark suite (tiny/small/full)"
    )


@pytest.fixture(scope="session")
def size(request: pytest.FixtureRequest) -> str:
    """The ``--bench-size`` of this run."""
    return request.config.getoption("--bench-size")


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
