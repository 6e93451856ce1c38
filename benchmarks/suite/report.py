"""Turn a pytest-benchmark JSON file into a Markdown table of target/baseline ratios.

Usage::

    python -m pytest benchmarks/suite --benchmark-json=bench.json [--bench-size small]
    python benchmarks/suite/report.py bench.json [--stat median] > ratios.md

For every group, each ``target`` benchmark is divided by each ``baseline`` of the same group (roles from
``extra_info["role"]``, see ``conftest.py``). When both carry ``extra_info["units"]`` (points, quantiles)
the ratio is of the time per unit. A ratio > 1 means the target is slower than its baseline.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Sequence


def _seconds(entry: dict, stat: str) -> float:
    return float(entry["stats"][stat])


def _per_unit(entry: dict, stat: str, units: bool) -> float:
    t = _seconds(entry, stat)
    return t / float(entry["extra_info"]["units"]) if units else t


def _fmt_time(t: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6), ("ns", 1e-9)):
        if t >= scale:
            return f"{t / scale:.3g} {unit}"
    return f"{t:.3g} s"


def ratio_rows(data: dict, stat: str = "median") -> list[tuple[str, str, str, str, str, str]]:
    """``(group, target, baseline, target time, baseline time, ratio)`` rows, in group order."""
    groups: dict[str, dict[str, list[dict]]] = defaultdict(lambda: {"target": [], "baseline": []})
    for entry in data.get("benchmarks", []):
        role = entry.get("extra_info", {}).get("role")
        if role in ("target", "baseline"):
            groups[entry.get("group") or entry["name"]][role].append(entry)
    rows = []
    for group in sorted(groups):
        for tgt in groups[group]["target"]:
            for base in groups[group]["baseline"]:
                units = "units" in tgt["extra_info"] and "units" in base["extra_info"]
                t, b = _per_unit(tgt, stat, units), _per_unit(base, stat, units)
                suffix = " /unit" if units else ""
                rows.append(
                    (group, tgt["name"], base["name"], _fmt_time(t) + suffix, _fmt_time(b) + suffix,
                     f"{t / b:.3g}" if b > 0 else "inf")
                )
    return rows


def markdown(data: dict, stat: str = "median") -> str:
    """The Markdown report: machine line, then one table row per target/baseline pair."""
    machine = data.get("machine_info", {})
    cpu = machine.get("cpu", {}).get("brand_raw") or machine.get("processor") or "unknown CPU"
    lines = [
        f"Machine: {cpu}, {machine.get('system', '')} {machine.get('release', '')}, "
        f"Python {machine.get('python_version', '?')}; statistic: {stat}.",
        "",
        "| group | target | baseline | target | baseline | ratio |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {' | '.join(row)} |" for row in ratio_rows(data, stat)]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json_file", help="output of pytest --benchmark-json")
    parser.add_argument("--stat", default="median", choices=("min", "median", "mean", "max"))
    args = parser.parse_args(argv)
    with open(args.json_file, encoding="utf-8") as fh:
        data = json.load(fh)
    sys.stdout.write(markdown(data, args.stat))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
