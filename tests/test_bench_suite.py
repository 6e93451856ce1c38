"""The benchmark suite (benchmarks/suite) runs: every benchmark once at its smallest size, untimed.

Needs pytest-benchmark (the ``test`` and ``bench`` extras); skipped cleanly without it. The free-product
quantile benchmark (marked ``slow``: seconds even at the smallest size today) is collected, not run. The
report script is checked on the run's JSON: one ratio row per target/baseline pair of each group.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("pytest_benchmark")

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "benchmarks" / "suite"


def _pytest(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(SUITE), "-q", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


def test_suite_collects_and_runs_at_the_smallest_size(tmp_path):
    out = tmp_path / "bench.json"
    ran = _pytest("--bench-size", "tiny", "--benchmark-disable", "-m", "not slow", f"--benchmark-json={out}")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert " passed" in ran.stdout and "1 deselected" in ran.stdout  # the slow case was imported and collected
    # With --benchmark-disable nothing is timed, so the JSON has no entries; the report must still be a
    # well-formed (empty) table. Fed a synthetic run, it pairs each target with each baseline of its group.
    sys.path.insert(0, str(SUITE))
    try:
        import report
    finally:
        sys.path.remove(str(SUITE))
    data = json.loads(out.read_text()) if out.exists() else {"benchmarks": []}
    assert report.ratio_rows(data) == []
    assert report.markdown(data).startswith("Machine:")
    fake = {
        "machine_info": {},
        "benchmarks": [
            {"group": "g", "name": "t", "stats": {"median": 3.0}, "extra_info": {"role": "target", "units": 30}},
            {"group": "g", "name": "b1", "stats": {"median": 2.0}, "extra_info": {"role": "baseline", "units": 2}},
            {"group": "g", "name": "b2", "stats": {"median": 6.0}, "extra_info": {"role": "baseline"}},
            {"group": "h", "name": "x", "stats": {"median": 1.0}, "extra_info": {"role": "target"}},
        ],
    }
    rows = report.ratio_rows(fake)
    # per unit: (3/30)/(2/2) = 0.1; without units on both sides: 3/6 = 0.5; group h has no baseline
    assert [(r[1], r[2], r[5]) for r in rows] == [("t", "b1", "0.1"), ("t", "b2", "0.5")]
