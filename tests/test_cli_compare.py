"""``rmt-init compare``: torch networks against the theory, on small sizes."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import pytest

from rmt_init import cli


def test_compare_json_and_figure(tmp_path, capsys):
    out = tmp_path / "compare.png"
    status = cli.main(["compare", "--depth", "2", "--width", "16", "--trials", "3", "--json", "--out", str(out)])
    record = json.loads(capsys.readouterr().out)
    assert status == 0 and record["job"] == "compare" and record["figure"] == str(out)
    assert record["comparison"]["n_samples"] == 3 * 16 and record["comparison"]["n_trials"] == 3
    assert record["law"]["mean"] == pytest.approx(1.0) and record["network"]["sigma_w2"] == pytest.approx(2.0)
    assert 0.0 <= record["comparison"]["ks"] <= 1.0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["compare.png"]


def test_compare_text_with_explicit_weights(capsys):
    """Orthogonal linear networks are exactly isometric: every λ = 1 up to rounding, so the mean error is ~0
    whatever the width (a check that the network and the law are the same configuration)."""
    status = cli.main(["compare", "--depth", "3", "--width", "8", "--trials", "2", "--activation", "linear",
                       "--weights", "orthogonal", "--sigma-w2", "1", "--json", "--no-plot"])
    record = json.loads(capsys.readouterr().out)
    assert status == 0 and abs(record["comparison"]["moment_errors"]["1"]) < 1e-12
    status = cli.main(["compare", "--depth", "2", "--width", "8", "--trials", "2", "--no-plot"])
    text = capsys.readouterr().out
    assert status == 0 and text.startswith("theory:") and "\ncompare: KS " in text


@pytest.mark.parametrize(
    "argv, words",
    [
        (["compare", "--width", "0", "--no-plot"], ["width", "0"]),
        (["compare", "--trials", "x"], ["--trials", "'x'"]),
        (["compare", "--activation", "swish", "--no-plot"], ["swish"]),
        (["compare", "--no-plot", "--scale", "log"], ["--scale", "--no-plot"]),
        (["compare", "--batchnorm", "train"], ["--batchnorm"]),
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
