"""rmt_init.montecarlo.model_jacobian_spectrum against independently computed Jacobians.

References: ``torch.func.jacrev`` of each example's map (the model run on that example alone), or
``torch.autograd.functional.jacobian`` of the whole batch map for train-mode BatchNorm (which
``torch.func`` refuses, PyTorch issue 85533), on a deep copy of the model; then ``torch.linalg.svdvals``
in float64. Agreement is asked to 1e-10 relative to the largest squared singular value: both sides are
the same float64 Jacobian up to the order of rounding (≈ 1e-15 relative per entry), far below 1e-10.
"""
from __future__ import annotations

import copy
import math
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

import rmt_init
import rmt_init.montecarlo as mc
from rmt_init.montecarlo import ModelSpectrumResult, model_jacobian_spectrum, structural_zero_count
from rmt_init.montecarlo._device import limit_threads, trial_generator

TOL = 1e-10


@pytest.fixture(autouse=True)
def _single_thread():
    with limit_threads(1):
        yield


# -- models -------------------------------------------------------------------------------------------------
class ResidualMLP(nn.Module):
    def __init__(self, width: int = 6, depth: int = 3) -> None:
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.blocks = nn.ModuleList(nn.Sequential(nn.Linear(width, width), nn.Tanh()) for _ in range(depth))
        self.out = nn.Linear(width, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = h + block(h)
        return self.out(h)


class AttentionBlock(nn.Module):
    """Pre-norm transformer self-attention block with an MLP."""

    def __init__(self, d: int = 6, heads: int = 2) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln1(x)
        a, _ = self.attn(h, h, h)
        x = x + a
        return x + self.mlp(self.ln2(x))


class ConvNet(nn.Module):
    def __init__(self, bn: bool = False) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(3) if bn else nn.Identity()
        self.conv2 = nn.Conv2d(3, 3, 3, padding=1)
        self.pool = nn.AvgPool2d(2)
        self.fc = nn.Linear(3 * 2 * 2, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        h = h + torch.tanh(self.conv2(h))  # residual
        return self.fc(self.pool(h).flatten(1))


def _randomise_running_stats(model: nn.Module, gen: torch.Generator) -> None:
    """Non-default running statistics, so that eval-mode BN is not the constant 1/√(1 + eps)."""
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_var.uniform_(0.5, 2.0, generator=gen)
            m.running_mean.normal_(generator=gen)


def _models():
    torch.manual_seed(1234)
    gen = torch.Generator().manual_seed(7)
    bn_eval = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 3))
    _randomise_running_stats(bn_eval, gen)
    return {
        "residual_mlp": (ResidualMLP(), torch.randn(3, 4, generator=gen)),
        "layernorm": (nn.Sequential(nn.Linear(5, 6), nn.LayerNorm(6), nn.Linear(6, 4)), torch.randn(3, 5, generator=gen)),
        "softmax": (nn.Sequential(nn.Linear(5, 7), nn.Softmax(dim=-1)), torch.randn(3, 5, generator=gen)),
        "pool_flatten": (
            nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.AvgPool2d(2), nn.Flatten()),
            torch.randn(2, 2, 8, 8, generator=gen),
        ),
        "attention": (AttentionBlock(), torch.randn(2, 4, 6, generator=gen)),
        "conv_net": (ConvNet(), torch.randn(2, 2, 4, 4, generator=gen)),
        "batchnorm_eval": (bn_eval, torch.randn(4, 5, generator=gen)),
    }


