"""The sweep's reports next to its dataset: ``<stem>.md`` (a table of every point) and ``<stem>.html``
(self-contained, :mod:`rmt_init.report_html`: configuration, timings, the table and a figure — measured top
eigenvalue ± SE against the law's upper edge, and KS and first-moment errors ± SE, across the grid)."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from .. import report_html as H

__all__ = ["rows", "render_markdown", "render_html", "write_reports", "figure"]

HEADERS = ("point", "λ_max theory", "λ_max measured", "± SE", "m1 theory", "m1 measured", "± SE",
           "m2 theory", "m2 measured", "± SE", "KS", "edge error", "seconds", "note")


def _points(ds: Any) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    axes = [a for a in ds.attrs.get("axes", "").split(",") if a]
    shape = tuple(ds.sizes[a] for a in axes)
    out = []
    for at in np.ndindex(*shape):
        sel = dict(zip(axes, at))
        one = ds.isel(sel)
        label = {a: one[a].item() for a in axes}
        out.append((label, one))
    return out


def rows(ds: Any) -> list[list[Any]]:
    """One row per point: its axis values, then the numbers of :data:`HEADERS`."""
    table = []
    for label, p in _points(ds):
        def v(name: str, k: int | None = None) -> float:
            x = p[name] if k is None else p[name].sel(moment=k)
            return float(x.item())

        table.append([", ".join(f"{a}={b}" for a, b in label.items()) or "(one point)",
                      v("predicted_top"), v("measured_top"), v("measured_top_se"),
                      v("predicted_moment", 1), v("measured_moment", 1), v("measured_moment_se", 1),
                      v("predicted_moment", 2), v("measured_moment", 2), v("measured_moment_se", 2),
                      v("ks"), v("edge_error"), v("seconds"), str(p["note"].item())])
    return table


def _config(ds: Any) -> dict[str, Any]:
    axes = [a for a in ds.attrs.get("axes", "").split(",") if a]
    items: dict[str, Any] = {f"axis {a}": ", ".join(str(x) for x in ds[a].values.tolist()) for a in axes}
    for k, val in json.loads(ds.attrs.get("fixed", "{}")).items():
        items[k] = "default" if val is None else val
    items |= {"base seed": ds.attrs.get("seed"), "device": ds.attrs.get("device")}
    return items


def _timings(ds: Any) -> dict[str, Any]:
    seconds = ds["seconds"].values[np.isfinite(ds["seconds"].values)]
    return {"wall time of the run (s)": float(ds.attrs.get("seconds", math.nan)),
            "points computed in the run": int(ds.attrs.get("computed", 0)),
            "points resumed from parts": int(ds.attrs.get("resumed", 0)),
            "compute time, all points (s)": float(seconds.sum()) if seconds.size else math.nan,
            "slowest point (s)": float(seconds.max()) if seconds.size else math.nan}


def figure(ds: Any) -> Any:
    """Two panels over the points: measured mean top eigenvalue ± SE with the law's upper edge (log scale),
    and KS and relative first-moment error ± SE (points without a comparison are left out)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    table = rows(ds)
    x = np.arange(len(table))
    labels = [r[0] for r in table]
    pred, meas, se = (np.array([r[i] for r in table], float) for i in (1, 2, 3))
    ks = np.array([r[10] for r in table], float)
    m1 = np.array([float(p["moment_error"].sel(moment=1)) for _, p in _points(ds)])
    m1se = np.array([float(p["moment_error_se"].sel(moment=1)) for _, p in _points(ds)])
    fig, (a, b) = plt.subplots(2, 1, figsize=(8.0, 6.4), layout="constrained", sharex=True)
    a.errorbar(x, meas, yerr=se, fmt="o", color="C0", capsize=3, label="torch networks: mean λ_max ± SE")
    a.plot(x, pred, "_", color="C3", markersize=16, mew=2.5, label="theory: upper edge (N → ∞)")
    if np.all(meas[np.isfinite(meas)] > 0):
        a.set_yscale("log")
    a.set_ylabel("largest λ of J Jᵀ")
    a.legend(fontsize=8)
    b.plot(x, ks, "s", color="C2", label="KS distance")
    b.errorbar(x, m1, yerr=m1se, fmt="o", color="C1", capsize=3, label="relative error of m1 ± SE")
    b.axhline(0.0, color="0.6", lw=0.8)
    b.set_ylabel("distance to theory")
    b.legend(fontsize=8)
    b.set_xticks(x, labels, rotation=35, ha="right", fontsize=7)
    return fig


def render_markdown(ds: Any) -> str:
    lines = [f"# {ds.attrs.get('title', 'rmt_init sweep')}", "", "## Configuration", ""]
    lines += [f"- {k}: {H.number(v)}" for k, v in _config(ds).items()]
    lines += ["", "## Timings", ""] + [f"- {k}: {H.number(v)}" for k, v in _timings(ds).items()]
    lines += ["", "## Points", "", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    for row in rows(ds):
        lines.append("| " + " | ".join(H.number(c).replace("|", "\\|") for c in row) + " |")
    return "\n".join(lines) + "\n"


def render_html(ds: Any) -> str:
    body = ["<h2>Configuration</h2>", H.definitions(_config(ds)),
            "<h2>Timings</h2>", H.definitions(_timings(ds)),
            "<h2>Figure</h2>",
            H.image(H.figure_uri(figure(ds)), "Top eigenvalue and distances to the theory at every point"),
            "<h2>Points</h2>",
            "<p>Theory: jacobian_spectrum (N → ∞); measured: torch networks at the point's width; SE across "
            "networks. Batch-norm points report measured numbers only. No verdicts: the distances include the "
            "finite-width bias.</p>",
            H.table(HEADERS, rows(ds), text_columns=(0, len(HEADERS) - 1))]
    return H.document(str(ds.attrs.get("title", "rmt_init sweep")), "".join(body),
                      subtitle=f"{int(np.prod([ds.sizes[a] for a in ds.attrs.get('axes', '').split(',') if a]))} "
                               "points")


def write_reports(ds: Any, out: Path) -> tuple[Path, Path]:
    """``<stem>.md`` and ``<stem>.html`` next to ``out``, both written atomically."""
    from .store import _atomic_text

    stem = out.with_suffix("") if out.suffix else out
    md, page = stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".html")
    _atomic_text(md, render_markdown(ds))
    H.write(page, render_html(ds))
    return md, page
