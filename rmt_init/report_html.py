"""Self-contained HTML reports: one file that opens anywhere, offline — figures embedded as base64 ``data:``
URIs, styles inline, no script and no external resource.

Building blocks shared by the validation report (``validation/report.py``) and the sweep report
(:mod:`rmt_init.sweeps.report`): :func:`document`, :func:`table` (cells escaped; a row class ``pass`` / ``fail``
colours it green / red), :func:`definitions` (a configuration as a two-column list), :func:`image` (a figure
or an image file as an ``<img>`` with a ``data:`` URI) and :func:`write` (atomic).
"""
from __future__ import annotations

import base64
import html
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._files import atomic_write_text

__all__ = ["document", "table", "definitions", "image", "figure_uri", "file_uri", "number", "write", "STYLE"]

_MIME = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
         ".gif": "image/gif", ".webp": "image/webp"}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 2em auto; max-width: 75em;
       padding: 0 1em; color: #1d1d1f; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.subtitle { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; vertical-align: top; }
th { background: #f0f0f3; } td.text, th.text { text-align: left; }
tr.pass td { background: #e6f4ea; } tr.fail td { background: #fce8e6; }
tr.fail td.verdict { color: #a50e0e; font-weight: bold; } tr.pass td.verdict { color: #137333; font-weight: bold; }
dl.config { display: grid; grid-template-columns: max-content auto; gap: 0.15em 1em; font-size: 0.9em; }
dl.config dt { font-weight: 600; } dl.config dd { margin: 0; font-family: ui-monospace, monospace; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85em; }
.badge { display: inline-block; padding: 0.1em 0.6em; border-radius: 0.8em; color: white; font-weight: bold; }
.badge.pass { background: #188038; } .badge.fail { background: #c5221f; }
"""


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


def number(value: Any, digits: int = 4) -> str:
    """A cell's text: ``—`` for None/NaN, booleans as yes/no, floats with ``digits`` significant digits."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:.{digits}g}"
    return str(value)


def figure_uri(fig: Any, dpi: int = 110) -> str:
    """A matplotlib figure as a ``data:image/png;base64,…`` URI (the figure is closed)."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def file_uri(path: str | os.PathLike[str]) -> str:
    """An image file as a ``data:`` URI, its type from the extension (png, svg, jpeg, gif, webp)."""
    path = Path(path)
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        raise ValueError(f"cannot embed {str(path)!r}: unknown image type {path.suffix!r}; "
                         f"valid types are {', '.join(sorted(_MIME))}")
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def image(uri: str, caption: str = "", alt: str = "") -> str:
    """``<figure><img src=uri>…</figure>``; ``uri`` must be a ``data:`` URI (the report stays self-contained)."""
    if not uri.startswith("data:"):
        raise ValueError("image() embeds data: URIs only (use figure_uri or file_uri)")
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{uri}" alt="{escape(alt or caption)}">{cap}</figure>'


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], row_classes: Iterable[str] | None = None,
          text_columns: Iterable[int] = (0,), verdict_column: int | None = None) -> str:
    """An HTML table; cells formatted by :func:`number` and escaped. ``row_classes`` (e.g. ``"pass"``,
    ``"fail"``) colour the rows; ``text_columns`` are left-aligned."""
    text = set(text_columns)
    classes = list(row_classes) if row_classes is not None else None

    def cell(i: int, v: Any, tag: str) -> str:
        kind = ["text"] if i in text else []
        if i == verdict_column:
            kind.append("verdict")
        attr = f' class="{" ".join(kind)}"' if kind else ""
        return f"<{tag}{attr}>{escape(number(v))}</{tag}>"

    head = "".join(cell(i, h, "th") for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        attr = f' class="{escape(classes[r])}"' if classes and classes[r] else ""
        body.append(f"<tr{attr}>" + "".join(cell(i, v, "td") for i, v in enumerate(row)) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def definitions(items: Mapping[str, Any]) -> str:
    """A configuration as a two-column definition list."""
    body = "".join(f"<dt>{escape(k)}</dt><dd>{escape(number(v))}</dd>" for k, v in items.items())
    return f'<dl class="config">{body}</dl>'


def badge(passed: bool) -> str:
    return f'<span class="badge {"pass" if passed else "fail"}">{"PASS" if passed else "FAIL"}</span>'


def document(title: str, body: str, subtitle: str = "") -> str:
    """A complete HTML5 page with the inline :data:`STYLE`; ``body`` is trusted HTML."""
    sub = f'<p class="subtitle">{escape(subtitle)}</p>' if subtitle else ""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{sub}{body}</body></html>\n")


def write(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, fsync, rename)."""
    return atomic_write_text(path, text)
