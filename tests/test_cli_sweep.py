"""``rmt-init sweep``: a grid from flags and from a TOML file, JSON and text output, resume, and one-line
errors for bad arguments (nothing written)."""
from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")

import pytest
import xarray as xr

from rmt_init import cli
from rmt_init.sweeps import point_seed, expand


def test_sweep_flags_json_dataset_and_resume(tmp_path, capsys):
    out = tmp_path / "grid.nc"
    argv = ["sweep", "--depth", "2,3", "--width", "16", "--activation", "linear", "--trials", "2", "--out", str(out)]
    status = cli.main(argv + ["--json"])
    record = json.loads(capsys.readouterr().out)
    assert status == 0 and record["job"] == "sweep" and record["computed"] == 2 and record["resumed"] == 0
    assert record["axes"] == {"depth": [2, 3], "width": [16], "activation": ["linear"], "trials": [2]}
    ds = xr.load_dataset(out, engine="scipy")
    assert ds["ks"].dims == ("depth", "width", "activation", "trials")
    # linear kaiming nets (σ_w² = 1, Gaussian): E(1/n) tr J Jᵀ = 1 exactly; the law's mean is 1 too
    assert float(ds["predicted_moment"].sel(moment=1, depth=3).squeeze()) == pytest.approx(1.0)
    point = expand({"depth": 3, "width": 16, "activation": "linear", "trials": 2}).fixed
    assert int(ds["seed"].sel(depth=3).squeeze()) == point_seed(point)
    assert [p["point"] for p in record["points"]] == ["depth=2, width=16, activation=linear, trials=2",
                                                     "depth=3, width=16, activation=linear, trials=2"]
    assert (tmp_path / "grid.md").is_file() and (tmp_path / "grid.html").is_file()
    status = cli.main(argv)  # rerun: everything is resumed, nothing computed
    text = capsys.readouterr().out
    assert status == 0 and "(0 computed, 2 resumed)" in text and "depth=3, width=16" in text


def test_sweep_from_toml(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text('[grid]\ndepth = [2]\nwidth = 12\nbatchnorm = ["none", "train"]\ntrials = 2\n')
    out = tmp_path / "toml.nc"
    status = cli.main(["sweep", "--grid", str(grid), "--out", str(out), "--no-report", "--json"])
    record = json.loads(capsys.readouterr().out)
    assert status == 0 and record["axes"] == {"depth": [2], "batchnorm": ["none", "train"]}
    assert record["fixed"]["width"] == 12 and record["reports"] == []
    bn = [p for p in record["points"] if p["point"].endswith("batchnorm=train")][0]
    assert bn["KS"] is None and bn["λ_max measured"] > 0  # BN: measured only
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.toml", "toml.nc", "toml.nc.parts"]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["sweep"], ["no grid", "--depth"]),
        (["sweep", "--depth", "2,x"], ["--depth", "2,x"]),
        (["sweep", "--depth", "0"], ["depth", "0"]),
        (["sweep", "--activation", "swish"], ["swish", "'relu'"]),
        (["sweep", "--depth", "2", "--out", "sweep.csv"], [".nc", ".zarr"]),
        (["sweep", "--depth", "2", "--out", "missing/s.nc"], ["missing"]),
        (["sweep", "--depth", "2", "--scheduler", "localhost"], ["--scheduler", "tcp://"]),
        (["sweep", "--depth", "2", "--processes", "0"], ["--processes"]),
        (["sweep", "--depth", "2", "--processes", "2", "--scheduler", "tcp://127.0.0.1:1"], ["--processes"]),
        (["sweep", "--grid", "nowhere.toml"], ["nowhere.toml"]),
        (["sweep", "--init", "xavier_normal", "--sigma-w2", "2"], ["sigma_w2", "gaussian"]),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path, monkeypatch, capsys, argv, words):
    monkeypatch.chdir(tmp_path)
    status = cli.main(argv)
    captured = capsys.readouterr()
    assert status == 2 and captured.out == "" and captured.err.count("\n") == 1
    assert captured.err.startswith("rmt-init")
    for word in words:
        assert word in captured.err
    assert list(tmp_path.iterdir()) == []


def test_bad_toml_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid\ndepth = 2")
    status = cli.main(["sweep", "--grid", str(bad), "--out", str(tmp_path / "s.nc")])
    err = capsys.readouterr().err
    assert status == 2 and "not valid TOML" in err and err.count("\n") == 1


def test_help_names_the_options(capsys):
    assert cli.main(["sweep", "--help"]) == 0
    text = capsys.readouterr().out
    for option in ("--grid", "--depth", "--out", "--scheduler", "--processes", "--no-resume", "--json"):
        assert option in text
