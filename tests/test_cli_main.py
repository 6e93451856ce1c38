"""The main job (``rmt-init`` without a subcommand) on small sizes: the table, ``--json``, the figure written
atomically, and the exact finite-width zero fraction it checks against.

The default sizes run once, in tests/test_readme.py (whose README block is the printed table, verdicts
included). Here ``main_job.DEFAULT_CONFIG`` is replaced by a small network so that each run takes ~1 s; one
module-scoped computation is shared by the tests that only read its result.
"""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from rmt_init import cli
from rmt_init.cli import main_job

SMALL = main_job.MainJobConfig(depth=3, width=32, trials=6, depth_trials=3, grad_trials=6, batch_size=8,
                               bn_width=8, bn_trials=2, seed=1)


@pytest.fixture
def small(monkeypatch):
    monkeypatch.setattr(main_job, "DEFAULT_CONFIG", SMALL)


@pytest.fixture(scope="module")
def result():
    return main_job.run(SMALL)


def test_table_has_every_check_with_a_verdict_derived_from_its_tolerance(result):
    text = "\n".join(main_job.lines(result))
    for name in ("mean λ", "E λ²", "zero fraction", "KS distance", "top λ", "gradient growth", "gradient growth BN",
                 "top λ growth BN"):
        assert f"  {name} " in text, name
    for check in result.checks:
        if check.tolerance is None:
            assert check.passed is None  # reported, not checked
        else:
            assert check.passed == (abs(check.measured - check.predicted) <= check.tolerance)
            assert check.tolerance >= main_job.SAFETY * check.stderr  # 5 SE at least
    assert text.splitlines()[-1].startswith("verdicts: ")


def test_predictions_are_the_theory(result):
    from rmt_init.theory import bn_gradient_growth, finite_width_moments

    checks = {c.name: c for c in result.checks}
    assert checks["mean λ"].predicted == pytest.approx(1.0, rel=1e-12)  # critical: χ₁^L = 1
    assert checks["E λ²"].predicted == pytest.approx(finite_width_moments(32, 3, sigma_w2=2.0, activation="relu").b)
    assert checks["gradient growth BN"].predicted == bn_gradient_growth("relu", 8)
    assert checks["top λ"].predicted == pytest.approx(float(result.law.upper_edge))
    assert result.edges.shape == (3,) and np.all(np.diff(result.edges) > 0)  # the edge grows with depth


def test_json_parses_and_matches_the_checks(small, capsys, tmp_path):
    out = tmp_path / "main.png"
    status = cli.main(["--json", "--out", str(out)])
    record = json.loads(capsys.readouterr().out)
    assert status in (0, 1) and status == (0 if record["all_passed"] else 1)
    assert record["job"] == "main" and record["config"]["width"] == 32 and record["figure"] == str(out)
    assert {c["name"] for c in record["checks"]} >= {"mean λ", "gradient growth BN"}
    assert len(record["top_singular_value_by_depth"]["bn_mean"]) == 3
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_text_output(small, capsys):
    status = cli.main(["--no-plot"])
    text = capsys.readouterr().out
    assert status in (0, 1) and text.startswith("rmt-init main job:") and "wrote" not in text
    assert status == (0 if "FAIL" not in text else 1)


def test_figure_is_written_atomically(small, capsys, tmp_path, monkeypatch):
    """The figure fails half-way through writing (disk full): the old file is intact, no temporary file is
    left, one error line, exit status 1."""
    out = tmp_path / "main.png"
    out.write_bytes(b"old figure")
    def failing_draw(result):
        import matplotlib.pyplot as plt

        fig, _ = plt.subplots()

        def savefig(handle, **kwargs):
            handle.write(b"half a PNG")
            raise OSError(28, "No space left on device")

        fig.savefig = savefig
        return fig

    monkeypatch.setattr(main_job, "draw", failing_draw)
    status = cli.main(["--out", str(out)])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1 and "No space left on device" in err
    assert out.read_bytes() == b"old figure"
    assert [p.name for p in tmp_path.iterdir()] == ["main.png"]


def test_bad_output_is_refused_before_any_work(small, capsys, tmp_path, monkeypatch):
    def must_not_run(*args, **kwargs):
        raise AssertionError("the job ran")

    monkeypatch.setattr(main_job, "run", must_not_run)
    assert cli.main(["--out", str(tmp_path / "missing" / "main.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "does not exist" in captured.err and captured.err.count("\n") == 1
    assert cli.main(["--json", "--out", str(tmp_path / "main.xyz")]) == 2
    assert "'xyz'" in capsys.readouterr().err and list(tmp_path.iterdir()) == []
