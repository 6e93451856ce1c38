"""Tests of rmt_init.compare and rmt_init.plot.compare.

Samples drawn from the law itself must look like it: for n i.i.d. samples the KS distance exceeds
1.63/√n with probability 1% (Kolmogorov distribution) and the probes add at most 1/probes; moment
errors stay within 5 standard errors; an atom's sample fraction within 5·√(p(1 − p)/n). A distorted
sample must be flagged.
"""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from rmt_init import fuss_catalan, jacobian_spectrum, marchenko_pastur
from rmt_init.compare import compare


@pytest.mark.parametrize("make", [lambda: marchenko_pastur(0.5), lambda: fuss_catalan(3), lambda: jacobian_spectrum(3, "relu")])
def test_samples_from_the_law_itself_agree(make) -> None:
    law = make()
    n, probes = 20000, 2000
    samples = law.sample(n, rng=3).reshape(10, -1)  # ten "trials" of i.i.d. draws
    c = compare(law, samples, probes=probes)
    assert c.ks < 1.63 / math.sqrt(n) + 1.0 / probes
    for k in (1, 2):
        assert abs(c.moment_errors[k]) < 5 * c.moment_stderrs[k] + 1e-12
    for (loc, mass), error in zip(law.atoms, c.atom_errors.values()):
        assert abs(error) < 5 * math.sqrt(mass * (1 - mass) / n)
    assert c.edge_error <= 1e-9  # samples never exceed the upper edge
    assert "KS" in str(c) and f"{n} samples" in str(c)


def test_distorted_samples_are_flagged() -> None:
    law = fuss_catalan(2)
    samples = 1.5 * law.sample(20000, rng=0)
    c = compare(law, samples)
    assert c.ks > 5 * 1.63 / math.sqrt(20000) and c.moment_errors[1] > 0.4 and c.edge_error > 0.3


def test_singular_value_kind_and_near_zero_samples_snap_to_the_atom() -> None:
    law = jacobian_spectrum(2, "relu")
    samples = law.sample(8000, rng=5)
    noisy = np.where(samples == 0.0, 1e-17, samples)  # floating-point "zeros" of a real spectrum
    squared = compare(law, noisy)
    singular = compare(law, noisy, kind="singular")
    assert squared.ks == pytest.approx(singular.ks, abs=1e-12)  # KS is invariant under σ = √λ
    assert list(singular.atom_errors) == [0.0]
    assert abs(squared.atom_errors[0.0]) < 5 * math.sqrt(0.25 / 8000)
    assert singular.moment_errors[2] == pytest.approx(squared.moment_errors[1], rel=1e-6)


def test_against_a_monte_carlo_network_result() -> None:
    """Linear Gaussian network, N = 200, L = 3, 8 trials, against Fuss–Catalan(3): finite-N corrections to
    the distribution function are O(1/N) in the bulk; KS < 0.03 leaves a margin of 6×."""
    from rmt_init.montecarlo import network_jacobian_spectrum

    result = network_jacobian_spectrum(3, 200, "linear", "gaussian", sigma_w2=1.0, trials=8, seed=1)
    c = compare(fuss_catalan(3), result)
    assert c.n_trials == 8 and c.n_samples == 1600
    assert c.ks < 0.03
    assert abs(c.moment_errors[1]) < 5 * c.moment_stderrs[1]


def test_plot_compare_draws_theory_histogram_and_atoms() -> None:
    import matplotlib.pyplot as plt

    from rmt_init import plot

    law = jacobian_spectrum(3, "relu")
    samples = law.sample(4000, rng=2).reshape(4, -1)
    ax = plot.compare(law, samples)
    texts = [t.get_text() for t in ax.get_legend().get_texts()] + [t.get_text() for t in ax.texts]
    assert any(t.startswith("KS") for t in texts) and any("atom at 0" in t for t in texts)
    assert len(ax.patches) > 10 and len(ax.lines) >= 1
    heights = np.array([p.get_height() for p in ax.patches])
    widths = np.array([p.get_width() for p in ax.patches])
    assert np.sum(heights * widths) == pytest.approx(0.5, abs=0.03)  # the continuous half of the mass
    plt.close(ax.figure)


@pytest.mark.parametrize(
    "samples,kwargs,match",
    [
        (np.array([]), {}, "non-empty"),
        (np.array([1.0, np.nan]), {}, "NaN"),
        (np.array([-1.0, 1.0]), {}, ">= 0"),
        (np.array([1.0, 2.0]), {"kind": "eigen"}, "eigen"),
        (np.array([1.0, 2.0]), {"moments": 0}, "moments"),
    ],
)
def test_bad_input(samples, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        compare(marchenko_pastur(1.0), samples, **kwargs)


@pytest.mark.parametrize(
    "activation, init, kwargs",
    [("tanh", "kaiming_normal", {}), ("tanh", "kaiming_uniform", {"mode": "fan_out"}), ("relu", "kaiming_normal", {}),
     ("leaky_relu", "kaiming_uniform", {}), ("erf", "kaiming_normal", {}), ("selu", "kaiming_normal", {}),
     ("tanh", "kaiming_normal", {"nonlinearity": "leaky_relu"}), ("tanh", "xavier_normal", {"gain": 1.3})],
)
def test_theory_and_networks_read_an_init_name_the_same_way(activation, init, kwargs) -> None:
    """``init="kaiming_*"`` matches torch's ``nonlinearity`` to the activation on both sides (tanh → gain 5/3,
    σ_w² = 25/9; erf → torch's default, 2), so a law and a network built from the same arguments have the
    same σ_w² — the network's is read from the weights torch.nn.init actually drew (config)."""
    from rmt_init.montecarlo import network_jacobian_spectrum

    law = jacobian_spectrum(2, activation, init=init, **kwargs)
    res = network_jacobian_spectrum(2, 40, activation, init, init_kwargs=kwargs, trials=1, device="cpu",
                                    layer_stats=False)
    (drawn,) = set(res.config["sigma_w2_effective"])
    assert all(v == pytest.approx(drawn, rel=1e-12) for v in law.sigma_w2)
    if activation == "tanh" and init == "kaiming_normal" and not kwargs:
        assert law.sigma_w2[0] == pytest.approx(25 / 9, rel=1e-14)
