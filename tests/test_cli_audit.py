"""``rmt-init audit``: the init-scheme table against closed forms, its CSV/Markdown/JSON/heat-map outputs."""
from __future__ import annotations

import csv
import json

import matplotlib

matplotlib.use("Agg")

import pytest

from rmt_init import cli

SMALL = ["audit", "--depth", "5", "--activations", "relu,tanh", "--inits", "kaiming_normal,xavier_normal,orthogonal"]


def test_audit_json_against_closed_forms(capsys):
    assert cli.main([*SMALL, "--json", "--no-plot"]) == 0
    record = json.loads(capsys.readouterr().out)
    rows = {(r["activation"], r["init"]): r for r in record["rows"]}
    assert len(rows) == 6
    he = rows[("relu", "kaiming_normal")]  # σ_w² = 2: critical, E λ = 1, Var λ = 2L, edge min_w (1+w)(1+2w)^L/w
    assert he["phase"] == "critical" and he["mean"] == pytest.approx(1.0) and he["variance"] == pytest.approx(10.0)
    assert he["critical_sigma_w2"] == pytest.approx(2.0) and he["xi_c"] is None  # ∞ → null in JSON
    glorot = rows[("relu", "xavier_normal")]  # σ_w² = 1: χ₁ = 1/2, E λ = 2^−L
    assert glorot["phase"] == "ordered" and glorot["chi1"] == pytest.approx(0.5)
    assert glorot["mean"] == pytest.approx(0.5**5)
    orth = rows[("tanh", "orthogonal")]  # q* = 0: J = product of orthogonal matrices, every λ = 1
    assert orth["q_star"] == 0.0 and orth["variance"] == pytest.approx(0.0, abs=1e-12) and orth["upper_edge"] == 1.0
    chaotic = rows[("tanh", "kaiming_normal")]  # σ_w² = 25/9 > 1: q* > 0, its edge needs --edges
    assert chaotic["sigma_w2"] == pytest.approx(25 / 9) and chaotic["phase"] == "chaotic"
    assert chaotic["upper_edge"] is None and record["edges"] is False


def test_audit_files(tmp_path, capsys):
    paths = {name: tmp_path / name for name in ("a.csv", "a.md", "a.png")}
    status = cli.main([*SMALL, "--csv", str(paths["a.csv"]), "--markdown", str(paths["a.md"]),
                       "--out", str(paths["a.png"])])
    text = capsys.readouterr().out
    assert status == 0 and "→ relu: critical σ_w² = 2 (χ₁ = 1; recommended)" in text
    assert "add --edges" in text and text.count("wrote ") == 3
    with open(paths["a.csv"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and float(rows[0]["sigma_w2"]) == pytest.approx(2.0)
    md = paths["a.md"].read_text(encoding="utf-8").splitlines()
    assert md[2].startswith("| activation | init |") and len([l for l in md if l.startswith("| relu")]) == 3
    assert paths["a.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.md", "a.png"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["audit", "--activations", "relu,swish", "--no-plot"], ["swish", "tanh"]),
        (["audit", "--inits", "he_magic", "--no-plot"], ["he_magic", "xavier_normal"]),
        (["audit", "--depth", "0", "--no-plot"], ["depth", "0"]),
        (["audit", "--no-plot", "--out", "x.png"], ["--out", "--no-plot"]),
    ],
)
def test_bad_arguments_are_one_line_errors(capsys, argv, words):
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rmt-init") and "error:" in lines[0], captured.err
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_unwritable_table_path_is_refused_before_any_work(tmp_path, capsys):
    status = cli.main([*SMALL, "--csv", str(tmp_path / "missing" / "a.csv"), "--out", str(tmp_path / "a.png")])
    assert status == 2 and "--csv" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
