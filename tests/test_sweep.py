"""``rmt_init.sweep``: the dataset holds, at every point, exactly what the engine and the comparison return
for that point's seed; per-point seeds make the numbers independent of order and executor (serial, process
pool, a 2-worker Dask ``LocalCluster`` on which one worker is killed and one task fails once); an interrupted
sweep resumes without recomputing a written point; bad grids are refused with the valid choices."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from distributed.diagnostics.plugin import WorkerPlugin

import rmt_init
from rmt_init.sweeps import expand, point_key, point_seed, run_point
from rmt_init.sweeps.store import parts_dir

# 4 points; the laws' distribution-function tables (built once per law, ~1 s each) dominate the cost
GRID = {"depth": [2, 3], "width": [16], "activation": ["linear"], "batchnorm": ["none", "train"], "trials": 3,
        "batch_size": 4}
N_POINTS = 4


def numbers(ds: xr.Dataset) -> xr.Dataset:
    """Everything a point computes except its wall time (and the run's attrs: timings, counts)."""
    return ds.drop_vars("seconds").assign_attrs({})


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> tuple[xr.Dataset, Path]:
    out = tmp_path_factory.mktemp("serial") / "sweep.nc"
    return rmt_init.sweep(GRID, out=out, progress=False), out


def test_dataset_layout_and_file(serial):
    ds, out = serial
    assert list(ds["ks"].dims) == ["depth", "width", "activation", "batchnorm"]
    assert ds["measured_moment"].dims[-1] == "moment" and ds.sizes["moment"] == 4
    assert int(ds["done"].sum()) == N_POINTS and ds.attrs["computed"] == N_POINTS and ds.attrs["resumed"] == 0
    on_disk = xr.load_dataset(out, engine="scipy")
    assert on_disk.identical(ds)  # netCDF-3 through scipy keeps every number and label
    assert len(list(parts_dir(out).glob("*.json"))) == N_POINTS
    assert out.with_suffix(".md").read_text().count("| depth=") == N_POINTS
    assert out.with_suffix(".html").stat().st_size > 10_000


def test_point_equals_direct_engine_call(serial):
    """Independent reference: the engine and rmt_init.compare called directly with the point's seed."""
    ds, _ = serial
    g = expand(GRID)
    point = g.fixed | {"depth": 3, "width": 16, "activation": "linear", "batchnorm": "none"}
    seed = point_seed(point)
    result = rmt_init.montecarlo.network_jacobian_spectrum(3, 16, "linear", "kaiming_normal", trials=3, seed=seed,
                                                           batch_size=4, device="cpu", layer_stats=False)
    law = rmt_init.jacobian_spectrum(3, "linear", init="kaiming_normal")
    numbers_ = rmt_init.compare(law, result)
    here = ds.sel(depth=3, width=16, activation="linear", batchnorm="none")
    x = result.squared_singular_values
    assert int(here["seed"]) == seed
    assert float(here["ks"]) == numbers_.ks and float(here["edge_error"]) == numbers_.edge_error
    assert float(here["measured_moment"].sel(moment=2)) == np.mean(x**2, axis=1).mean()
    assert float(here["measured_top"]) == x.max(axis=1).mean()
    assert float(here["predicted_moment"].sel(moment=2)) == law.moment(2)
    # kaiming linear nets (σ_w² = 1): E(1/n) tr J Jᵀ = 1 exactly at every width, so m1 sits within 5 SE of 1
    assert abs(float(here["measured_moment"].sel(moment=1)) - 1.0) < 5 * float(here["measured_moment_se"].sel(moment=1))


def test_batchnorm_points_are_measured_only(serial):
    ds, _ = serial
    bn = ds.sel(batchnorm="train")
    assert np.all(np.isnan(bn["ks"])) and np.all(np.isnan(bn["predicted_top"]))
    assert np.all(np.isfinite(bn["measured_top"])) and np.all(bn["measured_top_se"] > 0)
    assert np.all(np.isfinite(ds.sel(batchnorm="none")["ks"]))


def test_order_of_axes_does_not_change_numbers(serial):
    ds, _ = serial
    other = rmt_init.sweep({"activation": ["linear"], "batchnorm": ["train", "none"], "depth": [3], "width": [16],
                            "trials": 3, "batch_size": 4}, progress=False)
    a = numbers(ds).sel(activation=["linear"], depth=[3], batchnorm=["train", "none"])
    assert numbers(other).transpose(*a.dims).equals(a)


def test_process_pool_equals_serial(serial, tmp_path):
    ds, _ = serial
    small = GRID | {"depth": [3]}  # one spawned worker (it imports torch: seconds)
    pooled = rmt_init.sweep(small, processes=1, progress=False)
    assert numbers(pooled).equals(numbers(ds).sel(depth=[3]))


class _FailOnce(WorkerPlugin):
    """Worker plugin: wraps ``run_point`` in every worker process so that the first attempt of the depth-3
    linear no-BN point kills its worker process (``os._exit``) and the first attempt of the depth-2 linear
    no-BN point raises; a marker file per point records that the first attempt happened (the folder is
    shared: the cluster runs on this machine)."""

    name = "rmt-init-test-fail-once"

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def setup(self, worker) -> None:
        from rmt_init.sweeps import point as module

        original = getattr(module, "_original_run_point", module.run_point)
        module._original_run_point = original
        folder = self.folder

        def flaky(point, seed, *args):
            if point["activation"] == "linear" and point["batchnorm"] == "none":
                marker = os.path.join(folder, f"depth{point['depth']}")
                if not os.path.exists(marker):
                    open(marker, "w").close()
                    if point["depth"] == 3:
                        os._exit(1)  # the worker process dies mid-task
                    raise RuntimeError("transient failure (first attempt)")
            return original(point, seed, *args)

        module.run_point = flaky


def test_dask_cluster_equals_serial_and_loses_no_point(serial, tmp_path):
    import distributed

    ds, _ = serial
    markers = tmp_path / "markers"
    markers.mkdir()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        client.register_plugin(_FailOnce(str(markers)))
        pids_before = set(client.run(os.getpid).values())
        out = tmp_path / "dask.nc"
        done = rmt_init.sweep(GRID, client=client, out=out, progress=False, report=False)
        pids_after = set(client.run(os.getpid).values())
    assert sorted(p.name for p in markers.iterdir()) == ["depth2", "depth3"]  # both first attempts failed
    assert pids_after != pids_before  # a worker process was replaced
    assert int(done["done"].sum()) == N_POINTS and len(list(parts_dir(out).glob("*.json"))) == N_POINTS
    assert numbers(done).equals(numbers(ds))


def test_interrupted_driver_resumes_without_recomputing(serial, tmp_path):
    ds, _ = serial
    out = tmp_path / "resume.nc"
    seen: list[str] = []

    def stop_after_two(point, record):
        seen.append(point_key(point))
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rmt_init.sweep(GRID, out=out, progress=False, report=False, callback=stop_after_two)
    assert not out.exists() and sorted(p.stem for p in parts_dir(out).glob("*.json")) == sorted(seen)
    assert not list(out.parent.glob(".tmp-*")) and not list(parts_dir(out).glob(".tmp-*"))
    again: list[str] = []
    resumed = rmt_init.sweep(GRID, out=out, progress=False, report=False,
                             callback=lambda p, r: again.append(point_key(p)))
    assert len(again) == N_POINTS - 2 and not set(again) & set(seen)
    assert resumed.attrs["resumed"] == 2 and resumed.attrs["computed"] == N_POINTS - 2
    assert numbers(resumed).equals(numbers(ds))
    # a corrupt part is recomputed, not trusted
    first = parts_dir(out) / f"{seen[0]}.json"
    first.write_text("{not json")
    count: list[int] = []
    rmt_init.sweep(GRID, out=out, progress=False, report=False, callback=lambda p, r: count.append(1))
    assert len(count) == 1 and json.loads(first.read_text())["key"] == seen[0]


@pytest.mark.parametrize("grid, words", [
    ({"depht": [2]}, ["depht", "'depth'", "'width'"]),
    ({"depth": []}, ["depth", "empty"]),
    ({"depth": [2, 2]}, ["repeats"]),
    ({"depth": [0]}, ["depth"]),
    ({"activation": ["relu", "swish"]}, ["swish", "'tanh'"]),
    ({"init": "xavier_normal", "sigma_w2": [1.0, 2.0]}, ["sigma_w2", "gaussian"]),
    ({"batchnorm": ["batch"]}, ["batch", "'train'"]),
    ({"trials": [1]}, ["trials"]),
])
def test_bad_grids_are_refused(grid, words):
    with pytest.raises(ValueError) as info:
        rmt_init.sweep(grid, progress=False)
    for word in words:
        assert word in str(info.value)


def test_bad_executor_arguments_are_refused():
    with pytest.raises(ValueError, match="at most one"):
        rmt_init.sweep({"depth": [2]}, processes=2, scheduler="tcp://127.0.0.1:1")
    with pytest.raises(ValueError, match="tcp://"):
        rmt_init.sweep({"depth": [2]}, scheduler="localhost")


def test_point_seed_depends_on_point_and_base_seed_only():
    g = expand({"depth": [2, 3]})
    a, b = g.points()
    assert point_seed(a) == point_seed(dict(reversed(list(a.items()))))  # key order does not matter
    assert len({point_seed(a), point_seed(b), point_seed(a, seed=1), point_seed(a, device="cuda")}) == 4
    assert 0 <= point_seed(a) < 2**31
    record = run_point(a | {"width": 8, "trials": 2}, 5)
    assert record["seed"] == 5 and np.isfinite(record["ks"])


def test_killed_driver_process_resumes_without_recomputing(serial, tmp_path):
    """A real kill: a sweep in a subprocess SIGKILLs itself right after its first part is written (from the
    ``callback``, so the kill point does not depend on how fast the machine is); the parts it left are whole
    (atomic writes) and the rerun computes exactly the points without a part."""
    import subprocess
    import sys

    ds, _ = serial
    out = tmp_path / "killed.nc"
    root = Path(__file__).resolve().parents[1]
    script = ("import os, signal, rmt_init\n"
              f"rmt_init.sweep({GRID!r}, out={str(out)!r}, progress=False, report=False,\n"
              "               callback=lambda p, r: os.kill(os.getpid(), signal.SIGKILL))\n")
    env = os.environ | {"PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    child = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=300)
    assert child.returncode == -9  # killed, not finished
    written = {p.stem for p in parts_dir(out).glob("*.json")}
    assert 1 <= len(written) < N_POINTS and not out.exists()
    computed: list[str] = []
    resumed = rmt_init.sweep(GRID, out=out, progress=False, report=False,
                             callback=lambda p, r: computed.append(point_key(p)))
    assert len(computed) == N_POINTS - len(written) and not set(computed) & written
    assert numbers(resumed).equals(numbers(ds))


def test_zarr_output_without_zarr_is_refused_before_any_work(tmp_path):
    try:
        import zarr  # noqa: F401
    except ImportError:
        computed: list[int] = []
        with pytest.raises(ValueError, match="zarr"):
            rmt_init.sweep({"depth": [2], "width": [8], "trials": 2}, out=tmp_path / "s.zarr", progress=False,
                           callback=lambda p, r: computed.append(1))
        assert computed == [] and list(tmp_path.iterdir()) == []
    else:
        ds = rmt_init.sweep({"depth": [2], "width": [8], "trials": 2, "batchnorm": "train"},
                            out=tmp_path / "s.zarr", progress=False, report=False)
        assert xr.open_zarr(tmp_path / "s.zarr").load().identical(ds)


def test_without_distances_same_samples_same_moment_errors(serial):
    """distances=False: the same seeds (so the same samples) and the moment and edge errors of
    rmt_init.compare, KS and W1 left out; a separate part (key) from the full record."""
    ds, _ = serial
    grid = GRID | {"depth": [2], "batchnorm": ["none"]}
    lean = rmt_init.sweep(grid, distances=False, progress=False)
    full = ds.sel(depth=[2], batchnorm=["none"])
    assert np.all(np.isnan(lean["ks"])) and np.all(np.isnan(lean["wasserstein1"]))
    for name in ("measured_moment", "measured_top", "seed", "predicted_moment"):
        assert lean[name].equals(full[name]), name
    np.testing.assert_allclose(lean["moment_error"], full["moment_error"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lean["moment_error_se"], full["moment_error_se"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(lean["edge_error"], full["edge_error"], rtol=1e-12, atol=1e-15)
    point = expand(grid).points()[0]
    assert point_key(point, distances=False) != point_key(point)