def _per_example_reference(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Squared singular values of each example's Jacobian by torch.func.jacrev (rows decreasing)."""
    m = copy.deepcopy(model).double()
    x = x.double()
    rows = []
    for i in range(x.shape[0]):
        jac = torch.func.jacrev(lambda xi: m(xi.unsqueeze(0)).squeeze(0))(x[i]).detach()
        jac = jac.reshape(-1, x[i].numel())
        rows.append((torch.linalg.svdvals(jac) ** 2).numpy())
    return np.stack(rows)


def _batch_reference(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    """Squared singular values of the whole batch map's Jacobian by torch.autograd.functional.jacobian."""
    m = copy.deepcopy(model).double()  # the copy's running statistics get updated; the original's must not
    x = x.double()
    jac = torch.autograd.functional.jacobian(m, x).detach()
    jac = jac.reshape(-1, x.numel())
    return (torch.linalg.svdvals(jac) ** 2).numpy()


def _close(a: np.ndarray, b: np.ndarray) -> float:
    """Largest difference relative to the largest value."""
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


# -- dense against references ----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(_models()))
def test_dense_equals_jacrev(name):
    model, x = _models()[name]
    model.eval()
    ref = _per_example_reference(model, x)
    res = model_jacobian_spectrum(model, x, method="dense", seed=0)
    assert isinstance(res, ModelSpectrumResult)
    assert res.config["jacobian"] == "per_example" and res.config["method"] == "dense"
    assert res.squared_singular_values.shape == ref.shape
    assert np.all(np.diff(res.squared_singular_values, axis=1) <= 0)  # rows decreasing, as SpectrumResult
    assert _close(res.squared_singular_values, ref) < TOL
    assert list(res.row_example) == list(range(x.shape[0]))


def test_batchnorm_train_chain_structural_zeros():
    """Train-mode BN: batch-coupled automatically, the 2N structural zeros of a chain counted and removed."""
    torch.manual_seed(3)
    b, widths = 6, (5, 4, 4)
    model = nn.Sequential(
        nn.Linear(5, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Tanh()
    ).train()
    x = torch.randn(b, 5)
    ref = _batch_reference(model, x)
    n_zero = structural_zero_count(widths, b)
    assert n_zero == 8
    for chained in (None, False):  # chained layer Jacobians and torch.func on the patched copy
        res = model_jacobian_spectrum(model, x, method="dense", chained=chained)
        assert res.config["jacobian"] == "batch"
        assert res.config["path"] == ("chained" if chained is None else "torch.func")
        assert res.structural_zeros.tolist() == [n_zero]
        assert _close(res.squared_singular_values[0], ref[: ref.size - n_zero]) < TOL
        full = model_jacobian_spectrum(model, x, method="dense", chained=chained, drop_structural_zeros=False)
        assert _close(full.squared_singular_values[0], ref) < TOL


def test_batchnorm_train_conv_residual():
    """A residual conv net with BatchNorm2d in train mode (not a chain): batch Jacobian vs autograd."""
    torch.manual_seed(4)
    model = ConvNet(bn=True).train()
    x = torch.randn(3, 2, 4, 4)
    ref = _batch_reference(model, x)
    res = model_jacobian_spectrum(model, x, method="dense", drop_structural_zeros=False)
    assert res.config["jacobian"] == "batch" and res.config["path"] == "torch.func"
    assert _close(res.squared_singular_values[0], ref) < TOL


def test_structural_zero_count_by_rank_matches_conv_chain():
    """The rank-based count equals structural_zero_count on a Conv2d → BatchNorm2d → relu chain."""
    torch.manual_seed(5)
    b, c, side = 3, 2, 3
    model = nn.Sequential(
        nn.Conv2d(c, c, 3, padding=1, padding_mode="circular", bias=False), nn.BatchNorm2d(c), nn.Tanh()
    ).train()
    x = torch.randn(b, c, side, side)
    res = model_jacobian_spectrum(model, x, method="dense")
    expected = structural_zero_count((c, c), b, spatial=side * side)
    assert expected > 0
    assert res.structural_zeros.tolist() == [expected]
    ref = _batch_reference(model, x)
    assert _close(res.squared_singular_values[0], ref[: ref.size - expected]) < TOL


def test_chained_path_agrees_with_generic_path():
    torch.manual_seed(6)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 16, 7), nn.Tanh()
    )
    _randomise_running_stats(model, torch.Generator().manual_seed(1))
    model.eval()
    x = torch.randn(3, 2, 4, 4)
    chained = model_jacobian_spectrum(model, x, method="dense")
    generic = model_jacobian_spectrum(model, x, method="dense", chained=False)
    assert chained.config["path"] == "chained" and generic.config["path"] == "torch.func"
    assert _close(chained.squared_singular_values, generic.squared_singular_values) < TOL
    with pytest.raises(ValueError, match="chained=True"):
        model_jacobian_spectrum(nn.Sequential(nn.Linear(3, 3), nn.Softmax(-1)), torch.randn(2, 3), chained=True)


# -- internal points ----------------------------------------------------------------------------------------------
def test_internal_points_equal_subnetwork_jacobian():
    torch.manual_seed(8)
    model = ResidualMLP(width=6, depth=3).double().eval()
    x = torch.randn(3, 4, dtype=torch.float64)
    b0, b1, b2 = model.blocks
    with torch.no_grad():
        h0 = model.inp(x)  # the output of `inp`: the residual stream's start
        h1 = h0 + b0(h0)  # the stream after block 0 (the input of blocks.1)

    def stream(v, skip):  # a module's output is substituted in all its uses: the whole residual stream
        for block in (b0, b1, b2):
            v = v + block(v)
        return v

    def branch(v, skip):  # "blocks.1:input" substitutes the tensor as blocks.1's input only; the skip keeps h1
        w = skip + b1(v)
        return w + b2(w)

    def reference(fn, h):
        jacs = [torch.func.jacrev(fn)(h[i], h1[i]).detach() for i in range(h.shape[0])]
        return np.stack([(torch.linalg.svdvals(j) ** 2).numpy() for j in jacs])

    res = model_jacobian_spectrum(model, x, start="inp", end="out:input", method="dense")
    assert res.config["start"] == "inp" and res.config["jacobian_shape"] == [6, 6]
    assert _close(res.squared_singular_values, reference(stream, h0)) < TOL
    res = model_jacobian_spectrum(model, x, start="blocks.1:input", end="out:input", method="dense")
    assert _close(res.squared_singular_values, reference(branch, h1)) < TOL
    # a Sequential cut at its children: the chained path on the slice, and the generic path
    seq = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    with torch.no_grad():
        h1 = seq[1](seq[0](x))
    part = nn.Sequential(seq[2], seq[3])
    ref2 = _per_example_reference(part, h1)
    for chained in (None, False):
        r = model_jacobian_spectrum(seq, x, start="1", end="3", chained=chained)
        assert _close(r.squared_singular_values, ref2) < TOL
        r = model_jacobian_spectrum(seq, x, start="2:input", end="4:input", chained=chained)
        assert _close(r.squared_singular_values, ref2) < TOL


def test_batch_map_without_coupling_is_block_diagonal():
    """per_example=False on a model without coupling: the batch Jacobian is block diagonal, so its squared
    singular values are the union of the examples' ones."""
    torch.manual_seed(14)
    model = nn.Sequential(nn.Linear(4, 5), nn.LayerNorm(5), nn.Linear(5, 3))
    x = torch.randn(3, 4)
    per = model_jacobian_spectrum(model, x)
    whole = model_jacobian_spectrum(model, x, per_example=False)
    assert whole.config["jacobian"] == "batch" and whole.config["jacobian_shape"] == [9, 12]
    assert whole.squared_singular_values.shape == (1, 9) and whole.structural_zeros.tolist() == [0]
    union = np.sort(per.squared_singular_values.ravel())[::-1]
    assert _close(whole.squared_singular_values[0], union) < TOL
    assert abs(whole.moment(2)[0] - per.moment(2)[0]) <= TOL * per.moment(2)[0]


def test_integer_inputs_with_internal_start():
    """Token ids: the Jacobian from the embedding's output (a floating tensor) onwards."""
    torch.manual_seed(15)
    model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(6, 4), nn.Tanh()).double()
    ids = torch.tensor([[1, 7], [3, 3]])
    res = model_jacobian_spectrum(model, ids, start="0")
    with torch.no_grad():
        emb = model[0](ids)
    ref = _per_example_reference(nn.Sequential(*list(model)[1:]), emb)
    assert _close(res.squared_singular_values, ref) < TOL
    with pytest.raises(ValueError, match="only floating tensors"):
        model_jacobian_spectrum(model, ids)


