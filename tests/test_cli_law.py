"""``rmt-init law``: any jacobian_spectrum, Fuss–Catalan and Marchenko–Pastur, with --json and a figure."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import pytest

from rmt_init import cli


def run(capsys, *argv):
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_jacobian_law_default_is_critical_relu(capsys):
    status, out, err = run(capsys, "law", "--no-plot")
    assert status == 0 and err == ""
    assert out.startswith("Jacobian JJᵀ of a depth-10 relu network")
    assert "1, 20" in out  # mean 1, variance 2L (closed form for critical ReLU nets)
    assert "critical" in out and "[(0.0, 0.5)]" in out


def test_jacobian_law_json(capsys):
    status, out, _ = run(capsys, "law", "--depth", "4", "--activation", "relu", "--init", "kaiming_normal",
                         "--init-arg", "nonlinearity=relu", "--json", "--no-plot")
    record = json.loads(out)
    assert status == 0 and record["law"] == "jacobian" and record["figure"] is None
    assert record["mean"] == pytest.approx(1.0) and record["variance"] == pytest.approx(8.0)  # 2L
    assert record["upper_edge"] == pytest.approx(21.8582, abs=1e-4)  # min_w (1+w)(1+2w)^L/w at L = 4
    assert record["moments"][1] == pytest.approx(9.0)  # m2 = var + 1


def test_weights_and_variances_and_widths(capsys):
    """Orthogonal linear network: J is orthogonal, every λ = 1 (dynamical isometry); a rectangular linear
    chain keeps mean 1."""
    status, out, _ = run(capsys, "law", "--activation", "linear", "--weights", "orthogonal", "--sigma-w2", "1",
                         "--json", "--no-plot")
    record = json.loads(out)
    assert status == 0 and record["variance"] == pytest.approx(0.0, abs=1e-12) and record["upper_edge"] == 1.0
    status, out, _ = run(capsys, "law", "--depth", "3", "--activation", "linear", "--widths", "784,1024,512,10",
                         "--json", "--no-plot")
    assert status == 0 and json.loads(out)["mean"] == pytest.approx(1.0)


def test_deep_law_figure(tmp_path, capsys):
    out = tmp_path / "law.png"
    status, text, _ = run(capsys, "law", "--depth", "30", "--out", str(out))
    assert status == 0 and text.rstrip().endswith(f"wrote {out}")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["law.png"]


def test_fuss_catalan_and_marchenko_pastur_json(capsys):
    status, out, _ = run(capsys, "law", "--law", "fuss-catalan", "--depth", "3", "--json", "--no-plot")
    assert status == 0 and json.loads(out)["moments"] == [1, 4, 22, 140, 969]
    status, out, _ = run(capsys, "law", "--law", "marchenko-pastur", "--ratio", "4", "--json", "--no-plot")
    assert status == 0 and json.loads(out)["atoms"] == [[0.0, 0.75]]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["law", "--ratio", "2"], ["--ratio", "marchenko-pastur", "jacobian"]),
        (["law", "--activation", "swish", "--no-plot"], ["swish", "relu"]),
        (["law", "--init", "he_magic", "--no-plot"], ["he_magic", "kaiming_normal"]),
        (["law", "--widths", "10,x"], ["--widths", "10,x"]),
        (["law", "--init-arg", "gain"], ["--init-arg", "NAME=VALUE"]),
        (["law", "--sigma-b2", "-1", "--no-plot"], ["sigma_b2", "-1"]),
        (["law", "--depth", "0", "--no-plot"], ["depth", "0"]),
        (["law", "--law", "marchenko-pastur", "--init", "orthogonal"], ["--init", "jacobian"]),
    ],
)
def test_bad_arguments_are_one_line_errors(capsys, argv, words):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rmt-init") and "error:" in lines[0], err
    for word in words:
        assert word in lines[0], (word, lines[0])
