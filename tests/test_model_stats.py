"""model_layer_stats: per-module activation/gradient statistics of any model by hooks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from rmt_init.montecarlo.architectures import ResidualMLP, cifar_resnet, resnet20
from rmt_init.montecarlo.initialize import initialize_
from rmt_init.montecarlo.model_stats import MODEL_STATS, default_stat_modules, model_layer_stats

F64 = torch.float64


def _small():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 4, dtype=F64), nn.Tanh(), nn.Linear(4, 3, dtype=F64))


def test_hook_results_equal_manual_forward_and_backward():
    model = _small()
    x = torch.randn(6, 5, dtype=F64)
    x[2] *= 50.0  # one large example (it saturates tanh, so it dominates the last layer, not the first)
    r = model_layer_stats(model, x, top_k=2)
    assert r.names == ("input", "0", "1", "2")
    assert r.types == ("Tensor", "Linear", "Tanh", "Linear")
    w1, b1, w2, b2 = model[0].weight.detach(), model[0].bias.detach(), model[2].weight.detach(), model[2].bias.detach()
    # manual forward and backward of ℓ = Σ y (no autograd)
    h = x @ w1.T + b1
    a = torch.tanh(h)
    y = a @ w2.T + b2
    gy = torch.ones_like(y)
    ga = gy @ w2
    gh = ga * (1 - a**2)
    gx = gh @ w1
    acts, grads = [x, h, a, y], [gx, gh, ga, gy]
    np.testing.assert_allclose(r["act_mean"], [float(t.mean()) for t in acts], rtol=1e-13)
    np.testing.assert_allclose(r["act_std"], [float(t.std(unbiased=False)) for t in acts], rtol=1e-13)
    np.testing.assert_allclose(r["grad_norm"], [float(t.norm()) for t in grads], rtol=1e-13)
    wg0 = math.sqrt(float((gh.T @ x).pow(2).sum() + gh.sum(0).pow(2).sum()))
    wg2 = math.sqrt(float((gy.T @ a).pow(2).sum() + gy.sum(0).pow(2).sum()))
    np.testing.assert_allclose(r["weight_grad_norm"][[1, 3]], [wg0, wg2], rtol=1e-13)
    assert np.isnan(r["weight_grad_norm"][[0, 2]]).all() and np.isnan(r["weight_grad_top_k_share"][[0, 2]]).all()

    def top2(s):
        s = s.sort(descending=True).values
        return float(s[:2].sum() / s.sum())

    # output-gradient shares: ‖g_b‖²; per-example Linear contributions c_b = (g_b x_bᵀ, g_b): ‖g_b‖²(‖x_b‖² + 1)
    np.testing.assert_allclose(r["grad_top_k_share"], [top2(g.pow(2).sum(1)) for g in grads], rtol=1e-13)
    c0 = gh.pow(2).sum(1) * (x.pow(2).sum(1) + 1)
    c2 = gy.pow(2).sum(1) * (a.pow(2).sum(1) + 1)
    np.testing.assert_allclose(r["weight_grad_top_k_share"][[1, 3]], [top2(c0), top2(c2)], rtol=1e-13)
    assert 2 / 6 < r["weight_grad_top_k_share"][3] < 1  # not the equal-share value k/B: example 2 stands out


def test_gradient_norms_equal_autograd_with_batch_coupling():
    """Train-mode BN couples the examples; the hook gradients must still be ∂ℓ/∂(block output) exactly."""
    torch.manual_seed(1)
    model = ResidualMLP(16, 3, batchnorm=True, activation="tanh", dtype=F64)
    x = torch.randn(10, 16, dtype=F64)
    loss = lambda y: 0.5 * (y**2).sum()  # noqa: E731
    r = model_layer_stats(model, x, loss=loss)
    assert r.names == ("input", "blocks.0", "blocks.1", "blocks.2")
    xs = [x.clone().requires_grad_(True)]
    for blk in model.blocks:
        xs.append(blk(xs[-1]))
    ell = loss(xs[-1])
    grads = torch.autograd.grad(ell, xs, retain_graph=True)
    np.testing.assert_allclose(r["grad_norm"], [float(g.norm()) for g in grads], rtol=1e-12)
    for i, blk in enumerate(model.blocks):
        wg = torch.autograd.grad(ell, list(blk.parameters()), retain_graph=True)
        np.testing.assert_allclose(r["weight_grad_norm"][i + 1], math.sqrt(sum(float(g.pow(2).sum()) for g in wg)),
                                   rtol=1e-12)
    np.testing.assert_allclose(r["act_std"][1:], [float(t.detach().std(unbiased=False)) for t in xs[1:]], rtol=1e-13)


def test_builtin_losses():
    model = _small()
    x = torch.randn(7, 5, dtype=F64)
    r = model_layer_stats(model, x, loss="random_projection", seed=3)
    assert r["grad_norm"][-1] == pytest.approx(math.sqrt(7), rel=1e-13)  # one unit direction per example
    again = model_layer_stats(model, x, loss="random_projection", seed=3)
    np.testing.assert_array_equal(r["grad_norm"], again["grad_norm"])
    assert not np.array_equal(r["grad_norm"], model_layer_stats(model, x, loss="random_projection", seed=4)["grad_norm"])
    via_generator = model_layer_stats(model, x, loss="cross_entropy", seed=torch.Generator().manual_seed(4))
    ce = model_layer_stats(model, x, loss="cross_entropy", seed=4)
    np.testing.assert_array_equal(via_generator["grad_norm"], ce["grad_norm"])
    assert via_generator.config["seed"] == "generator" and ce.config["seed"] == 4
    y = model(x).detach()
    labels = torch.randint(0, 3, (7,), generator=torch.Generator().manual_seed(4))
    g = torch.softmax(y, 1) - nn.functional.one_hot(labels, 3)
    assert ce["grad_norm"][-1] == pytest.approx(float(g.norm()), rel=1e-12)


def test_model_not_mutated_and_hooks_removed_even_on_error():
    torch.manual_seed(2)
    model = cifar_resnet(8, width=4)  # train-mode BN: the forward pass would move the running statistics
    model.layer2.eval()
    flags = {n: m.training for n, m in model.named_modules()}
    state = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 3, 16, 16)

    def check():
        assert {n: m.training for n, m in model.named_modules()} == flags
        for k, v in model.state_dict().items():
            assert torch.equal(v, state[k]), k
        assert all(p.grad is None for p in model.parameters())
        assert all(not m._forward_hooks for m in model.modules())

    r = model_layer_stats(model, x)
    check()
    assert r.config["mode"] == "train"

    def bad_loss(y):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model_layer_stats(model, x, loss=bad_loss)
    check()
    with pytest.raises(ValueError, match="tensor"):
        model_layer_stats(model, x, loss=lambda y: y)  # not a scalar
    check()


def test_default_modules_and_repeated_calls():
    assert default_stat_modules(resnet20()) == (
        ["conv1", "bn1", "act"] + [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(3)] + ["avgpool", "flatten", "fc"]
    )
    assert default_stat_modules(ResidualMLP(4, 2)) == ["blocks.0", "blocks.1"]

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3, dtype=F64)

        def forward(self, x):
            return self.lin(self.lin(x))

    r = model_layer_stats(Twice(), torch.randn(4, 3, dtype=F64))
    assert r.names == ("input", "lin", "lin#2")
    r = model_layer_stats(_small(), torch.randn(4, 5, dtype=F64), per_example=["2"])
    assert np.isnan(r["weight_grad_top_k_share"][:3]).all() and np.isfinite(r["weight_grad_top_k_share"][3])


@pytest.mark.parametrize("kwargs,match", [
    ({"modules": ["nope"]}, "unknown module name 'nope'"),
    ({"modules": "0"}, "sequence of module names"),
    ({"top_k": 9}, "top_k"),
    ({"loss": "mse"}, "valid choices are 'sum_of_outputs'"),
    ({"seed": -1}, "seed"),
    ({"per_example": 1}, "per_example"),
    ({"per_example": ["0", "5"]}, "not among the watched modules"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        model_layer_stats(_small(), torch.randn(8, 5, dtype=F64), **kwargs)


def test_bad_model_or_inputs():
    with pytest.raises(ValueError, match="torch.nn.Module"):
        model_layer_stats(lambda x: x, torch.randn(2, 5))
    with pytest.raises(ValueError, match="inputs"):
        model_layer_stats(_small(), np.zeros((2, 5)))
    with pytest.raises(ValueError, match="floating point"):
        model_layer_stats(_small(), torch.zeros(2, 5, dtype=torch.int64))


def test_repr_and_xarray():
    r = model_layer_stats(_small(), torch.randn(4, 5, dtype=F64))
    text = repr(r)
    assert text.startswith("ModelStatsResult(model='Sequential', mode='train', batch_size=4") and len(text) < 600
    ds = r.to_xarray()
    assert list(ds["module"].values) == list(r.names)
    assert set(MODEL_STATS) <= set(ds.data_vars)
    np.testing.assert_array_equal(ds["act_std"].values, r["act_std"])


# ResNet-20 with and without BN (He et al. basic block: x_out = φ(h₂ + s), h₂ the branch, s the shortcut), kaiming
# normal fan_in weights (σ_w² = 2), zero biases, train-mode BN (γ = 1, β = 0). Mean squares q = E y² of block outputs.
# Exact symmetry: flipping the last conv W₂ → −W₂ flips h₂ (and BN(h₂), BN being odd at β = 0) and nothing else, so
# given everything before, h₂ is symmetric: E[h₂ s] = 0 and E φ(h₂ + s)² ≥ ½ E(h₂ + s)² (for s ≥ 0, pair ±|h₂|).
# * no BN: E h₁² = 2ρ q_in (ρ = share of 3×3 taps inside the zero-padded image, ((3S − 2)/(3S))² at size S, taps at
#   the border seeing activations not larger than inside), E φ(h₁)² = ½ E h₁², E h₂² = 2ρ E φ(h₁)² = 2ρ² q_in, so an
#   identity block multiplies q by at least ½ + ρ² (1.419 at S = 32): geometric growth, variance ~doubling per block.
#   Over the net (stem output → layer3.2; option A: s keeps half the channels, q_s = q_in/2; stride-2 conv coverage
#   ((3S − 1)/(3S))²): Π = 1.419³ · [½(½ + 2·0.959·0.918)](½ + 0.843)² · [½(½ + 2·0.918·0.840)](½ + 0.706)² = 8.67.
# * BN: the branch ends in BN, so E h₂² = v/(v + eps) ≤ 1 and E q_out ≤ E(h₂ + s)² = E h₂² + q_s ≤ 1 + q_s:
#   additive growth, q ~ l, std ~ √l.
# These bounds hold for the expectation over the weights; the test averages 6 independent initializations and
# allows 5 standard errors of that average (SE from the spread between them).
_BLOCKS = [f"layer{s}.{i}" for s in (1, 2, 3) for i in range(3)]


def _rho(size: int, stride: int = 1) -> float:
    """Share of 3×3 taps inside the zero-padded input, per output pixel, at output size ``size``: per dimension
    2 of 3·size taps are padding at stride 1 (first and last rows), 1 at stride 2 (only the first row)."""
    return ((3 * size - 2 / stride) / (3 * size)) ** 2


def _resnet_mean_squares(batchnorm: bool, seeds: int = 6) -> list[dict[str, float]]:
    modules = ["act"] + [m for b in _BLOCKS for m in (b + ".shortcut", b)]
    out = []
    for seed in range(seeds):
        gen = torch.Generator().manual_seed(100 + seed)
        model = initialize_(resnet20(batchnorm=batchnorm), "kaiming_normal_", nonlinearity="relu", generator=gen)
        r = model_layer_stats(model, torch.randn(8, 3, 32, 32, generator=gen), modules=modules, per_example=False)
        out.append(dict(zip(r.names, r["act_std"] ** 2 + r["act_mean"] ** 2)))
    return out


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


def test_resnet20_activations_grow_geometrically_without_bn_additively_with_bn():
    plain = _resnet_mean_squares(False)
    bn = _resnet_mean_squares(True)
    # no BN, stage 1 (S = 32, identity blocks): mean log growth per block ≥ ln(½ + ρ²)
    chain = ["act"] + _BLOCKS[:3]
    per_block = np.array([np.mean([math.log(q[b] / q[a]) for a, b in zip(chain, chain[1:])]) for q in plain])
    m, se = _mean_se(per_block)
    assert m >= math.log(0.5 + _rho(32) ** 2) - 5 * se, (m, se)
    # no BN, whole net: ln q(layer3.2)/q(act) ≥ ln 8.67 (comment above)
    bound = (0.5 + _rho(32) ** 2) ** 3
    for size in (16, 8):
        bound *= 0.5 * (0.5 + 2 * _rho(size, 2) * _rho(size)) * (0.5 + _rho(size) ** 2) ** 2
    assert 8.6 < bound < 8.7
    total = np.array([math.log(q["layer3.2"] / q["act"]) for q in plain])
    m, se = _mean_se(total)
    assert m >= math.log(bound) - 5 * se, (m, se)
    # BN: every block adds at most 1 to the mean square of its shortcut
    for b in _BLOCKS:
        m, se = _mean_se(np.array([q[b] - q[b + ".shortcut"] for q in bn]))
        assert m <= 1.0 + 5 * se, (b, m, se)