# -- the user's model is never modified ----------------------------------------------------------------------------
def test_user_model_state_unchanged():
    torch.manual_seed(9)
    model = ConvNet(bn=True).train()
    model.bn1.running_mean.normal_()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    flags = [m.training for m in model.modules()]
    x = torch.randn(3, 2, 4, 4)

    def reinit(m, gen):
        for p in m.parameters():
            nn.init.normal_(p, std=0.3, generator=gen)

    model_jacobian_spectrum(model, x, method="dense", trials=2, reinit=reinit, seed=1)
    model_jacobian_spectrum(model, x, method="dense", start="conv1", end="fc:input", per_example=False)
    after = model.state_dict()
    assert before.keys() == after.keys()
    for key, v in before.items():
        assert torch.equal(v, after[key]), key
    assert [m.training for m in model.modules()] == flags
    assert model.bn1.track_running_stats and model.bn1.running_var is not None
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


# -- moments -------------------------------------------------------------------------------------------------------
def test_moment_equals_mean_of_exact_traces():
    torch.manual_seed(10)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(2, 5)
    seed, trials = 11, 3

    def reinit(m, gen):
        for p in m.parameters():
            nn.init.normal_(p, std=0.5, generator=gen)

    res = model_jacobian_spectrum(model, x, method="dense", trials=trials, reinit=reinit, seed=seed)
    assert res.trials == trials and res.squared_singular_values.shape == (trials * 2, 3)
    assert res.row_trial.tolist() == [0, 0, 1, 1, 2, 2]
    # independent reference: rebuild each trial's network and take traces of explicit J Jᵀ powers
    per_trial = {1: [], 2: [], 3: []}
    for t in range(trials):
        m = copy.deepcopy(model).double()
        with torch.no_grad():
            reinit(m, trial_generator(seed, t, torch.device("cpu")))
        jacs = [torch.func.jacrev(m)(x[i].double()).detach() for i in range(2)]  # (3, 5) each
        for k in per_trial:
            # n = rows of J (3) per example, averaged over the 2 examples
            per_trial[k].append(
                sum(float(torch.trace(torch.linalg.matrix_power(j @ j.T, k))) for j in jacs) / (2 * 3)
            )
    for k, values in per_trial.items():
        est, se = res.moment(k)
        v = np.array(values)
        assert abs(est - v.mean()) <= TOL * abs(v.mean())
        assert abs(se - v.std(ddof=1) / math.sqrt(trials)) <= 1e-8 * se
    one = model_jacobian_spectrum(model, x, method="dense")
    est, se = one.moment(2)
    assert math.isnan(se) and est > 0
    with pytest.raises(ValueError, match="k must be"):
        one.moment(0)


