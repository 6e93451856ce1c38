"""Timings of residual-network Jacobian laws whose blocks all differ (issue 13): the BN-ResNet laws (α_l from
bn_residual_alphas; relu, linear, tanh) and linear blocks with α_l = 1/√l, old path (one block solved at a time,
``ResidualBlockS.stacked = False``) against the new one (blocks sharing their law of D² solved as one stacked
array), in the same run, on fresh laws: seconds for the support, the pdf at a few points and (``--tables``) the
cdf there (the cdf tables), the ratio old/new and the largest relative difference of the values.

    PYTHONPATH=. python benchmarks/bench_residual_many_blocks.py [--depths 9 27] [--kinds relu linear tanh inv_sqrt]
        [--tables] [--no-old]

(from the repository root; PYTHONPATH=. so that this checkout's rmt_init is timed).

Smooth activations (``--smooth-depths 100 1000 --kinds none [--old-points 3] [--old-tables] [--full]``): tanh at
constant α = 0.05, every block with its own law of D² (q_l grows along the stream), blocks stacked with their Gauss
rules padded side by side (``ResidualBlockS.stack_laws``) against one block at a time; see :func:`smooth` for the
measured numbers. ``--full`` runs every stage both ways (the old build and support too, see
:func:`smooth_pipeline`); measured at depth 100, 100 points, one core (load ~3 on 2 cores): build 4.1 → 4.0 s,
support 6.8 → 3.6 s (1.9x), pdf 27.2 → 1.7 s (16.4x), cdf tables 21.9 → 0.9 s (25.3x), total 60.0 → 10.2 s
(5.9x); support edges identical, pdf and cdf equal to 2.2e−13 and 8.2e−13 relative. Measured (one core shared
with other jobs, so the ratio is the number to read): BN-ResNet relu, 9 blocks: support 6.56 → 2.62 s (2.5x),
pdf at 7 points 15.4 → 3.5 s (4.4x); linear, 9 blocks: support 6.27 → 2.18 s (2.9x), pdf 115 → 71 s (1.6x: the
points next to the hard edge at 0 spend their time in FreeProductLaw's refined continuation steps, per point
and not per block); relu, 27 blocks: support 7.30 → 1.43 s (5.1x), pdf 18.6 → 1.9 s (9.7x); values identical
(relative difference 0). The cdf tables (``--tables``) at 9 blocks took many minutes on both paths (the hard edge
at 0 of these laws: FreeProductLaw._hard_edge's panels, ~96 % in refined η-steps, the blocks' 1 + ψ unresolved
below ~1e−16 in the unknowns (κ, e); a run of the α = 1.5 block's cdf was stopped after 12 min). With the block
solved in (κ, p = 1 + ψ), warm starts predicted along ln u, and no panel [0, x₁] in the generic tables
(docs/derivations.md §8.7(f)), ``--tables --no-old`` measured on a core shared with other jobs: relu support 0.87 s,
pdf 0.79 s, cdf 15.7 s; linear 0.56 s, 0.78 s, 12.2 s (the "old" path now only switches the stacking off: both
have the new solver).
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from rmt_init.theory import ResidualBlockS
from rmt_init.theory.jacobian import jacobian_spectrum
from rmt_init.theory.residual_bn import bn_residual_alphas

SIGMA_W2 = {"relu": 2.0, "linear": 1.0, "tanh": 1.0}


def build(depth: int, kind: str):
    if kind in SIGMA_W2:  # the BN-ResNet law (De & Smith 2020): docs/derivations.md §10
        sw2 = SIGMA_W2[kind]
        alphas = bn_residual_alphas(depth, kind, q0=1.0, sigma_w2=sw2)
        return jacobian_spectrum(depth, kind, residual=alphas, weights="gaussian", sigma_w2=sw2, sigma_b2=0)
    alphas = [1.0 / np.sqrt(l) for l in range(1, depth + 1)]
    return jacobian_spectrum(depth, "linear", residual=alphas, weights="gaussian", sigma_w2=1.0, sigma_b2=0)  # inv_sqrt


def measure(depth: int, kind: str, stacked: bool, tables: bool, x: np.ndarray | None = None):
    """(seconds per stage, values) on a fresh law, with the block solver's stacking switched as asked."""
    previous = ResidualBlockS.stacked
    ResidualBlockS.stacked = stacked
    try:
        law = build(depth, kind)
        times, values = {}, {}
        t0 = time.perf_counter()
        values["support"] = np.array(law.support)
        times["support"] = time.perf_counter() - t0
        if x is None:
            x = np.array([1e-6, 1e-3, 0.05, 0.3, 1.0, 3.0, 10.0, 30.0]) * law.mean()
            x = x[x < values["support"][1]]
        t0 = time.perf_counter()
        values["pdf"] = law.pdf(x)
        times["pdf"] = time.perf_counter() - t0
        if tables:
            t0 = time.perf_counter()
            values["cdf"] = law.cdf(x)
            times["cdf"] = time.perf_counter() - t0
        return times, values, x
    finally:
        ResidualBlockS.stacked = previous


