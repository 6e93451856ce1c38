"""report.md, report.html (self-contained: figures embedded) and summary.json from the claims' records."""
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


def render_html(records: list[dict], size: str, device: str, out_dir: Any, seconds: float | None = None) -> str:
    """report.html: the same content as report.md in one self-contained page (rmt_init.report_html) — a summary
    table, then per claim its statement, source, configuration, the checks (predicted, measured, SE,
    tolerance, effect; rows coloured by verdict) and its figures embedded as base64 PNG; timings."""
    from pathlib import Path

    from rmt_init import report_html as H

    out_dir = Path(out_dir)
    ok = all(r["passed"] for r in records)
    body = [f"<p>{H.badge(ok)} {sum(r['passed'] for r in records)}/{len(records)} claims passed — size "
            f"<code>{H.escape(size)}</code>, device <code>{H.escape(device)}</code>"
            + (f", {seconds:.1f} s in all" if seconds is not None else "") + "</p>",
            "<h2>Claims</h2>",
            H.table(("claim", "verdict", "checks", "key numbers", "seconds"),
                    [(r["claim"], "PASS" if r["passed"] else "FAIL",
                      f"{sum(c['passed'] for c in r['checks'])}/{len(r['checks'])}", key_numbers(r),
                      float(r["seconds"])) for r in records],
                    row_classes=["pass" if r["passed"] else "fail" for r in records],
                    text_columns=(0, 1, 3), verdict_column=1)]
    for r in records:
        body += [f"<h2 id=\"{H.escape(r['claim'])}\">{H.escape(r['claim'])} {H.badge(r['passed'])}</h2>",
                 f"<p>{H.escape(r['statement'])}</p>", f"<p><em>Source:</em> {H.escape(r['source'])}</p>",
                 "<h3>Configuration</h3>", H.definitions(r["config"] if isinstance(r["config"], dict)
                                                         else {"config": r["config"]}),
                 f"<p>Time: {float(r['seconds']):.1f} s</p>",
                 H.table(("check", "predicted", "measured", "SE", "tolerance", "effect", "passed"),
                         [(c["name"] + (f" ({c['note']})" if c.get("note") else ""), c["predicted"], c["measured"],
                           c["stderr"], c["tolerance"], c.get("effect"), "yes" if c["passed"] else "NO")
                          for c in r["checks"]],
                         row_classes=["pass" if c["passed"] else "fail" for c in r["checks"]],
                         verdict_column=6)]
        for f in r["figures"]:
            path = out_dir / f
            if path.is_file():
                body.append(H.image(H.file_uri(path), caption=str(f)))
            else:
                body.append(f"<p>(figure {H.escape(f)} missing)</p>")
    return H.document(f"rmt_init validation report ({size}, {device})", "".join(body),
                      subtitle="Each claim of the literature that rmt_init encodes, against Monte Carlo samples with "
                               "derived tolerances")
