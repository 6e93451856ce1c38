"""``rmt-init validate``: the validation suite after ``pip install``, from a folder outside the repository
(a real install of this checkout into a temporary folder, run in a subprocess whose working directory is
elsewhere); help; one-line errors for bad arguments."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rmt_init import cli

ROOT = Path(__file__).resolve().parents[1]
FAST_CLAIM = "dynamical_isometry"  # ~3 s at smoke size


def _setuptools_ok() -> bool:
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 68


def test_validate_runs_after_pip_install_outside_the_repository(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("rmt_init", "validation"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    site = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", str(site)]
    if _setuptools_ok():
        pip.append("--no-build-isolation")
    subprocess.run(pip + [str(source)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "work"
    work.mkdir()
    env = os.environ | {"PYTHONPATH": str(site), "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"}
    where = subprocess.run([sys.executable, "-c", "import rmt_init, validation; print(rmt_init.__file__); "
                            "print(validation.__file__)"], cwd=work, env=env, capture_output=True, text=True,
                           check=True)
    assert all(line.startswith(str(site)) for line in where.stdout.split())  # the installed copy, not the checkout
    run = subprocess.run([sys.executable, "-m", "rmt_init", "validate", "--size", "smoke", "--only", FAST_CLAIM,
                          "--device", "cpu", "--json"], cwd=work, env=env, capture_output=True, text=True,
                         timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    record = json.loads(run.stdout)
    assert record["passed"] is True and list(record["claims"]) == [FAST_CLAIM]
    out = work / "validation_results" / "smoke"
    assert record["out"] == os.path.join("validation_results", "smoke")
    assert {p.name for p in out.iterdir()} >= {f"{FAST_CLAIM}.json", "report.md", "report.html", "summary.json"}
    assert f"[1/1] {FAST_CLAIM}: PASS" in run.stderr  # progress lines go to stderr with --json
    html = (out / "report.html").read_text()
    assert FAST_CLAIM in html and "data:image/png;base64," in html


def test_help(capsys):
    assert cli.main(["validate", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--size", "--only", "--resume", "--out", "--device", "--json"):
        assert option in text
    assert cli.main(["--help"]) == 0
    assert "validate" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["validate", "--only", "nosuch"], ["nosuch", "network_jacobians", FAST_CLAIM]),
        (["validate", "--only", ","], ["none given"]),
        (["validate", "--size", "huge"], ["--size", "huge", "smoke"]),
        (["validate", "--device", "tpu"], ["--device", "tpu"]),
        (["validate", "--out", "afile"], ["afile", "folder"]),
        (["validate", "--scheduler", "localhost"], ["--scheduler", "tcp://"]),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("")
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert status == 2 and captured.out == "" and captured.err.count("\n") == 1
    for word in words:
        assert word in captured.err
    assert [p.name for p in tmp_path.iterdir()] == ["afile"]


def test_validate_on_a_dask_cluster(tmp_path, capsys):
    """The claims as Dask tasks (a one-worker in-process cluster: the task path without process start-up);
    the records come back, are written and reported as in a local run."""
    import distributed

    out = tmp_path / "dask"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None,
                                  silence_logs=50) as cluster:
        status = cli.main(["validate", "--size", "smoke", "--only", FAST_CLAIM, "--device", "cpu", "--out", str(out),
                           "--scheduler", cluster.scheduler_address, "--json"])
    captured = capsys.readouterr()
    record = json.loads(captured.out)
    assert status == 0 and record["passed"] is True and list(record["claims"]) == [FAST_CLAIM]
    assert "submitted" in captured.err and f"[1/1] {FAST_CLAIM}: PASS" in captured.err
    stored = json.loads((out / f"{FAST_CLAIM}.json").read_text())
    assert stored["passed"] is True and stored["seconds"] > 0 and (out / "report.html").is_file()
