"""The validation suite (``python -m validation``) at its smoke size: every claim passes, records are
well-formed, the report names every claim, ``--resume`` reruns nothing, ``--only`` selects, bad names are
rejected with the valid choices, and an interruption leaves no partial or temporary files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

import validation
from validation import CLAIMS, common, runner

FIELDS = {"claim", "statement", "source", "size", "checks", "passed", "figures", "seconds", "config"}
CHECK_FIELDS = {"name", "predicted", "measured", "stderr", "tolerance", "passed"}


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    rc = runner.main(["--size", "smoke", "--out", str(out), "--device", "cpu"])
    return out, rc


def _leftovers(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if p.name.startswith(common.TMP_PREFIX)]


def test_all_claims_pass(smoke):
    out, rc = smoke
    summary = json.loads((out / "summary.json").read_text())
    failed = {k: v["failed_checks"] for k, v in summary["claims"].items() if not v["passed"]}
    assert rc == 0 and summary["passed"], failed
    assert set(summary["claims"]) == set(CLAIMS)


@pytest.mark.parametrize("name", CLAIMS)
def test_records_well_formed(smoke, name):
    out, _ = smoke
    rec = json.loads((out / f"{name}.json").read_text())
    assert FIELDS <= set(rec) and rec["claim"] == name and rec["size"] == "smoke"
    assert rec["statement"] and rec["source"] and rec["checks"]
    assert rec["passed"] is True and all(c["passed"] is True for c in rec["checks"])
    for c in rec["checks"]:
        assert CHECK_FIELDS <= set(c), c
        assert isinstance(c["measured"], (int, float)) and math.isfinite(c["measured"]), c
    assert rec["config"] == common.config_for(runner.load_claim(name), "smoke", "cpu")
    for fig in rec["figures"]:
        assert (out / fig).stat().st_size > 1000
    module = runner.load_claim(name)
    assert set(module.SIZES) == set(validation.SIZES) and len(module.__doc__) > 300


def test_report_mentions_every_claim(smoke):
    out, _ = smoke
    report = (out / "report.md").read_text()
    for name in CLAIMS:
        assert f"| {name} | PASS |" in report and f"## {name}" in report
    assert not _leftovers(out)


def test_resume_reruns_nothing(smoke, capsys):
    out, _ = smoke
    stamps = {n: json.loads((out / f"{n}.json").read_text())["finished_at"] for n in CLAIMS}
    mtimes = {n: (out / f"{n}.json").stat().st_mtime_ns for n in CLAIMS}
    assert runner.main(["--size", "smoke", "--out", str(out), "--device", "cpu", "--resume"]) == 0
    assert capsys.readouterr().out.count("resumed") == len(CLAIMS)
    for n in CLAIMS:
        assert json.loads((out / f"{n}.json").read_text())["finished_at"] == stamps[n]
        assert (out / f"{n}.json").stat().st_mtime_ns == mtimes[n]


def test_resume_reruns_a_claim_whose_config_changed(tmp_path, monkeypatch):
    name = "dynamical_isometry"
    assert runner.main(["--size", "smoke", "--out", str(tmp_path), "--only", name, "--device", "cpu"]) == 0
    first = json.loads((tmp_path / f"{name}.json").read_text())["finished_at"]
    module = runner.load_claim(name)
    monkeypatch.setitem(module.SIZES, "smoke", {**module.SIZES["smoke"], "trials": 31})
    assert runner.main(["--size", "smoke", "--out", str(tmp_path), "--only", name, "--device", "cpu",
                        "--resume"]) == 0
    rec = json.loads((tmp_path / f"{name}.json").read_text())
    assert rec["finished_at"] > first and rec["config"]["trials"] == 31


def test_only_runs_the_named_claims(tmp_path):
    assert runner.main(["--size", "smoke", "--out", str(tmp_path), "--only", "dynamical_isometry",
                        "--device", "cpu"]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["dynamical_isometry.json", "summary.json"]
    assert "bjorck_product_spectra" not in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize("argv, word", [(["--only", "no_such_claim"], "no_such_claim"),
                                        (["--size", "huge"], "huge")])
def test_unknown_names_are_rejected_with_the_valid_choices(argv, word, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        runner.main(argv + ["--out", str(tmp_path)])
    assert exc.value.code != 0
    err = capsys.readouterr().err
    assert word in err
    valid = CLAIMS if "--only" in argv else validation.SIZES
    assert all(v in err for v in valid), err


def test_interruption_leaves_no_partial_files(tmp_path, monkeypatch):
    """The second claim is interrupted while writing its figure: the first claim's JSON stays, there is no
    JSON for the second, no temporary file and no report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    module = runner.load_claim("dynamical_isometry")

    def interrupted(size, device, out_dir):
        fig = plt.figure()

        def savefig(fh, **kwargs):
            fh.write(b"partial figure bytes")
            raise KeyboardInterrupt

        fig.savefig = savefig
        common.atomic_savefig(fig, out_dir / "dynamical_isometry.png")

    monkeypatch.setattr(module, "run", interrupted)
    rc = runner.main(["--size", "smoke", "--out", str(tmp_path), "--device", "cpu",
                      "--only", "bjorck_spread_grows,dynamical_isometry"])
    assert rc == 130
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bjorck_spread_grows.json", "bjorck_spread_grows.png"], names
    json.loads((tmp_path / "bjorck_spread_grows.json").read_text())


