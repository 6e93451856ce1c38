"""Mean field of the CIFAR ResNets' input-Jacobian m1 (rmt_init.theory.cifar_resnet, derivations §10.7)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats

from rmt_init.theory import MASKS, cifar_resnet_mean_field


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"depth": 9}, r"6n \+ 2"),
        ({"depth": 2}, "depth"),
        ({"depth": 20.5}, "depth"),
        ({"batchnorm": "yes"}, "batchnorm"),
        ({"image_size": 10}, "multiple of 4"),
        ({"image_size": 0}, "image_size"),
        ({"masks": "gradient"}, "joint"),
        ({"grid": 4}, "grid"),
        ({"tail": 1.0}, "tail"),
        ({"input_variance": -1.0}, "input_variance"),
        ({"input_variance": float("nan")}, "input_variance"),
        ({"stem_variance": np.ones((3, 3))}, "stem_variance"),
        ({"stem_variance": -np.ones((8, 8))}, "stem_variance"),
    ],
)
def test_bad_input_raises(kwargs: dict, word: str) -> None:
    args = {"depth": 8, "batchnorm": False, "image_size": 8} | kwargs
    depth = args.pop("depth")
    with pytest.raises(ValueError, match=word):
        cifar_resnet_mean_field(depth, **args)


def test_masks_vocabulary() -> None:
    assert MASKS == ("joint", "independent")


# ------------------------------------------------------------------ first block against 1-D quadrature
def _relu_sq_mean(mu: np.ndarray | float, var: float) -> np.ndarray:
    """E relu(μ + σZ)² = (μ² + σ²) Φ(μ/σ) + μ σ φ(μ/σ)."""
    s = math.sqrt(var)
    return (mu**2 + var) * stats.norm.cdf(mu / s) + mu * s * stats.norm.pdf(mu / s)


def test_first_block_interior_matches_quadrature() -> None:
    """At positions ≥ 3 taps from the border every variance is the interior one: stem h ~ N(0, 2) (σ_in = 1,
    (2/27)·27), Q_0 = 1, V_1 = 2, V_2 = 2; tangent G_0 = 2 with E[t_0² | h] = 2 + (2/27)(h²/2 − 1) on h > 0,
    T_0 = 1, G_1 = 2, branch tangent B_2 = 2. So, with x_0 = relu(h) and F ~ N(0, 2) independent,

        q_1 = ½ E relu(F)² + ∫_0^∞ φ_2(h) E relu(h + F)² dh,
        T_1 = ∫_0^∞ φ_2(h) (2 + (2/27)(h²/2 − 1)) Φ(h/√2) dh + B_2 P(x_0 + F > 0),

    by scipy quadrature — nothing of the grid machinery. The grid's error is O(h²) (cell midpoints), so the
    difference between grid 256 and 512 is ≈ 3× the error at 512: that difference is the tolerance."""
    pdf = stats.norm(scale=math.sqrt(2.0)).pdf
    cdf = lambda h: stats.norm.cdf(h / math.sqrt(2.0))  # noqa: E731
    q1 = 0.5 * 1.0 + integrate.quad(lambda h: pdf(h) * _relu_sq_mean(h, 2.0), 0, np.inf, epsabs=1e-13)[0]
    t_stem = integrate.quad(lambda h: pdf(h) * (2 + (2 / 27) * (h * h / 2 - 1)) * cdf(h), 0, np.inf, epsabs=1e-13)[0]
    p_active = 0.25 + integrate.quad(lambda h: pdf(h) * cdf(h), 0, np.inf, epsabs=1e-13)[0]
    t1 = t_stem + 2.0 * p_active
    res = {g: cifar_resnet_mean_field(8, batchnorm=False, image_size=16, grid=g) for g in (256, 512)}
    for name, ref, maps in (("q", q1, "ln_q_maps"), ("t", t1, "ln_t_maps")):
        fine = getattr(res[512], maps)[1][3:13, 3:13]
        coarse = getattr(res[256], maps)[1][3:13, 3:13]
        assert np.ptp(fine) < 1e-12, name  # the interior is uniform
        tol = abs(float(coarse[0, 0] - fine[0, 0])) + 1e-9
        assert abs(float(fine[0, 0]) - math.log(ref)) <= tol, (name, fine[0, 0], math.log(ref), tol)
    # the stem: E x_0² = V_0/2 and E t_0² = G_0/2 at every position (half of the symmetric law); on cell
    # midpoints E x² is low by ≈ h²/12 per unit mass (Sheppard), h = 12σ/512: ≈ 1e-4 relative
    counts = np.full((16, 16), 9.0)
    counts[[0, -1], :] = 6
    counts[:, [0, -1]] = 6
    counts[0, 0] = counts[0, -1] = counts[-1, 0] = counts[-1, -1] = 4
    assert np.allclose(res[512].ln_q_maps[0], np.log(counts / 9.0), atol=3e-4)
    assert np.allclose(res[512].ln_t_maps[0], np.log(counts / 9.0), atol=3e-4)


# ------------------------------------------------------------------ discretisation and exact invariances
@pytest.mark.parametrize("batchnorm", [False, True])
def test_grid_convergence_is_second_order(batchnorm: bool) -> None:
    """Cell midpoints: the error is O(h²), so successive differences at grid 64, 128, 256 shrink ≈ 4×."""
    v = [cifar_resnet_mean_field(20, batchnorm=batchnorm, image_size=8, grid=g).ln_m1_final for g in (64, 128, 256)]
    ratio = (v[0] - v[1]) / (v[1] - v[2])
    assert 2.5 < ratio < 6.5, (v, ratio)
    assert abs(v[1] - v[2]) < 0.05


def test_no_bn_is_homogeneous_and_conditions_on_the_stem() -> None:
    """Without BN the net is positively homogeneous: ln m1 does not depend on the input scale and ln q shifts
    by ln σ_in²; the stem map enters only through its shape (a constant factor changes nothing in m1)."""
    base = cifar_resnet_mean_field(14, batchnorm=False, image_size=8)
    scaled = cifar_resnet_mean_field(14, batchnorm=False, image_size=8, input_variance=7.0)
    assert np.allclose(scaled.ln_m1, base.ln_m1, atol=1e-9)
    assert np.allclose(scaled.ln_q, base.ln_q + math.log(7.0), atol=1e-9)
    counts = np.full((8, 8), 9.0)
    counts[[0, -1], :] = 6
    counts[:, [0, -1]] = 6
    counts[0, 0] = counts[0, -1] = counts[-1, 0] = counts[-1, -1] = 4
    given = cifar_resnet_mean_field(14, batchnorm=False, image_size=8, stem_variance=5.0 * (2 / 9) * counts)
    assert np.allclose(given.ln_m1, base.ln_m1, atol=1e-9)
    assert base.map_size.tolist() == [8] * 3 + [4] * 2 + [2] * 2
    assert base.lost_mass < 1e-10


def test_mask_correlation_raises_m1_over_gradient_independence() -> None:
    """The identity path keeps a unit's masks correlated (a large stream value stays active): the joint chain
    gives a larger m1 than the gradient-independence product, block by block (stem equal)."""
    for bn in (False, True):
        joint = cifar_resnet_mean_field(20, batchnorm=bn, image_size=8)
        indep = cifar_resnet_mean_field(20, batchnorm=bn, image_size=8, masks="independent")
        assert joint.ln_m1[0] == pytest.approx(indep.ln_m1[0], abs=1e-4)  # the stem term averages to 0
        assert np.all(np.diff(joint.ln_m1 - indep.ln_m1) > -1e-9)
        assert joint.ln_m1_final - indep.ln_m1_final > 0.1


def test_bn_stream_grows_additively() -> None:
    """With BN each branch output has unit variance averaged over positions, so E x² grows by at most 1 per
    block (relu of a sum with a non-negative stream; De & Smith 2020) and by more than 1/2 (½ E(x+F)² ≤ E relu²)."""
    r = cifar_resnet_mean_field(20, batchnorm=True, image_size=16)
    q = np.exp(r.ln_q)
    stride = np.array([i in (4, 7) for i in range(1, 10)])  # the downsampling blocks halve the stream first
    inc = q[1:] - np.where(stride, q[:-1] / 2, q[:-1])
    assert np.all(inc <= 1.0 + 1e-2) and np.all(inc > 0.3), inc


# ------------------------------------------------------------------ Monte Carlo against the engine
def test_matches_engine_monte_carlo_no_bn() -> None:
    """ResNet-8 without BN, 8×8 inputs, width 64, batch 2, 24 networks × 4 Rademacher probes: the mean over
    networks of ln(‖J v‖²/n_out) (Hutchinson, unbiased for ln of... per network it is the log of an unbiased
    m1 estimate; the Jensen gap ln E − E ln was measured ≤ 0.006 at this size) against the prediction.
    Tolerance 4 SE + a finite-width bias bound 0.05, measured by widening at this size (MC − theory: −0.09 ± 0.04
    at width 16, −0.02 ± 0.02 at 32, −0.03 ± 0.02 at 64, +0.007 ± 0.012 at 128). Effect: the gradient-
    independence prediction is 0.21 lower."""
    torch = pytest.importorskip("torch")
    from rmt_init.montecarlo import cifar_resnet, initialize_

    torch.set_num_threads(1)
    vals = []
    for seed in range(24):
        gen = torch.Generator().manual_seed(4242 + seed)
        model = cifar_resnet(8, batchnorm=False, width=64, dtype=torch.float64)
        initialize_(model, "kaiming_normal_", nonlinearity="relu", generator=gen)
        for p in model.parameters():
            p.requires_grad_(False)
        x = torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64)

        def trunk(z):
            return model.layer3(model.layer2(model.layer1(model.act(model.bn1(model.conv1(z))))))

        acc = 0.0
        for _ in range(4):
            v = (torch.randint(0, 2, x.shape, generator=gen) * 2 - 1).to(torch.float64)
            _, jv = torch.func.jvp(trunk, (x,), (v,))
            acc += float((jv**2).mean()) / 4
        vals.append(math.log(acc))
    vals = np.asarray(vals)
    se = vals.std(ddof=1) / math.sqrt(vals.size)
    pred = cifar_resnet_mean_field(8, batchnorm=False, image_size=8)
    indep = cifar_resnet_mean_field(8, batchnorm=False, image_size=8, masks="independent")
    tol = 4 * se + 0.05
    assert tol < pred.ln_m1_final - indep.ln_m1_final
    assert abs(vals.mean() - pred.ln_m1_final) <= tol, (vals.mean(), se, pred.ln_m1_final)
