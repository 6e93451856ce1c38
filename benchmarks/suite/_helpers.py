"""Shared helpers of the benchmark files (sizes and the role-tagged pedantic timer)."""
from __future__ import annotations


def pick(size: str, tiny, small, full):
    """The value of a parameter at this ``size``."""
    return {"tiny": tiny, "small": small, "full": full}[size]


def run(benchmark, fn, role: str, size: str, rounds: int | None = None, **info):
    """Time ``fn`` (pedantic mode: ``rounds`` rounds of one call, one warm-up) and tag its ``role``.

    ``info`` goes into the JSON's ``extra_info``; ``units=`` (points, quantiles, …) makes ``report.py``
    compare time per unit when target and baseline do different amounts of work.
    """
    benchmark.extra_info["role"] = role
    benchmark.extra_info["size"] = size
    benchmark.extra_info.update(info)
    if rounds is None:
        rounds = pick(size, 1, 3, 3)
    return benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1 if size != "tiny" else 0)