def test_atomic_json_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "x.json"
    common.atomic_write_json(path, {"a": 1})
    with pytest.raises(TypeError):
        common._atomic_write(path, lambda fh: (fh.write("{partial"), (_ for _ in ()).throw(TypeError("boom"))),
                             "w")
    assert json.loads(path.read_text()) == {"a": 1} and not _leftovers(tmp_path)
    assert common.jsonable({"x": float("nan"), "y": (1, 2)}) == {"x": None, "y": [1, 2]}


def test_no_tolerance_is_as_large_as_the_effect(smoke):
    """Every check records the size of what it resolves (``effect``: |predicted| by default, the KS distance to
    the neighbouring depth's law, the finite-N shift of an edge, ...) and its tolerance stays below it, so
    each check can fail on the wrong answer it is meant to exclude (before: an edge check at L = 8 had
    tolerance 21.9 around a prediction of 23.1, the ReLU atom 0.125 around 0.5)."""
    out, _ = smoke
    loose = []
    for name in CLAIMS:
        for c in json.loads((out / f"{name}.json").read_text())["checks"]:
            assert "effect" in c and c["effect"] is not None and c["effect"] > 0, (name, c)
            if not c["tolerance"] < c["effect"]:
                loose.append((name, c["name"], c["tolerance"], c["effect"]))
    assert not loose, loose


def test_finite_n_edge_wishart():
    """At L = 1 (Marchenko–Pastur, ratio 1) ρ(x) ≈ sqrt(4 − x)/(4π) at the edge, so the shift is
    −1.2065·4^{2/3}·N^{−2/3}; Johnstone's (2001) centring and scaling of the real Wishart λ_max,
    ((√(N−1) + √N)² + E TW₁·(√(N−1) + √N)(1/√(N−1) + 1/√N)^{1/3})/N, lies within the stated bias
    bound."""
    import rmt_init

    law = rmt_init.fuss_catalan(1)
    assert common.edge_density_coefficient(law) == pytest.approx(1 / (4 * math.pi), rel=1e-5)
    for n in (32, 128, 1024):
        pred, shift, bias = common.finite_n_edge(law, n)
        assert shift == pytest.approx(common.TW1_MEAN * 4 ** (2 / 3) * n ** (-2 / 3), rel=1e-5)
        s = math.sqrt(n - 1) + math.sqrt(n)
        johnstone = (s**2 + common.TW1_MEAN * s * (1 / math.sqrt(n - 1) + 1 / math.sqrt(n)) ** (1 / 3)) / n
        assert abs(johnstone - pred) <= bias, (n, johnstone, pred, bias)