def smooth_pipeline(depth: int, activation: str, alpha: float, points: int, old: bool) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(seconds per stage, values) of build, support, pdf at ``points`` midpoints of the support and cdf tables on a
    fresh law; ``old``: everything as before issue 13's smooth-block work — blocks one at a time
    (``ResidualBlockS.stack_laws = False``), each block's upper edge on its whole grid (``skip_cut = False``) and
    product_edges' x-grid in one piece (``_EDGE_CHUNK = _EDGE_GRID``)."""
    from rmt_init.theory import _residual_edges as residual

    saved = (ResidualBlockS.stack_laws, ResidualBlockS.skip_cut, residual._EDGE_CHUNK)
    try:
        if old:
            ResidualBlockS.stack_laws, ResidualBlockS.skip_cut, residual._EDGE_CHUNK = False, False, residual._EDGE_GRID
        times: dict[str, float] = {}
        values: dict[str, np.ndarray] = {}
        t0 = time.perf_counter()
        law = jacobian_spectrum(depth, activation, residual=alpha)
        times["build"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        values["support"] = np.array(law.support)
        times["support"] = time.perf_counter() - t0
        a, b = values["support"]
        x = a + (b - a) * (np.arange(1, points + 1) - 0.5) / points
        t0 = time.perf_counter()
        values["pdf"] = law.pdf(x)
        times["pdf"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        values["cdf"] = law.cdf(x)
        times["cdf tables"] = time.perf_counter() - t0
        return times, values
    finally:
        ResidualBlockS.stack_laws, ResidualBlockS.skip_cut, residual._EDGE_CHUNK = saved


def smooth_full(depth: int, activation: str, alpha: float, points: int) -> None:
    """The whole pipeline new against old (:func:`smooth_pipeline`) in the same run: seconds per stage, old/new, and
    the largest relative difference of the values (support edges, pdf and cdf at the points).

    Measured: see the module docstring."""
    new_t, new_v = smooth_pipeline(depth, activation, alpha, points, False)
    old_t, old_v = smooth_pipeline(depth, activation, alpha, points, True)
    total_new, total_old = sum(new_t.values()), sum(old_t.values())
    print(f"{activation} α={alpha:g} L={depth}, {points} points\n  new: " + "  ".join(f"{k} {v:6.1f} s" for k, v in new_t.items())
          + f"  total {total_new:6.1f} s\n  old: " + "  ".join(f"{k} {v:6.1f} s" for k, v in old_t.items())
          + f"  total {total_old:6.1f} s\n  old/new: " + "  ".join(f"{k} {old_t[k] / new_t[k]:5.1f}x" for k in new_t)
          + f"  total {total_old / total_new:5.1f}x\n  max relative difference: "
          + "  ".join(f"{k} {float(np.max(np.abs(new_v[k] - old_v[k]) / np.abs(old_v[k]))):.1e}" for k in new_v), flush=True)


def smooth(depth: int, activation: str, alpha: float, points: int, old_points: int, old_tables: bool) -> None:
    """A residual law of a smooth activation at constant α (every block its own law of D²: q_l grows along the
    stream): seconds for the build, the support, the pdf at ``points`` points and the cdf tables on the new path
    (``ResidualBlockS.stack_laws``: the blocks' Gauss rules padded side by side, one stacked solve), then the old
    path (one block at a time) on a fresh law with the same edges (the support does not use the block solver)
    at ``old_points`` of those points (its time per point against the new path's, which is the ratio printed;
    the free-product solver's work grows slower than linearly in the points, so the ratio understates the gain
    for the same number of points) and, with ``old_tables``, its cdf tables too; the largest relative difference
    of the values.

    Measured (tanh, α = 0.05, one core shared with 4–6 other jobs, so the ratios are the numbers to read):
    depth 100: build 9.3 s, support 18.0 s, pdf at 100 points 4.9 s (0.049 s/point; old 3.52 s/point at 10 of
    them: 71x), cdf tables 2.8 s (old 48.8 s: 17x), mass − 1 = −1.3e−14, pdf old/new ≤ 1.1e−12 relative;
    depth 1000: build 186 s, support 319 s, pdf at 100 points 22.8 s (0.23 s/point; old 262 s/point at 2 of them:
    1150x), cdf tables 36 s (65 density points, mass − 1 = −9.6e−14; old: not run, ~65 × 262 s), pdf old/new
    2.4e−11 relative at 0.5 % of the width from the edges — the free-product solver's own spread there: the new
    path at one point alone and in the batch of 100 differs by up to 3.0e−11 at depth 1000 (7e−13 at depth 100).
    With the upper edge of a block and ``product_edges`` no longer evaluating the curves next to the cut of the
    laws of D² (bit-identical results), depth 1000 (``--no-old``, load ~5 on 2 cores): build 124 s, support 100 s
    (from 319 s), pdf at 100 points 15.7 s, cdf tables 17.2 s, mass − 1 = −8.9e−14. The build is ~80 % the
    blocks' Gauss rules (``_smooth_law``: three Lanczos runs per law), not stacked.

    Large q (``--smooth gelu`` / ``selu`` / ``sigmoid --smooth-depths 1000 --kinds none --points 40 --old-points 0``,
    α = 0.05; docs/derivations.md §3.5): along the stream q_l reaches 2.3e16 (gelu), 4.9e10 (selu), 625 (sigmoid).
    Before, gelu's build refused (a law of D² needing more than 10⁶ panels of half its strip, ~1/√q; without the
    guard 3.6e9 panels, killed for memory) and selu did not finish in 700 s; with the tails of d = φ'(√q z)² where
    it is constant in float64 made atoms (``gaussian_image.constant_tails``: 71 panels for gelu, 450 for selu at any
    q), measured with 2–4 other jobs on the 2 cores (load 5–11, so ~0.3 of a core each): gelu build 840 s, support
    (0.031221, 31.8602) 336 s, pdf at 40 points 31 s (0.78 s/point, no NaN, min 5.1e−4), cdf tables 59 s (N = 64,
    mass − 1 = −3.7e−14); selu build 624 s, support (0.012751, 77.6815) 302 s, pdf 70 s (1.75 s/point, no NaN),
    cdf tables 76 s (mass − 1 = −4.1e−14). Gelu again with the composite rule's per-panel sets built on first use
    (they had held 5 MB a law), load 1–5: build 333 s, support 143 s, pdf 18.7 s (0.47 s/point), cdf tables 26 s,
    the same values (total 521 s), and at load ~1: build 158 s, support 140 s, pdf 18.4 s, cdf tables 27 s (total
    344 s); selu again at load ~1: build 99 s, support 68 s, pdf 18.9 s (0.47 s/point), cdf
    tables 26 s (total 212 s, the same values). Erf (q ≤ 2.4, unchanged path), load ~8: build 315 s, support 212 s, pdf 45 s,
    cdf tables 58 s, mass − 1 = −6.0e−14; tanh: above. The build is the ~1000 laws' Gauss rules (gelu, selu: 0.3–0.5 s each
    alone, ~0.2 s of it the composite rule of log d over the window's log-range of ~700, 160–180 panels). Where
    selu's time went before: not its atom at λ² (φ' jumps at 0; added in closed form), but the blocks' quadrature
    next to the cut of the law of D² (each block's upper edge and the edges of the product are found there), on
    36√q·10 nodes: one block at q = 1e8 took 26 s for 64 points next to the cut on 1.15e6 nodes, 0.13 s on the
    window's 4500 (its Gauss rules 0.4 → 1.2 s: the whole piece's were coarser than its strip). Sigmoid (q ≤ 625:
    no window, unchanged path), same load: build 138 s, support (0.648059, 1.542846) 257 s, pdf at 40 points 61 s
    (no NaN), cdf tables 54 s (mass − 1 = −2.0e−13)."""
    previous = ResidualBlockS.stack_laws
    try:
        ResidualBlockS.stack_laws = True
        t0 = time.perf_counter()
        law = jacobian_spectrum(depth, activation, residual=alpha)
        t1 = time.perf_counter()
        a, b = law.support
        t2 = time.perf_counter()
        x = a + (b - a) * (np.arange(1, points + 1) - 0.5) / points
        new_pdf = law.pdf(x)
        t3 = time.perf_counter()
        tables = law._soft_tables
        mass = sum(t.mass for t in tables) if tables else float(law.cdf(np.array([b]))[0])
        t4 = time.perf_counter()
        print(f"{activation} α={alpha:g} L={depth}  new: build {t1 - t0:6.1f} s  support {t2 - t1:6.1f} s  pdf at {points} points "
              f"{t3 - t2:6.1f} s ({(t3 - t2) / points:.3f} s/point)  cdf tables {t4 - t3:6.1f} s  total mass − 1 = {mass - 1:.1e}  "
              f"NaN in pdf: {int(np.isnan(new_pdf).sum())}", flush=True)
        if not old_points:
            return
        ResidualBlockS.stack_laws = False
        old_law = jacobian_spectrum(depth, activation, residual=alpha)
        old_law.__dict__["_product_edges"] = law._product_edges
        pick = np.linspace(0, points - 1, old_points).round().astype(int)
        t5 = time.perf_counter()
        old_pdf = old_law.pdf(x[pick])
        t6 = time.perf_counter()
        new_per_point, old_per_point = (t3 - t2) / points, (t6 - t5) / old_points
        diff = float(np.max(np.abs(new_pdf[pick] - old_pdf) / np.abs(old_pdf)))
        line = (f"{'':20s}old: pdf at {old_points} points {t6 - t5:6.1f} s ({old_per_point:.3f} s/point)  old/new per point "
                f"{old_per_point / new_per_point:5.1f}x  max relative difference of the pdf {diff:.1e}")
        if old_tables:
            old_tabs = old_law._soft_tables
            t7 = time.perf_counter()
            old_mass = sum(t.mass for t in old_tabs)
            line += f"\n{'':20s}old: cdf tables {t7 - t6:6.1f} s (old/new {(t7 - t6) / (t4 - t3):5.1f}x), mass − 1 = {old_mass - 1:.1e}"
        print(line, flush=True)
    finally:
        ResidualBlockS.stack_laws = previous


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", type=int, nargs="+", default=[9, 27])
    parser.add_argument("--kinds", nargs="+", default=["relu", "linear"])
    parser.add_argument("--tables", action="store_true", help="also time the cdf (the cdf tables; old path: minutes)")
    parser.add_argument("--no-old", action="store_true", help="time the new path only")
    parser.add_argument("--smooth-depths", type=int, nargs="*", default=[],
                        help="also (or with --kinds none: only) the smooth-activation laws at constant α at these depths")
    parser.add_argument("--smooth", default="tanh", help="the smooth activation of --smooth-depths")
    parser.add_argument("--alpha", type=float, default=0.05, help="α of --smooth-depths")
    parser.add_argument("--points", type=int, default=100, help="pdf points of --smooth-depths")
    parser.add_argument("--old-points", type=int, default=3, help="pdf points of the old path (--smooth-depths; 0: none)")
    parser.add_argument("--old-tables", action="store_true", help="also the old path's cdf tables (--smooth-depths)")
    parser.add_argument("--full", action="store_true",
                        help="--smooth-depths: the whole pipeline new against old, every stage (old: minutes at depth 100)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for depth in args.smooth_depths:
        if args.full:
            smooth_full(depth, args.smooth, args.alpha, args.points)
        else:
            smooth(depth, args.smooth, args.alpha, args.points, 0 if args.no_old else args.old_points, args.old_tables)
    if args.kinds == ["none"]:
        return
    for kind in args.kinds:
        for depth in args.depths:
            new_t, new_v, x = measure(depth, kind, True, args.tables)
            line = f"{kind:8s} L={depth:3d}  new: " + "  ".join(f"{k} {v:7.2f} s" for k, v in new_t.items())
            if not args.no_old:
                old_t, old_v, _ = measure(depth, kind, False, args.tables, x)
                line += "\n" + " " * 16 + "old: " + "  ".join(f"{k} {v:7.2f} s" for k, v in old_t.items())
                line += "\n" + " " * 16 + "old/new: " + "  ".join(f"{k} {old_t[k] / new_t[k]:5.1f}x" for k in new_t)
                diff = max(float(np.max(np.abs(new_v[k] - old_v[k]) / np.maximum(np.abs(old_v[k]), 1e-300)))
                           for k in new_v)
                line += f"  max relative difference of the values {diff:.1e}"
            print(line, flush=True)


if __name__ == "__main__":
    main()