def test_compare_accepts_result():
    """A depth-2 linear Gaussian net (variance 1/N) against the Fuss–Catalan law of order 2."""
    n = 150
    gen = torch.Generator().manual_seed(12)
    model = nn.Sequential(nn.Linear(n, n, bias=False), nn.Linear(n, n, bias=False)).double()
    with torch.no_grad():
        for layer in model:
            layer.weight.normal_(0.0, 1.0 / math.sqrt(n), generator=gen)
    res = model_jacobian_spectrum(model, torch.randn(1, n, dtype=torch.float64, generator=gen))
    cmp = rmt_init.compare(rmt_init.fuss_catalan(2), res)
    # One 150×150 product: its empirical spectral cdf is within O(1/N) of the limit law plus the edge
    # fluctuations; KS < 0.1 is a loose sanity bound that a wrong normalisation (σ² off by a factor 2)
    # or a wrong law would break (KS > 0.2 for those).
    assert cmp.n_samples == n and cmp.ks < 0.1
    ds = res.to_xarray()
    assert ds["squared_singular_values"].shape == (1, n) and ds.attrs["method"] == "dense"
    assert "ModelSpectrumResult" in repr(res) and "moment(1)" in repr(res)
    import matplotlib.pyplot as plt

    from rmt_init import plot

    ax = plot.compare(rmt_init.fuss_catalan(2), res)
    assert ax.patches or ax.lines  # histogram bars / density curve drawn
    plt.close(ax.figure)


