"""Reference architectures: He et al. (2016) CIFAR ResNets, residual MLPs, the transformer MLP block."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rmt_init.montecarlo.architectures import (
    BasicBlock,
    PreActBlock,
    ResidualMLP,
    TransformerMLPBlock,
    ZeroPadShortcut,
    cifar_resnet,
    resnet20,
    resnet56,
    resnet110,
)


def _n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _expected_params(n: int, w: int = 16, classes: int = 10) -> int:
    """Parameters of the option-A ResNet with BN, counted from He et al. §4.2 (independent of the module code):
    stem 3×3 conv 3→w (+BN: 2w), stage s has 2n convs 3×3 with c_s = w·2^s channels (the first one of stages 2, 3
    takes c_{s−1} inputs) each with a BN (2 c_s), and fc 4w→classes with bias; option A shortcuts have none."""
    total = 9 * 3 * w + 2 * w
    c_prev = w
    for c in (w, 2 * w, 4 * w):
        total += 9 * c_prev * c + (2 * n - 1) * 9 * c * c + 2 * n * 2 * c
        c_prev = c
    return total + 4 * w * classes + classes


@pytest.mark.parametrize("factory,depth,table6",
                         [(resnet20, 20, 0.27e6), (resnet56, 56, 0.85e6), (resnet110, 110, 1.7e6)])
def test_parameter_counts_match_he_et_al_table6(factory, depth, table6):
    model = factory()
    n = (depth - 2) // 6
    assert _n_params(model) == _expected_params(n)
    # Table 6 rounds to 2 significant digits
    assert abs(_n_params(model) - table6) <= 0.005e6 if table6 < 1e6 else abs(_n_params(model) - table6) <= 0.05e6
    assert model.depth == depth


@pytest.mark.parametrize("kwargs", [{}, {"batchnorm": False}, {"residual": False}, {"preactivation": True},
                                    {"shortcut": "B"}, {"preactivation": True, "batchnorm": False}])
@pytest.mark.parametrize("depth", [8, 20])
def test_number_of_weight_layers_is_depth(depth, kwargs):
    model = cifar_resnet(depth, width=4, **kwargs)
    stacked = [m for name, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) and "shortcut" not in name]
    assert len(stacked) == depth
    projections = [m for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and "shortcut" in name]
    assert len(projections) == (2 if kwargs.get("shortcut") == "B" and kwargs.get("residual", True) else 0)


def test_option_b_adds_two_projections():
    # 1×1 convs 16→32 and 32→64 with BN: (512 + 64) + (2048 + 128)
    assert _n_params(resnet20(shortcut="B")) - _n_params(resnet20()) == 512 + 64 + 2048 + 128


@pytest.mark.parametrize("bad", [0, 19, 21, 6, 2, 20.5, "20", True])
def test_bad_depth_names_valid_depths(bad):
    with pytest.raises(ValueError, match="6n \\+ 2|integer"):
        cifar_resnet(bad)


@pytest.mark.parametrize("kwargs", [{"shortcut": "C"}, {"activation": "swish"}, {"width": 0}, {"batchnorm": 1},
                                    {"num_classes": 0}, {"dtype": torch.int64}])
def test_bad_options_raise(kwargs):
    with pytest.raises(ValueError):
        cifar_resnet(20, **kwargs)


def _outputs_by_module(model, x, names):
    seen = {}
    table = dict(model.named_modules())
    hooks = [table[n].register_forward_hook(lambda m, a, o, n=n: seen.__setitem__(n, o.shape)) for n in names]
    try:
        y = model(x)
    finally:
        for h in hooks:
            h.remove()
    return y, seen


@pytest.mark.parametrize("kwargs", [{}, {"preactivation": True}, {"residual": False, "batchnorm": False},
                                    {"shortcut": "B"}])
def test_shapes_and_strides(kwargs):
    model = cifar_resnet(14, width=4, num_classes=7, dtype=torch.float64, **kwargs)
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)
    y, shapes = _outputs_by_module(model, x, ["layer1", "layer2", "layer3", "avgpool"])
    assert y.shape == (2, 7) and y.dtype == torch.float64
    assert shapes["layer1"] == (2, 4, 32, 32)
    assert shapes["layer2"] == (2, 8, 16, 16)
    assert shapes["layer3"] == (2, 16, 8, 8)
    assert shapes["avgpool"] == (2, 16, 1, 1)


def test_names_are_deterministic():
    names = [n for n, _ in resnet20().named_children()]
    assert names == ["conv1", "bn1", "act", "layer1", "layer2", "layer3", "avgpool", "flatten", "fc"]
    pre = [n for n, _ in resnet20(preactivation=True).named_children()]
    assert pre == ["conv1", "layer1", "layer2", "layer3", "bn_final", "act_final", "avgpool", "flatten", "fc"]
    assert "layer3.2.conv2" in dict(resnet20().named_modules())


def test_batchnorm_false_has_no_batchnorm_and_conv_biases():
    model = resnet20(batchnorm=False)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert all(m.bias is None for m in resnet20().modules() if isinstance(m, nn.Conv2d))
    assert all(m.bias is None for m in resnet20(batchnorm=False, conv_bias=False).modules() if isinstance(m, nn.Conv2d))


def test_plain_net_has_no_skip_and_differs_from_residual_with_same_weights():
    torch.manual_seed(0)
    res = cifar_resnet(8, width=4, dtype=torch.float64).eval()
    plain = cifar_resnet(8, width=4, residual=False, dtype=torch.float64).eval()
    plain.load_state_dict(res.state_dict())  # option A shortcuts have no parameters: same state
    assert all(b.shortcut is None for b in plain.modules() if isinstance(b, BasicBlock))
    x = torch.randn(3, 3, 32, 32, dtype=torch.float64)
    assert not torch.allclose(res(x), plain(x))
    # block level: residual block = φ(branch + shortcut), plain block = φ(branch), the same branch
    block_r, block_p = res.layer2[0], plain.layer2[0]
    h = torch.randn(3, 4, 32, 32, dtype=torch.float64)
    branch = block_r.bn2(block_r.conv2(block_r.act1(block_r.bn1(block_r.conv1(h)))))
    shortcut = torch.cat([h[:, :, ::2, ::2], torch.zeros(3, 4, 16, 16, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(block_r(h), torch.relu(branch + shortcut), rtol=0, atol=1e-12)
    torch.testing.assert_close(block_p(h), torch.relu(branch), rtol=0, atol=1e-12)


def _call_order(block, x):
    order = []
    hooks = [m.register_forward_hook(lambda m, a, o, n=n: order.append(n)) for n, m in block.named_children()]
    try:
        block(x)
    finally:
        for h in hooks:
            h.remove()
    return order


def test_preactivation_ordering():
    x = torch.randn(2, 4, 8, 8)
    pre = cifar_resnet(8, width=4, preactivation=True).layer1[0]
    post = cifar_resnet(8, width=4).layer1[0]
    assert isinstance(pre, PreActBlock) and isinstance(post, BasicBlock)
    # He et al. 2016b Fig. 4e: BN → φ → conv → BN → φ → conv, then the addition (no φ after it)
    assert _call_order(pre, x) == ["bn1", "act1", "conv1", "bn2", "act2", "conv2", "shortcut"]
    assert _call_order(post, x) == ["conv1", "bn1", "act1", "conv2", "bn2", "shortcut", "act2"]
    pre.eval()
    manual = pre.conv2(torch.relu(pre.bn2(pre.conv1(torch.relu(pre.bn1(x)))))) + x
    torch.testing.assert_close(pre(x), manual)
    assert (pre(x) < 0).any()  # no activation after the addition


def test_zero_pad_shortcut():
    x = torch.randn(2, 3, 6, 6)
    y = ZeroPadShortcut(3, 5, 2)(x)
    assert y.shape == (2, 5, 3, 3)
    torch.testing.assert_close(y[:, :3], x[:, :, ::2, ::2])
    assert (y[:, 3:] == 0).all()


def test_residual_mlp_matches_recursion():
    torch.manual_seed(1)
    mlp = ResidualMLP(6, 3, activation="tanh", alpha=[0.5, 1.0, 2.0], dtype=torch.float64)
    assert [n for n, _ in mlp.named_modules() if n.count(".") == 1] == ["blocks.0", "blocks.1", "blocks.2"]
    x = torch.randn(4, 6, dtype=torch.float64)
    h = x
    for blk, a in zip(mlp.blocks, (0.5, 1.0, 2.0)):
        h = h + a * torch.tanh(h @ blk.linear.weight.T + blk.linear.bias)
    torch.testing.assert_close(mlp(x), h, rtol=0, atol=1e-13)


def test_residual_mlp_batchnorm_at_end_of_branch():
    torch.manual_seed(2)
    mlp = ResidualMLP(5, 2, alpha=0.7, batchnorm=True, dtype=torch.float64)
    x = torch.randn(16, 5, dtype=torch.float64)
    blk = mlp.blocks[0]
    branch = blk.bn(torch.relu(blk.linear(x)))  # BN is the last operation of the branch
    torch.testing.assert_close(blk(x), x + 0.7 * branch)
    # train mode: each feature of the branch has batch mean 0 and batch variance v/(v + eps)
    v = torch.relu(blk.linear(x)).var(0, unbiased=False)
    torch.testing.assert_close(branch.mean(0), torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(branch.var(0, unbiased=False), v / (v + blk.bn.eps), rtol=1e-10, atol=0)


@pytest.mark.parametrize("kwargs", [{"alpha": [1.0, 2.0]}, {"alpha": "one"}, {"alpha": float("nan")},
                                    {"batchnorm": "yes"}])
def test_residual_mlp_bad_input(kwargs):
    with pytest.raises(ValueError):
        ResidualMLP(4, 3, **kwargs)


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_transformer_mlp_block(norm):
    torch.manual_seed(3)
    blk = TransformerMLPBlock(8, norm=norm, dtype=torch.float64)
    assert blk.fc1.out_features == 32
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mlp = lambda z: blk.fc2(torch.nn.functional.gelu(blk.fc1(z)))  # noqa: E731
    ln = lambda z: torch.nn.functional.layer_norm(z, (8,), blk.norm.weight, blk.norm.bias, blk.norm.eps)  # noqa: E731
    expected = x + mlp(ln(x)) if norm == "pre" else ln(x + mlp(x))
    torch.testing.assert_close(blk(x), expected, rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="pre"):
        TransformerMLPBlock(8, norm="middle")
