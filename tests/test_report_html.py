"""Self-contained HTML reports (``rmt_init.report_html``; the validation and sweep reports): every image a
``data:`` URI, no external resource, cells escaped, rows coloured by verdict; rendered in a real headless
Chromium when one is installed (skipped otherwise), the screenshot non-blank."""
from __future__ import annotations

import html.parser
import shutil
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest

import rmt_init
from rmt_init import report_html as H
from validation.report import render_html as render_validation

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "headless_shell")


class _Collect(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.rows: list[str | None] = []
        self.text: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a.get("src") or "")
        if tag in ("link", "a") and a.get("href"):
            self.links.append(a["href"])
        if tag == "script":
            self.scripts += 1
        if tag == "tr":
            self.rows.append(a.get("class"))

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> _Collect:
    parser = _Collect()
    parser.feed(page)
    parser.close()
    return parser


def _records(folder: Path) -> list[dict]:
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50) ** 2)
    fig.savefig(folder / "claim_a.png")
    plt.close(fig)
    check = {"name": "mean <relu> & co", "predicted": 1.0, "measured": 1.01, "stderr": 0.02, "tolerance": 0.1,
             "effect": 0.5, "passed": True}
    failed = check | {"name": "edge", "measured": 2.0, "passed": False, "note": "finite-N"}
    return [
        {"claim": "claim_a", "statement": "A statement.", "source": "Someone 2017", "size": "smoke",
         "checks": [check], "passed": True, "figures": ["claim_a.png"], "seconds": 1.5,
         "config": {"width": 64, "device": "cpu"}},
        {"claim": "claim_b", "statement": "Another.", "source": "Else 2018", "size": "smoke",
         "checks": [check, failed], "passed": False, "figures": [], "seconds": 0.5, "config": {"depth": 3}},
    ]


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("reports")
    validation_page = folder / "report.html"
    H.write(validation_page, render_validation(_records(folder), "smoke", "cpu", folder, 2.0))
    rmt_init.sweep({"depth": [2, 3], "width": [8], "activation": "linear", "batchnorm": ["none", "train"],
                    "trials": 2}, out=folder / "sweep.nc", progress=False)
    return {"validation": validation_page, "sweep": folder / "sweep.html"}


@pytest.mark.parametrize("which", ["validation", "sweep"])
def test_self_contained(pages, which):
    page = pages[which].read_text(encoding="utf-8")
    doc = parse(page)
    assert doc.images and all(src.startswith("data:image/png;base64,") for src in doc.images)
    assert doc.links == [] and doc.scripts == 0 and "http://" not in page and "https://" not in page
    assert page.startswith("<!DOCTYPE html>")


def test_validation_page_content(pages):
    doc = parse(pages["validation"].read_text(encoding="utf-8"))
    text = "".join(doc.text)
    for word in ("claim_a", "claim_b", "Someone 2017", "predicted", "measured", "SE", "tolerance", "effect",
                 "mean <relu> & co", "edge (finite-N)", "width", "1.5"):
        assert word in text, word
    # summary: claim_a pass, claim_b fail; claim_a's check; claim_b's two checks (pass, fail)
    assert [r for r in doc.rows if r] == ["pass", "fail", "pass", "pass", "fail"]


def test_sweep_page_content(pages):
    text = "".join(parse(pages["sweep"].read_text(encoding="utf-8")).text)
    for word in ("depth=2, width=8, batchnorm=none", "depth=3, width=8, batchnorm=train", "Timings",
                 "Configuration", "λ_max measured", "batch norm: measured numbers only"):
        assert word in text, word


def test_building_blocks_refuse_and_escape(tmp_path):
    with pytest.raises(ValueError, match="data:"):
        H.image("https://example.org/x.png")
    (tmp_path / "x.bmp").write_bytes(b"BM")
    with pytest.raises(ValueError, match="x.bmp"):
        H.file_uri(tmp_path / "x.bmp")
    cell = H.table(["a"], [["<b>"]])
    assert "&lt;b&gt;" in cell and "<b>" not in cell
    assert H.number(float("nan")) == "—" and H.number(True) == "yes" and H.number(0.123456) == "0.1235"


def _browser() -> str | None:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.parametrize("which", ["validation", "sweep"])
def test_renders_in_headless_chromium(pages, which, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("no Chromium/Chrome binary found (apt-get install chromium)")
    shot = tmp_path / f"{which}.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,1600", pages[which].resolve().as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
    pixels = plt.imread(shot)[..., :3].mean(axis=2)
    assert pixels.shape == (1600, 1200)
    # a blank page is one colour: here text, tables and the figure make a spread of grey levels
    assert pixels.std() > 0.05 and np.mean(pixels < 0.5) > 0.005