# -- matrix-free dispatch (against an exact stand-in of the matrix_free contract) ---------------------------------------
def _fake_matrix_free() -> types.ModuleType:
    """Exact stand-ins following the matrix_free contract: dense J from jacrev, exact eigenvalues."""
    fake = types.ModuleType("rmt_init.montecarlo.matrix_free")

    class JacobianOperator:
        def __init__(self, fn, x0):
            self.jac = torch.func.jacrev(fn)(x0).detach()
            self.shape = tuple(self.jac.shape)
            self.dtype, self.device = x0.dtype, x0.device

    class SLQEstimate:
        def __init__(self, eig):  # eigenvalues of JᵀJ, input side
            self.eig = np.sort(eig)
            self.nodes, self.weights = self.eig[None, :], np.full((1, eig.size), 1.0 / eig.size)

        def moment(self, k):
            return float(np.mean(self.eig**k)), 0.01

        def quantiles(self, n):
            assert n == self.eig.size  # the dispatcher asks for the whole input side here
            return self.eig.copy()

    def lanczos_squared_singular_values(op, k, *, which="largest", generator=None, tol=1e-10, max_iter=None):
        ev = np.sort(torch.linalg.svdvals(op.jac).numpy() ** 2)
        return ev[-k:] if which == "largest" else ev[:k]

    def stochastic_lanczos_quadrature(op, *, probes=None, steps=None, generator=None):
        return SLQEstimate(torch.linalg.eigvalsh(op.jac.T @ op.jac).numpy())

    fake.JacobianOperator = JacobianOperator
    fake.lanczos_squared_singular_values = lanczos_squared_singular_values
    fake.stochastic_lanczos_quadrature = stochastic_lanczos_quadrature
    return fake


@pytest.mark.parametrize("shape", [(5, 3), (3, 5)])  # (n_in, n_out): more inputs than outputs, and fewer
def test_matrix_free_dispatch(monkeypatch, shape):
    monkeypatch.setitem(sys.modules, "rmt_init.montecarlo.matrix_free", _fake_matrix_free())
    monkeypatch.setattr(mc, "matrix_free", sys.modules["rmt_init.montecarlo.matrix_free"], raising=False)
    n_in, n_out = shape
    torch.manual_seed(13)
    model = nn.Sequential(nn.Linear(n_in, 4), nn.Tanh(), nn.Linear(4, n_out))
    x = torch.randn(2, n_in)
    dense = model_jacobian_spectrum(model, x, method="dense")
    dim = min(n_in, n_out)
    slq = model_jacobian_spectrum(model, x, method="slq", points=dim)
    assert slq.config["path"] == "matrix_free" and slq.config["method"] == "slq"
    assert _close(slq.squared_singular_values, dense.squared_singular_values) < TOL
    for k in (1, 2, 3):  # input-side moments converted by n_in/n_out
        assert abs(slq.moment(k)[0] - dense.moment(k)[0]) <= TOL * dense.moment(k)[0]
    assert abs(slq.moment(1)[1] - 0.01 * n_in / n_out * math.sqrt(2) / 2) < 1e-15  # two examples combined
    lz = model_jacobian_spectrum(model, x, method="lanczos", k=2)
    assert _close(lz.squared_singular_values, dense.squared_singular_values[:, :2]) < TOL
    assert not lz.has_moments
    with pytest.raises(ValueError, match="moments=True"):
        lz.moment(1)
    small = model_jacobian_spectrum(model, x, method="lanczos", k=1, which="smallest", moments=True)
    assert _close(small.squared_singular_values, dense.squared_singular_values[:, -1:]) < TOL
    assert small.has_moments
    auto = model_jacobian_spectrum(model, x, k=2, memory_budget=8)  # J does not fit 8 bytes: lanczos
    assert auto.config["method"] == "lanczos"
    assert model_jacobian_spectrum(model, x, memory_budget=8, points=dim).config["method"] == "slq"
    assert model_jacobian_spectrum(model, x).config["method"] == "dense"


def test_matrix_free_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "rmt_init.montecarlo.matrix_free", None)
    monkeypatch.delattr(mc, "matrix_free", raising=False)
    with pytest.raises(ValueError, match="needs rmt_init.montecarlo.matrix_free"):
        model_jacobian_spectrum(nn.Linear(3, 3), torch.randn(2, 3), method="slq")


# -- bad input -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"model": "not a module"}, "model must be a torch.nn.Module"),
        ({"inputs": [[1.0, 2.0, 3.0]]}, "inputs must be a torch.Tensor"),
        ({"inputs": torch.randn(2, 4)}, "the model raised RuntimeError.*shapes"),
        ({"inputs": torch.tensor([[1.0, float("nan"), 0.0]])}, "NaN"),
        ({"start": "nope"}, "unknown start 'nope'.*'0', '1', '2'"),
        ({"end": "1:middle"}, "'input' or 'output'"),
        ({"k": 4}, "k=4 is larger than the dimension"),
        ({"method": "svd"}, "unknown method 'svd'.*'dense'"),
        ({"trials": 2}, "trials=2 needs reinit"),
        ({"per_example": True, "model": nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))}, "per_example=True"),
        ({"model": nn.Sequential(nn.Linear(3, 3), nn.Dropout(0.5))}, "random in training mode"),
        ({"start": "2", "end": "0"}, "not reached before the end point"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    args = {"model": nn.Sequential(nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 3)), "inputs": torch.randn(2, 3)}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        model_jacobian_spectrum(args.pop("model"), args.pop("inputs"), method=args.pop("method", "dense"), **args)


