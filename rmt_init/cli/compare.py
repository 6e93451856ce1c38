"""``rmt-init compare``: one network configuration → torch Monte Carlo, the theory, the comparison numbers
(:func:`rmt_init.compare`: KS, W₁, moment errors ± standard errors across networks, edge, atoms) and a figure
(:func:`rmt_init.plot.compare`).

Networks: ``depth`` blocks ``Linear(width, width) → φ`` (``rmt_init.montecarlo.network_jacobian_spectrum``),
weights by the ``torch.nn.init`` scheme ``--init`` (with ``--init-arg``), or ``--weights``/``--sigma-w2``;
biases N(0, σ_b²) when ``--sigma-b2`` > 0. Theory: ``jacobian_spectrum`` with the same parameters (N → ∞). For
an activation that is not positively homogeneous the inputs have variance (q* − σ_b²)/σ_w², so the first
layer starts at the mean-field fixed point q* the law assumes (inputs N(0, 1) when q* = 0 or φ is
homogeneous, where the law does not depend on q). Batch norm is not offered: the package has no theory of
the BN spectrum (the main job, ``rmt-init``, measures BN networks against the gradient-growth theory).

The numbers are distances to the N → ∞ law: at finite width they include a finite-N bias (the main job and
``python -m validation`` state tolerances for it); this command reports them without a verdict.
"""
from __future__ import annotations

import argparse
from typing import Any

from ._common import add_network_arguments, add_output_arguments, check_output_path, default_init, fmt, \
    print_json, refuse_figure_options, save_figure

DEFAULT_FIGURE = "rmt_init_compare.png"
DEFAULTS: dict[str, Any] = {
    "depth": 4,
    "width": 128,
    "activation": "relu",
    "init": None,
    "init_arg": [],
    "weights": None,
    "sigma_w2": None,
    "sigma_b2": 0.0,
    "trials": 20,
    "seed": 0,
    "device": "cpu",
    "scale": "auto",
    "out": DEFAULT_FIGURE,
    "no_plot": False,
    "json": False,
}


def add_parser(commands: Any) -> None:
    none = argparse.SUPPRESS
    p = commands.add_parser(
        "compare", help="one network configuration: torch networks' Jacobian spectra against the theory "
        "(KS, moments ± SE, edge, atoms) and a figure",
        description="Sample the input–output Jacobians of freshly initialised torch networks and compare their "
        "squared singular values with jacobian_spectrum (N → ∞): KS, W1, moment errors ± standard errors across "
        "networks, top edge, atoms, and a figure of the theory over the histogram. "
        "Example: rmt-init compare --depth 6 --width 128 --activation tanh --init orthogonal",
    )
    p.add_argument("--depth", type=int, default=none, metavar="L", help=f"layers (default {DEFAULTS['depth']})")
    p.add_argument("--width", type=int, default=none, metavar="N", help=f"units per layer (default {DEFAULTS['width']})")
    add_network_arguments(p, "bias variance σ_b² (default 0: no biases)")
    p.add_argument("--trials", type=int, default=none, help=f"networks sampled (default {DEFAULTS['trials']})")
    p.add_argument("--seed", type=int, default=none, help=f"random seed (default {DEFAULTS['seed']})")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default=none, help="torch device (default cpu)")
    p.add_argument("--scale", choices=("auto", "linear", "log"), default=none,
                   help="figure x-axis (default auto: log for deep laws)")
    add_output_arguments(p, DEFAULT_FIGURE, "print the numbers as one JSON document")
    p.set_defaults(command="compare")


def run(args: argparse.Namespace, given: set[str], status: Any) -> int:
    from ..theory import jacobian_spectrum

    refuse_figure_options(args, given, ("out", "scale"))
    if not args.no_plot:
        check_output_path(args.out)
    init = default_init(args)
    kwargs = dict(args.init_arg)
    law = jacobian_spectrum(args.depth, args.activation, init=init, weights=args.weights, sigma_w2=args.sigma_w2,
                            sigma_b2=args.sigma_b2, **kwargs)
    sw2, q = float(law.sigma_w2[0]), float(law.q_star[0])
    input_variance = 1.0
    if not law.activation.is_homogeneous and q > 0.0:
        input_variance = (q - args.sigma_b2) / sw2
    network: dict[str, Any] = dict(trials=args.trials, seed=args.seed, device=args.device, layer_stats=False,
                                   input_variance=input_variance, progress="auto")
    if args.sigma_b2 > 0.0:
        network.update(bias=True, sigma_b2=args.sigma_b2)
    if init is not None:
        network.update(init=init, init_kwargs=kwargs or None)
    else:
        network.update(init="gaussian", weights=law.ensemble, sigma_w2=sw2)
    from ..compare import compare
    from ..montecarlo import network_jacobian_spectrum

    status(f"sampling {args.trials} torch networks")
    result = network_jacobian_spectrum(args.depth, args.width, args.activation, **network)
    numbers = compare(law, result)
    x = result.squared_singular_values
    record = {
        "job": "compare",
        "network": {"depth": args.depth, "width": args.width, "activation": args.activation, "init": init,
                    "init_kwargs": kwargs, "weights": law.ensemble, "sigma_w2": sw2, "sigma_b2": args.sigma_b2,
                    "input_variance": input_variance, "trials": args.trials, "seed": args.seed},
        "law": law.summary(),
        "comparison": {"ks": numbers.ks, "wasserstein1": numbers.wasserstein1,
                       "moment_errors": numbers.moment_errors, "moment_stderrs": numbers.moment_stderrs,
                       "edge_error": numbers.edge_error, "atom_errors": numbers.atom_errors,
                       "n_samples": numbers.n_samples, "n_trials": numbers.n_trials, "notes": list(numbers.notes)},
        "measured": {"mean": float(x.mean()), "top": float(x.max(axis=1).mean())},
    }
    if not args.json:
        print(f"theory:  {law.description} (N → ∞): mean {fmt(law.mean())}, variance {fmt(law.var())}, "
              f"upper edge {fmt(record['law']['upper_edge'])}, q* {fmt(q)}, χ₁ {fmt(float(law.chi1))}")
        print(f"torch:   {args.trials} networks of width {args.width}: mean λ {fmt(x.mean())}, mean largest λ "
              f"{fmt(x.max(axis=1).mean())}")
        print(f"compare: {numbers}")
        for note in numbers.notes:
            print(f"  note: {note}")
    figure = None
    if not args.no_plot:
        import matplotlib.pyplot as plt

        from .. import plot

        status("drawing the figure")
        fig, ax = plt.subplots(figsize=(5.0, 3.6), layout="constrained")
        plot.compare(law, result, ax=ax, scale=args.scale)
        figure = save_figure(fig, args.out)
    if args.json:
        print_json(record | {"figure": figure})
    elif figure:
        print(f"wrote {figure}")
    return 0
