"""report.md and summary.json from the claims' records."""
from __future__ import annotations

from typing import Any


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(text: str) -> str:
    """Markdown table cell: escape the column separator."""
    return str(text).replace("|", "\\|")


def key_numbers(rec: dict) -> str:
    kn = rec.get("key_numbers")
    if kn:
        return "; ".join(f"{k} {_fmt(v)}" for k, v in kn.items())
    failed = [c for c in rec["checks"] if not c["passed"]]
    return f"{len(rec['checks']) - len(failed)}/{len(rec['checks'])} checks"


def render_report(records: list[dict], size: str, device: str) -> str:
    lines = [f"# rmt_init validation report (size `{size}`, device `{device}`)", "",
             "| claim | verdict | checks | key numbers | seconds |", "|---|---|---|---|---|"]
    for r in records:
        n_ok = sum(c["passed"] for c in r["checks"])
        lines.append(f"| {r['claim']} | {'PASS' if r['passed'] else '**FAIL**'} | {n_ok}/{len(r['checks'])} | "
                     f"{_cell(key_numbers(r))} | {r['seconds']:.1f} |")
    for r in records:
        lines += ["", f"## {r['claim']} — {'PASS' if r['passed'] else 'FAIL'}", "", r["statement"], "",
                  f"Source: {r['source']}", "", f"Configuration: `{r['config']}`", "",
                  "| check | predicted | measured | SE | tolerance | effect | passed |",
                  "|---|---|---|---|---|---|---|"]
        for c in r["checks"]:
            note = f" ({c['note']})" if c.get("note") else ""
            lines.append(f"| {_cell(c['name'] + note)} | {_fmt(c['predicted'])} | {_fmt(c['measured'])} | "
                         f"{_fmt(c['stderr'])} | {_fmt(c['tolerance'])} | {_fmt(c.get('effect'))} | "
                         f"{'yes' if c['passed'] else '**NO**'} |")
        if r["figures"]:
            lines += [""] + [f"![{f}]({f})" for f in r["figures"]]
    return "\n".join(lines) + "\n"


def summary(records: list[dict], size: str, device: str, seconds: float) -> dict:
    return {
        "size": size,
        "device": device,
        "passed": all(r["passed"] for r in records),
        "seconds": seconds,
        "claims": {r["claim"]: {"passed": r["passed"], "checks": len(r["checks"]),
                                "failed_checks": [c["name"] for c in r["checks"] if not c["passed"]],
                                "seconds": r["seconds"], "key_numbers": r.get("key_numbers", {})}
                   for r in records},
    }