def test_matrix_free_against_dense():
    """With the real matrix_free module (skipped where it is not installed): Lanczos top-k equals dense to
    1e-8 relative; SLQ moments agree with the exact ones within 4 standard errors (Hutchinson estimator over
    30 Rademacher probes, with 40 ≥ n_in Lanczos steps the per-probe quadrature is exact for the moments, so
    the only error is the probe average's; a fixed seed makes the test reproducible)."""
    pytest.importorskip("rmt_init.montecarlo.matrix_free")
    torch.manual_seed(16)
    cases = [
        (ResidualMLP(width=12, depth=2), torch.randn(2, 4), False),
        (ConvNet(bn=True).train(), torch.randn(3, 2, 4, 4), True),
    ]
    for model, x, batch in cases:
        dense = model_jacobian_spectrum(model, x, method="dense", drop_structural_zeros=False)
        lz = model_jacobian_spectrum(model, x, method="lanczos", k=3, seed=1)
        assert lz.config["jacobian"] == ("batch" if batch else "per_example")
        assert _close(lz.squared_singular_values, dense.squared_singular_values[:, :3]) < 1e-8
        slq = model_jacobian_spectrum(model, x, method="slq", seed=2, probes=30, steps=40)
        for k in (1, 2):
            est, se = slq.moment(k)
            exact = dense.moment(k)[0]
            assert abs(est - exact) <= 4 * se + 1e-12 * exact, (k, est, se, exact)


# -- reinit by scheme name ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "spec, scheme, kwargs",
    [
        ("kaiming_normal_", "kaiming_normal_", {}),
        (("kaiming_normal_", {"nonlinearity": "relu", "bias": ("normal", 0.1)}), "kaiming_normal_",
         {"nonlinearity": "relu", "bias": ("normal", 0.1)}),
        (("orthogonal", {"gain": 2.0}), "orthogonal_", {"gain": 2.0}),
    ],
)
def test_reinit_by_scheme_name_equals_initialize_(spec, scheme, kwargs):
    """A scheme name (or (name, kwargs)) is initialize_(copy, scheme, generator=trial's generator, **kwargs): the
    same squared singular values as an explicit callable doing that, trials differ, and the model's own weights
    (which would give identical rows) are not used."""
    torch.manual_seed(17)
    model = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 4))
    x = torch.randn(2, 5)

    def explicit(m, gen):
        mc.initialize_(m, scheme, generator=gen, **kwargs)

    by_name = model_jacobian_spectrum(model, x, method="dense", trials=3, reinit=spec, seed=4)
    by_callable = model_jacobian_spectrum(model, x, method="dense", trials=3, reinit=explicit, seed=4)
    assert np.array_equal(by_name.squared_singular_values, by_callable.squared_singular_values)
    rows = by_name.squared_singular_values
    assert not np.allclose(rows[:2], rows[2:4])  # trials are different networks
    own = model_jacobian_spectrum(model, x, method="dense").squared_singular_values
    assert not np.allclose(rows[:2], own)
    assert by_name.config["reinit"].startswith(scheme.rstrip("_"))


@pytest.mark.parametrize(
    "reinit, match",
    [
        ("kaiming_gaussian_", "unknown scheme 'kaiming_gaussian_'.*'kaiming_normal'"),
        (("kaiming_normal_", {"gain": 2.0}), "unknown keyword argument.*'gain'.*'nonlinearity'"),
        (("kaiming_normal_", {"generator": None}), "must not contain 'generator'"),
        (("kaiming_normal_", "relu"), "reinit must be None, a callable"),
        (3, "reinit must be None, a callable"),
    ],
)
def test_reinit_bad_scheme_raises(reinit, match):
    with pytest.raises(ValueError, match=match):
        model_jacobian_spectrum(nn.Linear(3, 3), torch.randn(2, 3), method="dense", reinit=reinit)
