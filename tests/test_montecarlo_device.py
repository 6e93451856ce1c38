"""Engine plumbing of rmt_init.montecarlo: seeds, chunking, out-of-memory fallback, dtype, xarray, validation."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from rmt_init.montecarlo import SpectrumResult, network_jacobian_spectrum, network_layer_stats, product_spectrum
from rmt_init.montecarlo._device import limit_threads, resolve_device, resolve_dtype, run_chunked

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(autouse=True)
def _single_thread():
    """The matrices here are tiny: intra-op threads only add synchronisation cost (large on busy CI)."""
    with limit_threads(1):
        yield


@pytest.mark.parametrize("stabilize", [False, True])
def test_product_seeds_reproduce_and_chunking_does_not_change_results(stabilize):
    kw = dict(trials=7, device="cpu", stabilize=stabilize)
    a = product_spectrum(40, 5, seed=3, **kw)
    b = product_spectrum(40, 5, seed=3, **kw)
    c = product_spectrum(40, 5, seed=3, max_chunk=2, **kw)
    d = product_spectrum(40, 5, seed=3, memory_budget=1, **kw)  # budget of 1 byte ⇒ one trial per chunk
    e = product_spectrum(40, 5, seed=4, **kw)
    np.testing.assert_array_equal(a.log_singular_values, b.log_singular_values)
    f = product_spectrum(40, 5, seed=3, **{**kw, "trials": 3})  # trial t does not depend on the trial count
    # Per-trial generators: chunking changes only how the same matrices are batched. The QR algorithm is
    # exact in relative terms, so results agree to rounding (observed: bitwise); the direct algorithm is
    # accurate to ≈ eps·σ_1² in absolute terms only (σ_5/σ_1 ≈ e^{-39} here), so compare it there.
    for other, ref in ((c, a), (d, a), (f, a)):
        got, want = other.squared_singular_values, ref.squared_singular_values[: other.trials]
        if stabilize:
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13 * want.max())
    assert np.all(np.abs(e.log_singular_values - a.log_singular_values) > 1e-6)


def test_network_seeds_reproduce_and_column_chunking_does_not_change_results():
    kw = dict(batchnorm="train", batch_size=4, trials=2, device="cpu")
    a = network_jacobian_spectrum(3, 6, "tanh", seed=1, **kw)
    b = network_jacobian_spectrum(3, 6, "tanh", seed=1, max_chunk=3, **kw)
    c = network_jacobian_spectrum(3, 6, "tanh", seed=2, **kw)
    np.testing.assert_allclose(b.squared_singular_values, a.squared_singular_values, rtol=1e-12, atol=0)
    for key in a.layer_stats:
        np.testing.assert_array_equal(a.layer_stats[key], b.layer_stats[key])
    assert not np.allclose(a.squared_singular_values, c.squared_singular_values)


def test_out_of_memory_halves_the_chunk_and_keeps_all_items():
    calls = []

    def fn(part):
        calls.append(len(part))
        if len(part) > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return [10 * i for i in part]

    out = run_chunked(fn, list(range(7)), 8)
    assert [v for part in out for v in part] == [10 * i for i in range(7)]
    assert calls[:3] == [7, 4, 2]  # first chunk min(8, 7 items) = 7 fails, halved to 4, then 2
    assert max(len(p) for p in out) == 2

    def always(part):
        raise torch.OutOfMemoryError("simulated")

    with pytest.raises(torch.OutOfMemoryError):
        run_chunked(always, [0, 1], 2)

    def other(part):
        raise RuntimeError("not a memory problem")

    with pytest.raises(RuntimeError, match="not a memory problem"):
        run_chunked(other, [0, 1, 2, 3], 4)


def test_float32_runs_and_is_close_to_float64():
    # float32 draws a different stream, so compare in law: E tr(PPᵀ)/N = 1 within 5 standard errors.
    r32 = product_spectrum(3, 6, trials=2000, seed=0, device="cpu", dtype="float32", stabilize=False)
    assert r32.config["dtype"] == "float32"
    m = r32.squared_singular_values.mean(1)
    assert abs(m.mean() - 1.0) <= 5 * m.std(ddof=1) / np.sqrt(m.size)
    q32 = product_spectrum(3, 6, trials=50, seed=0, device="cpu", dtype="float32", stabilize=True)
    d32 = product_spectrum(3, 6, trials=50, seed=0, device="cpu", dtype="float32", stabilize=False)
    # same float32 matrices, two algorithms: top singular values agree to float32 rounding
    np.testing.assert_allclose(q32.squared_singular_values[:, :2], d32.squared_singular_values[:, :2], rtol=1e-4)
    n32 = network_jacobian_spectrum(2, 5, "relu", "kaiming_uniform", batchnorm="train", batch_size=4, trials=2,
                                    seed=0, device="cpu", dtype="float32")
    assert n32.squared_singular_values.dtype == np.float64 and np.all(np.isfinite(n32.squared_singular_values))
    deep = product_spectrum(500, 4, trials=2, seed=0, device="cpu", dtype="float32", sigma_w2=1.0)
    assert np.all(np.isfinite(deep.log_singular_values)) and deep.saturated > 0
    with pytest.warns(RuntimeWarning, match="outside the float64 range"):  # e^{2 ln σ} < 1e-308
        deep.squared_singular_values  # noqa: B018


def test_result_object_and_xarray_dataset():
    res = network_jacobian_spectrum(2, 4, "tanh", "xavier_uniform", batchnorm="train", batch_size=3, trials=3,
                                    seed=5, device="cpu")
    assert isinstance(res, SpectrumResult)
    assert res.samples.shape == (res.squared_singular_values.size,)
    np.testing.assert_array_equal(res.samples, res.squared_singular_values.ravel())
    ds = res.to_xarray()
    assert ds["squared_singular_values"].dims == ("trial", "index")
    assert ds.sizes["trial"] == 3 and ds.sizes["index"] == 3 * 4 - 8
    assert ds["act_var"].dims == ("trial", "layer") and ds.sizes["layer"] == 3
    np.testing.assert_array_equal(ds["structural_zeros"].values, [8, 8, 8])
    for key in ("depth", "widths", "activation", "init", "batchnorm", "seed", "device", "dtype", "batch_size"):
        assert key in ds.attrs
    assert ds.attrs["seed"] == 5 and ds.attrs["batchnorm"] == "train" and ds.attrs["init"] == "xavier_uniform"
    p = product_spectrum(50, 3, trials=2, seed=0, device="cpu", sigma_w2=1.3)
    pds = p.to_xarray()
    assert "log_singular_values" in pds and pds.attrs["method"] == "qr" and pds.attrs["stabilize"] == 1
    np.testing.assert_allclose(p.growth_rates, p.log_singular_values / 50)


def test_results_print_a_short_summary_not_the_arrays():
    # Before: the dataclass repr printed every array (hundreds of lines for the README's 4 × 256 result).
    res = network_jacobian_spectrum(2, 64, "relu", "kaiming_normal", trials=3, seed=0, device="cpu")
    text = repr(res)
    assert str(res) == text and len(text.splitlines()) <= 6 and len(text) < 1200, text
    assert "array(" not in text and "kind='network'" in text and "depth=2" in text and "trials=3" in text
    assert "(3, 64) float64" in text and "mean" in text and "grad_sq_norm" in text
    sq = res.squared_singular_values
    assert f"max {sq.max():.4g}" in text
    deep = product_spectrum(4000, 3, trials=2, seed=0, device="cpu")
    text = repr(deep)
    assert len(text.splitlines()) <= 6 and "widths=[3]×4001" in text and "growth_rates" in text, text
    assert "all saturated" in text  # top growth rate ≈ −0.18: e^{2 ln σ} ≈ e^{−1470} = 0 in float64
    st = network_layer_stats(3, 8, "tanh", trials=2, seed=0, device="cpu")
    text = repr(st)
    assert str(st) == text and len(text.splitlines()) <= 3 and "array(" not in text and "LayerStatsResult(" in text


def test_montecarlo_all_lists_the_public_names():
    import rmt_init.montecarlo as mc

    assert {"product_spectrum", "network_jacobian_spectrum", "network_layer_stats", "chained_jacobian",
            "SpectrumResult", "LayerStatsResult", "GrowthEstimate"} <= set(mc.__all__)
    assert all(hasattr(mc, name) for name in mc.__all__)
    assert len(set(mc.__all__)) == len(mc.__all__)


def test_seed_none_is_recorded_so_the_run_can_be_repeated():
    a = product_spectrum(2, 3, trials=2, seed=None, device="cpu")
    b = product_spectrum(2, 3, trials=2, seed=a.config["seed"], device="cpu")
    np.testing.assert_array_equal(a.squared_singular_values, b.squared_singular_values)


BAD_PRODUCT = [
    (dict(depth=0, width=4), "depth", "0"),
    (dict(depth=2, width=0), "width", "0"),
    (dict(depth=2, width=4, init="he_gaussian"), "init", "'he_gaussian'"),
    (dict(depth=2, width=4, sigma_w2=float("nan")), "sigma_w2", "nan"),
    (dict(depth=2, width=4, sigma_w2=-1.0), "sigma_w2", "-1.0"),
    (dict(depth=2, width=4, device="tpu"), "device", "'tpu'"),
    (dict(depth=2, width=4, dtype="int8"), "dtype", "'int8'"),
    (dict(depth=2, width=4, dtype=torch.float16), "dtype", "torch.float16"),
    (dict(depth=2, width=4, stabilize="maybe"), "stabilize", "'maybe'"),
    (dict(depth=2, width=4, weights="cauchy", sigma_w2=1.0), "weights", "'cauchy'"),
    (dict(depth=2, width=4, weights="uniform"), "weights", "'uniform'"),
    (dict(depth=2, widths=[4, 0, 4]), "widths[1]", "0"),
    (dict(depth=2, widths=[4, 4]), "widths", "got 2"),
    (dict(depth=2, width=4, trials=0), "trials", "0"),
    (dict(depth=2, width=4, seed=-3), "seed", "-3"),
    (dict(depth=2, width=4, init="kaiming_normal", init_kwargs={"slope": 1}), "init_kwargs", "'slope'"),
    (dict(depth=2, width=4, progress="sometimes"), "progress", "'sometimes'"),
]


@pytest.mark.parametrize("kwargs,name,shown", BAD_PRODUCT)
def test_product_bad_input_raises_value_error_naming_the_value(kwargs, name, shown):
    with pytest.raises(ValueError) as err:
        product_spectrum(**kwargs)
    msg = str(err.value)
    assert name in msg and shown in msg


BAD_NETWORK = [
    (dict(depth=2, width=0), "width", "0"),
    (dict(depth=0, width=4), "depth", "0"),
    (dict(depth=2, width=4, activation="swish"), "activation", "'swish'"),
    (dict(depth=2, width=4, init="glorot_cauchy"), "init", "'glorot_cauchy'"),
    (dict(depth=2, width=4, batchnorm="layer"), "batchnorm", "'layer'"),
    (dict(depth=2, width=4, batchnorm="train", batch_size=1), "batch_size", "1"),
    (dict(depth=2, width=4, architecture="transformer"), "architecture", "'transformer'"),
    (dict(depth=2, width=4, architecture="conv", padding="reflect"), "padding", "'reflect'"),
    (dict(depth=2, width=4, architecture="conv", kernel_size=2), "kernel_size", "2"),
    (dict(depth=2, width=4, input_variance=float("nan")), "input_variance", "nan"),
    (dict(depth=2, width=4, sigma_b2=0.5), "sigma_b2", "0.5"),
    (dict(depth=2, width=4, bias=True, sigma_b2=-0.5), "sigma_b2", "-0.5"),
    (dict(depth=2, width=4, device="gpu0"), "device", "'gpu0'"),
    (dict(depth=2, width=[4, 4]), "width", "got 2"),
]


@pytest.mark.parametrize("kwargs,name,shown", BAD_NETWORK)
def test_network_bad_input_raises_value_error_naming_the_value(kwargs, name, shown):
    with pytest.raises(ValueError) as err:
        network_jacobian_spectrum(**kwargs)
    msg = str(err.value)
    assert name in msg and shown in msg


def test_device_and_dtype_resolution():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_dtype("double") is torch.float64 and resolve_dtype(torch.float32) is torch.float32
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=re.escape("'cuda'")):
            resolve_device("cuda")


@CUDA
def test_cuda_products_and_networks():
    from rmt_init.theory import finite_width_moments

    res = product_spectrum(3, 8, trials=2000, seed=0, device="cuda", stabilize=False)
    assert res.config["device"].startswith("cuda")
    x = res.squared_singular_values
    m, se = (x**2).sum(1).mean() / 8, (x**2).sum(1).std(ddof=1) / 8 / np.sqrt(2000)
    assert abs(m - finite_width_moments(8, 3).b) <= 5 * se
    deep = product_spectrum(2000, 4, trials=4, seed=0, device="cuda")
    assert np.all(np.isfinite(deep.log_singular_values))
    net = network_jacobian_spectrum(3, 8, "relu", batchnorm="train", batch_size=4, trials=2, device="cuda")
    assert np.all(np.isfinite(net.squared_singular_values))
    again = network_jacobian_spectrum(3, 8, "relu", batchnorm="train", batch_size=4, trials=2, device="cuda")
    np.testing.assert_allclose(again.squared_singular_values, net.squared_singular_values, rtol=1e-10)
