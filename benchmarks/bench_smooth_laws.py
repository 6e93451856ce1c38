"""Benchmark: smooth-activation Jacobian laws as shipped against the path before issue 15, in one run.

Each case builds the same law twice: once as shipped — ψ of the law of φ'(√q z)² from its Gauss rules
(:mod:`rmt_init.theory._smooth_law`: rules of d, log d and a/d), the free-product solver's warm starts for
laws with numerically inverted factors, seeded first passes and tangent steps deep in the η-continuation
(:class:`rmt_init.theory.free.FreeProductLaw`) — and once on the reference path, the one before issue 15:
every smooth factor on the pole-subtracted quadrature (``gauss_rule = None``), no warm starts (every point by
the η-continuation), no seeds, η-steps of 1/4 all the way down. It prints the CPU time of each (1 thread,
``time.process_time``: steadier than wall time on a shared machine), their ratio, and the largest relative
difference of the results. Tables (support, cdf, sampling) are built lazily on first use, so each timing
starts from a fresh law and includes what it needs.

Measured (2-core machine shared with 4 other jobs, CPU seconds, one run; new / old / ratio):
depth-6 tanh pdf at 1000 points (edges found) 0.062 / 2.04 / 33x (0.048 s in a quieter --quick run); cdf
tables 0.96 / 75.5 / 79x; sampling tables 0.85 / 95.1 / 113x; support (edge search) 0.52 / 1.32 / 2.6x;
sample(10^4) from a fresh law 1.04 / 78.2 / 75x; depth-6 erf, gelu support + pdf 3.1x, 2.0x (their edge
search still takes the quadrature near the top of d's range and, for gelu, near 0); depth-100 tanh 3.4x.
Largest relative differences: ≤ 2.5e−12 in the bulk at depth 6 (3.8e−11 at 0.999 of the top edge, where the
density is ill-conditioned), 2.2e−10 on 1–99 % of the support at depth 100 — both paths' error there, from the
rounding of 1 + ψ in the solver's residual, which the depth amplifies next to the top edge (docs/derivations.md
§2.5); against an mpmath solution the shipped path is now within 2e−12 there (was 1.4e−10), the old one 1.8e−10.

Per activation (depth 6; a later run, same machine; support / 1000-point pdf against the path before issue 15, cdf
tables against the same law with ψ by quadrature and the shipped solver — the old path's take 5–30 min —,
sampling tables shipped only), new / old: erf (σ_b² = 0.3) 0.33 / 0.58, 0.033 / 0.82, 3.0 / 34 (max rel diff
2.7e−11), 4.8; sigmoid 0.53 / 1.05, 0.062 / 3.2, 2.1 / 14.8 (4.3e−11), 2.3; selu (q* = 0: two point masses in
float64, ψ in closed form) 0.036 / 0.31, 0.031 / 0.29, 0.54 / 4.2 (1.4e−11), 0.84; gelu (σ_b² = 0.5; its zero of
d excised, the composite rule of log d at the lower edge; edge search's bracket growing by squared factors) 0.68 /
4.5, 0.064 / 3.7, 4.7 / 58 (1.7e−12), 5.3 (52 s before the zero rule, a separate run). The far panels of the composite rule by their series
against 8-node Gauss rules: 1.0x at the law level (erf 5.0 / 5.1, sigmoid 2.7 / 2.6 s: 4–5x per call, but those calls are
bound by per-call overhead), equal to 3e−16. tanh in the same session: cdf tables 0.59 / 66 (112x), sampling tables
0.89 / 107 (121x), 1000 cdf values with tables 1.8 / 210, sample(10^4) 1.2 / 96; depth-100 tanh 0.42 / 1.13,
max rel diff 2.1e−9 at 0.999 of the top edge (2.2e−10 on 1–99 % of the support; the two paths' edges differ by
1.6e−12 relative).

Tables after the start on the imaginary axis for points next to 0 (docs/derivations.md §2.4; one ``--smooth
--quick`` run, same machine, loaded; CPU s new / the shipped path without the axis start / ratio, max rel diff):
depth-6 cdf tables: tanh 0.20 / 0.61 (3.0x, 2e−16), erf (σ_b² = 0.3) 0.46 / 4.3 (9.4x, 1e−16), sigmoid 0.39 / 1.8
(4.7x, 5e−15), selu 0.16 / 0.75 (4.7x), selu (σ_b² = 0.3) 0.54 / 2.4 (4.4x), gelu (σ_b² = 0.5) 0.55 / 4.1 (7.4x,
8e−16); sampling tables (built with the cdf tables they need): tanh 0.33 / 0.91, erf 0.86 / 4.3, sigmoid 0.54 / 2.5,
selu 0.27 / 1.0, selu (0.3) 0.65 / 2.9, gelu 0.80 / 4.4 (all ≤ 2e−16). Depth-100 tanh: support 0.38, pdf at 1000
points 0.042, cdf tables 0.30 / 2.6 (8.7x, 1.6e−14), sampling tables 0.62 / 2.4; depth 1000: support 0.42, pdf
0.035, cdf tables 0.34 / 1.9 (5.5x, 2e−13), sampling tables 0.54 / 1.9. Depth-6 pdf at 1000 points against the
path before issue 15 in the same run: tanh 0.044 / 1.4, erf 0.042 / 0.94, sigmoid 0.048 / 2.8, selu 0.042 / 0.31,
selu (0.3) 0.067 / 0.74, gelu 0.046 / 3.2.

The rule of d's branches to 0 in log d (:class:`rmt_init.theory._smooth_law.DeepRule`: the product's hard edge at 0,
c = 1/u deep in the tails of d near the positive axis, where the quadrature path was both slow and off — by 1e−9 to
4e−6 for gelu, up to 4e−2 for erf) and the quadrature's principal parts on the 7 panels around each root (one run,
same machine, loaded; CPU s before / after): depth-1 gelu (σ_b² = 0.5) cdf tables 59 (raw 4.3 + hard edge 54.6) /
6.9 (2.9 + 4.0), sampling tables after them 80–107 / 1.5 (no tanh–sinh below the hard-edge table); depth-1 tanh
(σ_b² = 0.5) hard edge 1.3 / 0.5; depth-3 selu (σ_b² = 1) hard edge 1.0 / ~0.6–1.0; depth-2 erf (σ_b² = 1) over 90 s
/ 1.4 s, depth-1 erf (σ_b² = 1) 10.3 / 1.4. Bulk densities unchanged (depth-1 gelu, 40 points on 1–99 % of the
support: ≤ 1.1e−15); next to 0 the depth-1 gelu density moved by up to 2.7e−7 relative (the old ψ's error there).

``--sweep`` (:func:`sweep`): every smooth activation × depths 1, 2, 3, 6, 100, 1000 × σ_b² 0, 0.3, 0.5, 1 at the
critical σ_w², cdf tables and sampling tables each in a fresh law (edges found first, not timed), as ratios to the
depth-6 tanh cdf tables measured first in the same run, with the tables' total mass less 1 and a NaN check.
Measured (one run, baseline 0.205 s CPU; 114 laws, the 6 gelu laws at σ_b² = 0 refuse with a ValueError, no NaN,
|mass − 1| ≤ 2.6e−11): cdf tables ≤ 1 s (5× the baseline) but for tanh depth 6 (σ_b² 0.5, 1: 1.01, 1.11 s),
erf depth 2 (σ_b² = 1: 1.13), sigmoid depth 1 (σ_b² > 0: 1.03–1.16), selu depth 6 (0.5, 1: 1.05, 1.22), gelu depth 1
(σ_b² 0.3, 0.5: 4.5, 6.1 s; 1: over 60 s) and depth 2 (0.3: 1.01); sampling tables in a fresh law (their cdf pieces
included) ≤ 1 s at depth ≥ 3 but for tanh, selu at depth 6 (1.05–1.27) and selu depth 3 (σ_b² = 1: 1.09), 1.0–2.8 s
at depth 1–2 with σ_b² > 0 (sigmoid depth 1: 2.3–2.8), gelu depth 1 6.2, 8.7 s. All laws at depth 100 and 1000 take
≤ 0.4 s (cdf) and ≤ 0.5 s (sampling). What remains is the solver's (the η-continuation and Newton of the free-product
equation near the cut, the quadrature path for 1/u near d's range) and, for gelu at depth 1 (q* = 22–82), the
quadrature's 1700–3300 nodes and, at σ_b² = 1 (after the deep rule's atom moved to d < 1e−305: cdf tables ~65 s, of
which ψ ~8 s), the η-continuation of the hard-edge table's 5904 points down to x ~ 1e−296 (~870 Newton calls each
pass: those points are not accepted from the imaginary-axis start).

``--compare`` (:func:`sweep_compare`): the shallow laws (depths 1, 2, 3, 6 × σ_b² 0.3, 0.5, 1) against the solver
before the savings for them (:func:`_before_shallow`: Newton's inner steps evaluating every active point, warm roots
not remembered, warm starts with inner steps), each table in a fresh law, in one run. Profile before them (depth-1 tanh,
sigmoid, gelu, one thread): the warm starts' Newton ran ~9–15 ψ evaluations per point — every outer step evaluated all
active points 1 + 4 times while a few of them still had large ψ residuals, and each table pass warmed from the cold
seeds only. Measured (one run, 2-core machine shared with other jobs, 59 laws: depth-1 gelu at σ_b² = 1 takes over 40 s
either way; tables equal to ≤ 4.4e−16): cdf tables over 1 s 19 → 4, total 57.6 → 37.4 s (median 1.38× per law);
sampling tables over 1 s 31 → 10, total 80.3 → 47.8 s (median 1.54×, up to 2.8× for selu depth 1, σ_b² = 1). Left:
depth-1 sigmoid sampling 1.2–1.3 s (ψ by the quadrature near the top of d's range: ~45 % of it), selu depths 1–6
(σ_b² ≥ 0.5) sampling 1.0–1.2 s and depth-1 gelu 2.6–3.7 s cdf / 3.9–5.4 s sampling (the rule of d's tails,
:class:`~rmt_init.theory._smooth_law.DeepRule`, ~1/3 of it, mostly per-call overhead of small Newton tails; gelu's
hard-edge probes at 1e−306 and 1e−298, below the rule's reach, ~1 s of η-continuation with refined steps).
Depth-1 gelu at σ_b² = 1 (a later run, loaded, CPU s, the previous commit / now, in one session): cdf tables 97 /
10.1–13.2 (sampling tables after them 0.5 either way), cdf at 1e−305 … 1 equal to 1.4e−14: its hard-edge table
now solves each panel's lowest node first and the full panels only above the highest unresolved one (512 points
below 1e−283, where the density reads 0, had taken 69 s), and the points that fail their first η-path take the
next one together (docs/derivations.md §2.6 (b), (e)). σ_b² = 0.3, 0.5 unchanged (2.8–5.3 s, within the noise).

Depth-1 gelu and the shallow laws after the cache-sized blocks, the top-down hard-edge scouts and the repeated warm
passes (one run, 2-core machine loaded ~3.5 by other jobs; CPU s, the previous commit's checkout / now, each table in
a fresh law, each law in its own process, old and new interleaved; the tables compared entry by entry: ≤ 4.3e−16
relative over all finite entries of all 36 laws): depth-1 gelu σ_b² = 0.3, 0.5, 1: cdf tables 3.0 / 3.1, 4.9 / 2.9,
12.0 / 4.7; sampling tables 5.5 / 2.6, 5.8 / 3.5, 14.9 / 5.6. Over gelu, sigmoid, selu × depths 1, 2, 3, 6 × σ_b²
0.3, 0.5, 1: cdf tables 40.6 / 31.9 s in all, sampling tables 52.7 / 38.0 s; the other laws move within this
machine's noise (±30 % between repeats: sigmoid depth 1 cdf tables 0.86–1.18 s in twelve runs). What changed:
:meth:`~rmt_init.theory._smooth_law.DeepRule.one_plus_psi` in blocks of 64 points (one pass over up to 5136 points,
340 complex terms each, took 3x as long per point) and e^y as a real exponential times one phase per point (the
complex exponential was ~40 % of the rule; values within 1.4e−13 on 30000 random points); the quadrature path's node
sums in blocks of 8 points (2x per 256-point chunk at gelu's 1690 nodes, bit-identical); the hard-edge scouts solved
top-down in halving batches down to the first batch holding an unresolved one (docs/derivations.md §2.6 (e); gelu
σ_b² = 1: hard edge 7.1 → 3.4 s); in a seeded first pass the points the warm pass rejects get up to 4 more warm passes
from the roots accepted (``_free_solver._WARM_AGAIN``; gelu σ_b² = 1's 16384-point sampling grid: 674 → 2 points by
the η-continuation, 5.1 → 1.2 s). Left over 1 s: depth-1 gelu (its two deep hard-edge probes, 1e2 and 1e10 × the
smallest normal float, read density 0 and cost ~1–2 s per law; at σ_b² = 1 the scouts' batch holding the highest
unresolved one ~1.2–1.5 s) and, within the noise, sigmoid depth 1 and selu at σ_b² = 1 (1.0–1.4 s).

Depth-1 gelu after its deep hard-edge probes are skipped where the axis solution bounds the law's mass below them by
twice the rank bound of its factor's underflow atom (docs/derivations.md §2.6 (f): that mass is the atom's, and the
probes had read density 0 or η-path-dependent noise there after ~1 s of failed η-paths) and a failed η-step is first
redone in 4 sub-steps, not 40 (§2.6 (g)). One run, 2-core machine loaded ~3.5 by other jobs; CPU s, main's checkout /
now, each table in a fresh law, each law in its own process, old and new interleaved: depth-1 gelu σ_b² = 0.3, 0.5, 1:
cdf tables 1.99 / 1.20, 2.45 / 1.57, 3.70 / 2.82; sampling tables 1.98 / 1.36, 2.46 / 1.51, 3.69 / 3.03. Tables at σ_b²
0.5 and 1 equal to ≤ 2.2e−16 (cdf at 3000 points from 1e−300 up, ppf at 1299 quantiles from 1e−14); at σ_b² = 0.3 the
table changed on purpose: the noise exponent of the deep probes (κ = 1.39) had cut it at 1.1e−14 with 3 % of the
mass below on a power law, off by 2.6 %, 16 %, 50 % at 1e−20, 1e−32, 1e−60 against F from an independent quadrature
of the density; it now runs to 3e−140 and is within 2.9e−12 absolute (ppf(1e−14): 2.6e−202 before, where F = 6.7e−13;
now 9.8e−235, F = 1.25e−14 ± the reference's ~1e−13). The other laws left over 1 s before (sigmoid depth 1, selu depths
1, 2, 6 at σ_b² ≥ 0.5, tanh depth 6 at σ_b² = 0.3), same run, main / now: sigmoid depth 1 cdf 0.62–0.66 / 0.59–0.61,
sampling 0.91–1.00 / 0.95–1.02; selu cdf 0.45–0.73 / 0.45–0.72, sampling 0.59–0.84 / 0.62–0.83; tanh depth 6 (σ_b² =
0.3) cdf 0.45 / 0.47 — unchanged (bit-identical tables), and ≤ 1 s but for sigmoid depth-1 sampling at the limit
(1.0 s) on this loaded machine. Left over 1 s: depth-1 gelu 1.2–1.6 s at σ_b² ≤ 0.5 (its tanh–sinh pass over 4158
points and first 63-point pass ~0.5 s, the hard-edge scouts ~0.3 s, the axis check 0.1–0.2 s; ψ near the cut by the
quadrature's 1700–3300 nodes) and 2.8–3.0 s at σ_b² = 1 (the scouts' batch holding the highest unresolved node ~0.9 s:
nine points the axis start rejects, continued from far above).

Depth-1 gelu after the bridged warm start, the tied quadrature nodes and the batched roots (docs/derivations.md §2.6
(h); ``--compare --before gelu1``: the path before them in the same run, old first, each table in a fresh law; 2-core
machine loaded ~2.5–3.5 by other jobs; CPU s before / after): depth-1 gelu σ_b² = 0.3, 0.5, 1 cdf tables 1.03 / 0.73,
1.26 / 0.82, 2.16 / 1.59, sampling tables 1.03 / 0.94, 1.18 / 1.03, 2.24 / 1.71 (``--sweep`` in the same session:
cdf 0.72, 0.81, 1.54, sampling 0.87, 0.97, 1.63); tables equal to ≤ 6e−16 relative. Over tanh, erf, sigmoid, selu,
gelu × depths 1, 2, 6 × σ_b² 0.3, 1 (30 laws, one run): cdf tables 12.37 / 11.12 s in all, sampling 15.35 / 14.34 s,
every law as fast or faster (1.0–1.4×), tables equal to ≤ 4.5e−15 relative (≤ 2.2e−16 absolute). Left over 1 s:
depth-1 gelu at σ_b² = 1 (the hard-edge scouts' nine points the axis start rejects, ~0.5 s of η-continuation from far
above, whose verdicts set the table's cut, and the axis path's single-point Newton, ~0.25 s) and, on a loaded machine,
its sampling tables at σ_b² = 0.5 (0.97–1.03 s: the 16384-point grid's first pass ~0.55 s, the hard-edge table ~0.45 s).

Run from the repository root: ``PYTHONPATH=. python benchmarks/bench_smooth_laws.py`` (``--quick`` skips the
references that take minutes: the old path's cdf and sampling tables and depth 100; ``--smooth``: only the
per-activation cases; ``--sweep``: the grid above; ``--compare``: the shallow laws before/after the shallow-law savings,
``--compare --before gelu1``: before/after the depth-1 gelu savings; the grid's filters ``--activations tanh,erf
--depths 1,2 --sigma-b2 0.3,1 --limit 60``).
"""
from __future__ import annotations

import contextlib
import math
import sys
import time

import numpy as np

import rmt_init.theory._free_edges as free_edges
import rmt_init.theory._free_solver as free_solver
from rmt_init import jacobian_spectrum
from rmt_init.theory.gaussian_image import GaussianImageS

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the theory side never needs torch
    pass


def _no_warm_start(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(x.shape, complex), np.zeros(x.shape, bool)


def _reference(law):
    """The same law on the path before issue 15 (use inside :func:`_old_solver`)."""
    smooth = [term.factor for term in law.terms if isinstance(term.factor, GaussianImageS)]
    if not smooth or any(not hasattr(f, "gauss_rule") for f in smooth):
        raise RuntimeError("no smooth factor with a Gauss rule: is this checkout's rmt_init the one imported?")
    for factor in smooth:
        factor.gauss_rule = None
        factor.collapsed = None  # selu at q* = 0: its piece on the quadrature too
    law._solve_warm = _no_warm_start  # laws with numerical factors always took the continuation
    return law


@contextlib.contextmanager
def _old_solver():
    """η-steps of 1/4 all the way down, no seeding, no start on the imaginary axis, as before issue 15."""
    saved = free_solver._DEEP_ETA, free_solver._SEED_MIN, free_edges._BRACKET_GROWTH_MAX, free_solver._AXIS_X
    free_solver._DEEP_ETA, free_solver._SEED_MIN, free_edges._BRACKET_GROWTH_MAX, free_solver._AXIS_X = 0.0, sys.maxsize, 4.0, 0.0
    try:
        yield
    finally:
        free_solver._DEEP_ETA, free_solver._SEED_MIN, free_edges._BRACKET_GROWTH_MAX, free_solver._AXIS_X = saved


def _timed(fn):
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def _report(label: str, new_t: float, new_out, old_t: float | None = None, old_out=None) -> None:
    if old_t is None:
        print(f"{label:56s} new {new_t:8.3f} s   (reference skipped)")
        return
    diff = float(np.max(np.abs(new_out - old_out) / np.maximum(np.abs(old_out), 1e-300)))
    print(f"{label:56s} new {new_t:8.3f} s   old {old_t:8.3f} s   old/new {old_t / new_t:7.1f}x   max rel diff {diff:.1e}")


def _without_panels(law):
    """The same law without the composite Gauss rule of log d (as shipped before it: the product's lower edge on
    the quadrature path for log-ranges of d over 60)."""
    for term in law.terms:
        if isinstance(term.factor, GaussianImageS) and term.factor.gauss_rule is not None:
            term.factor.gauss_rule.panels = None
    return law


def _gauss_far_panels(law):
    """The same law with the composite log-d rule's far panels by their 8-node Gauss rules (before their series)."""
    for term in law.terms:
        if isinstance(term.factor, GaussianImageS) and term.factor.gauss_rule is not None:
            term.factor.gauss_rule.panel_series = False
    return law


def _series_case(label: str, make, task) -> None:
    """New path against the same path with the far panels by Gauss rules (both with the new solver)."""
    new_t, new_out = task(make())
    old_t, old_out = task(_gauss_far_panels(make()))
    _report(label + " [vs 8-node far panels]", new_t, new_out, old_t, old_out)


def _panel_case(label: str, make, task) -> None:
    """New path against the same path without the composite rule of log d (both with the new solver)."""
    new_t, new_out = task(make())
    old_t, old_out = task(_without_panels(make()))
    _report(label + " [vs no log-d panels]", new_t, new_out, old_t, old_out)


def _quadrature_psi(law):
    """The same law with every smooth factor's ψ on the pole-subtracted quadrature (the shipped solver)."""
    for term in law.terms:
        if isinstance(term.factor, GaussianImageS):
            term.factor.gauss_rule = None
            term.factor.collapsed = None
    return law


@contextlib.contextmanager
def _no_axis():
    """The shipped solver without the start on the imaginary axis for points next to 0 (every such point by the
    η-continuation from far above, as before it)."""
    saved = free_solver._AXIS_X
    free_solver._AXIS_X = 0.0
    try:
        yield
    finally:
        free_solver._AXIS_X = saved


def _case(label: str, make, task, reference: bool | str = True) -> None:
    """task(law) → (seconds, result); the law is fresh each time. reference: True (the path before issue 15),
    "quadrature" (ψ by quadrature, the shipped solver: the old path's ψ, minutes less), "axis" (the shipped path
    without the imaginary-axis start), False (none)."""
    new_t, new_out = task(make())
    if not reference:
        _report(label, new_t, new_out)
        return
    if reference == "axis":
        with _no_axis():
            old_t, old_out = task(make())
        _report(label + " [vs no axis start]", new_t, new_out, old_t, old_out)
        return
    if reference == "quadrature":
        old_t, old_out = task(_quadrature_psi(make()))
        _report(label + " [vs quadrature ψ]", new_t, new_out, old_t, old_out)
        return
    with _old_solver():
        old_t, old_out = task(_reference(make()))
    _report(label, new_t, new_out, old_t, old_out)


def _after_support(fn):
    """Time fn(law) with the law's edges found first (not timed)."""

    def task(law):
        law.support
        return _timed(lambda: fn(law))

    return task


def _whole(fn):
    return lambda law: _timed(lambda: fn(law))


def main(quick: bool = False, smooth_only: bool = False) -> None:
    tanh6 = lambda: jacobian_spectrum(6, "tanh", sigma_b2=0.05)  # noqa: E731

    def grid(law, n=1000):
        lo, hi = law.support
        return np.linspace(lo, hi, n + 2)[1:-1]

    print("CPU seconds, 1 thread, same run; times include the law's one-off tables unless stated")
    if not smooth_only:
        _tanh_cases(tanh6, grid, quick)
    _smooth_cases(grid, quick)


def _tanh_cases(tanh6, grid, quick: bool) -> None:
    _case("depth-6 tanh: support (edge search)", tanh6, _whole(lambda law: np.array(law.support)))
    _case("depth-6 tanh: pdf at 1000 points (edges found)", tanh6, _after_support(lambda law: law.pdf(grid(law))))
    _case("depth-6 tanh: pdf at 1 point (edges found)", tanh6, _after_support(lambda law: law.pdf(np.array([0.5 * sum(law.support)]))))
    _case("depth-6 tanh: support + pdf at 1000 points", tanh6, _whole(lambda law: law.pdf(grid(law))))
    _case(
        "depth-6 tanh: cdf tables (edges found)",
        tanh6,
        _after_support(lambda law: np.concatenate([np.concatenate(table) for table in law._cdf_tables])),
        reference=not quick,
    )
    _case(
        "depth-6 tanh: sampling tables (edges found)",
        tanh6,
        _after_support(lambda law: np.concatenate([np.concatenate(table[:2]) for table in law._sampling_tables])),
        reference=not quick,
    )
    _case(
        "depth-6 tanh: cdf at 1000 points (tables built)",
        tanh6,
        _whole(lambda law: law.cdf(np.linspace(*law.support, 1000))),
        reference=not quick,
    )
    _case(
        "depth-6 tanh: sample(10^4) (tables built)",
        tanh6,
        _whole(lambda law: np.sort(law.rvs(size=10_000, random_state=np.random.default_rng(0)))),
        reference=not quick,
    )
    _case(
        "depth-100 tanh: support + pdf at 1000 points",
        lambda: jacobian_spectrum(100, "tanh", sigma_b2=0.05),
        _whole(lambda law: law.pdf(grid(law))),
        reference=not quick,
    )


def _smooth_cases(grid, quick: bool) -> None:
    cdf_tables = _whole(lambda law: np.concatenate([np.concatenate(table) for table in law._cdf_tables]))
    erf6 = lambda: jacobian_spectrum(6, "erf", sigma_b2=0.3)  # noqa: E731
    sigmoid6 = lambda: jacobian_spectrum(6, "sigmoid")  # noqa: E731
    # every smooth activation, shipped against the path before issue 15 (cdf tables: not in --quick, the old path
    # takes 6–75 s per law there); sampling tables shipped only (tanh's reference is above)
    for name, sigma_b2 in (("tanh", 0.05), ("erf", 0.3), ("sigmoid", 0.0), ("selu", 0.0), ("selu", 0.3), ("gelu", 0.5)):
        make = lambda name=name, sigma_b2=sigma_b2: jacobian_spectrum(6, name, sigma_b2=sigma_b2)  # noqa: E731
        tag = f"depth-6 {name} (σ_b² = {sigma_b2:g})"
        _case(f"{tag}: support", make, _whole(lambda law: np.array(law.support)))
        _case(f"{tag}: pdf at 1000 points", make, _after_support(lambda law: law.pdf(grid(law))))
        # the old path's cdf tables take 5–30 min here (every point by the 1/4-step continuation on quadrature ψ):
        # against the shipped path without the imaginary-axis start (and, not --quick, against the quadrature ψ)
        tables = _after_support(lambda law: np.concatenate([np.concatenate(t) for t in law._cdf_tables]))
        _case(f"{tag}: cdf tables", make, tables, reference="axis")
        if not quick:
            _case(f"{tag}: cdf tables", make, tables, reference="quadrature")
        _case(
            f"{tag}: sampling tables",
            make,
            _after_support(lambda law: np.concatenate([np.concatenate(t[:2]) for t in law._sampling_tables])),
            reference="axis",
        )
    for depth in (100, 1000):  # deep laws: every table against the shipped path without the axis start
        make = lambda depth=depth: jacobian_spectrum(depth, "tanh", sigma_b2=0.05)  # noqa: E731
        tag = f"depth-{depth} tanh"
        _case(f"{tag}: support", make, _whole(lambda law: np.array(law.support)), reference=False)
        _case(f"{tag}: pdf at 1000 points", make, _after_support(lambda law: law.pdf(grid(law))), reference="axis")
        _case(
            f"{tag}: cdf tables",
            make,
            _after_support(lambda law: np.concatenate([np.concatenate(t) for t in law._cdf_tables])),
            reference="axis",
        )
        _case(
            f"{tag}: sampling tables",
            make,
            _after_support(lambda law: np.concatenate([np.concatenate(t[:2]) for t in law._sampling_tables])),
            reference="axis",
        )
    _series_case("depth-6 sigmoid: support + cdf tables", sigmoid6, cdf_tables)
    _series_case("depth-6 erf: support + cdf tables", erf6, cdf_tables)
    if not quick:
        _panel_case("depth-6 sigmoid: support + cdf tables", sigmoid6, cdf_tables)
        _panel_case("depth-6 erf: support + cdf tables", erf6, cdf_tables)


class _Timeout(Exception):
    pass


def _limited(fn, limit: float):
    """(CPU seconds, result) of fn(), or (None, None) after ``limit`` seconds of wall time (SIGALRM; POSIX)."""
    import signal

    def stop(*_):
        raise _Timeout()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, limit)
    try:
        return _timed(fn)
    except _Timeout:
        return None, None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)


SWEEP_ACTIVATIONS = ("tanh", "erf", "sigmoid", "selu", "gelu")
SWEEP_DEPTHS = (1, 2, 3, 6, 100, 1000)
SWEEP_SIGMA_B2 = (0.0, 0.3, 0.5, 1.0)


@contextlib.contextmanager
def _before_shallow():
    """The solver before the shallow-law savings: Newton's inner steps evaluate every active point, warm-started roots
    are not remembered, warm starts take the inner steps (rmt_init/theory/_free_solver.py: ``_INNER_SUBSET``,
    ``_WARM_REMEMBER``, ``_WARM_INNER``)."""
    saved = free_solver._INNER_SUBSET, free_solver._WARM_REMEMBER, free_solver._WARM_INNER
    free_solver._INNER_SUBSET, free_solver._WARM_REMEMBER, free_solver._WARM_INNER = False, False, None
    try:
        yield
    finally:
        free_solver._INNER_SUBSET, free_solver._WARM_REMEMBER, free_solver._WARM_INNER = saved


@contextlib.contextmanager
def _before_depth1_gelu():
    """The path before the depth-1 gelu savings (issue 15): the roots of d(ζ) = c start by start and their principal parts
    root column by root column (``GaussianImageS.batched_roots``), every quadrature node summed on its own
    (``GaussianImageS.tied_nodes``: gelu's d = 1 and d = 0 tails), no bridged warm start (``_free_solver._BRIDGE_STEPS``).
    (The deep rule's padded window and the panel bound's tables are bit-identical rewrites, without a switch.)"""
    saved = GaussianImageS.batched_roots, GaussianImageS.tied_nodes, free_solver._BRIDGE_STEPS
    GaussianImageS.batched_roots, GaussianImageS.tied_nodes, free_solver._BRIDGE_STEPS = False, False, 0
    try:
        yield
    finally:
        GaussianImageS.batched_roots, GaussianImageS.tied_nodes, free_solver._BRIDGE_STEPS = saved


BEFORE = {"shallow": _before_shallow, "gelu1": _before_depth1_gelu}


def _fresh_tables(make, which: str, limit: float):
    """(CPU s, tables as one array, law) of a fresh law's cdf or sampling tables, edges found first (not timed)."""
    law = make()
    law.support
    if which == "cdf":
        fn = lambda: np.concatenate([np.concatenate(t) for t in law._cdf_tables])  # noqa: E731
    else:
        fn = lambda: np.concatenate([np.concatenate(t[:2]) for t in law._sampling_tables])  # noqa: E731
    seconds, table = _limited(fn, limit)
    return seconds, table, law


def sweep_compare(limit: float = 60.0, activations=SWEEP_ACTIVATIONS, depths=(1, 2, 3, 6), sigma_b2s=(0.3, 0.5, 1.0),
                  before: str = "shallow") -> list[dict]:
    """The shallow laws' tables as shipped against the path before a saving, in one run: ``before`` = "shallow" (the
    solver before the shallow-law savings, :func:`_before_shallow`) or "gelu1" (before the depth-1 gelu savings,
    :func:`_before_depth1_gelu`). For each law, cdf tables and sampling tables (each a fresh law, edges found first and
    not timed, the old path first), CPU seconds before / after, their ratio, and the largest absolute and relative
    differences of the tables (cumulative masses; relative over the entries above 1e−300)."""
    before_path = BEFORE[before]
    print(f"before: {before_path.__name__}")
    print(f"{'activation':10s} {'depth':>5s} {'σ_b²':>5s} {'cdf before':>10s} {'after':>7s} {'ratio':>6s} "
          f"{'sampling before':>15s} {'after':>7s} {'ratio':>6s} {'max |Δ|':>8s} {'max rel':>8s}")
    rows = []
    fmt = lambda t: f"{t:7.3f}" if t is not None else f"{'>' + format(limit, 'g'):>7s}"  # noqa: E731
    for name in activations:
        for depth in depths:
            for sigma_b2 in sigma_b2s:
                make = lambda: jacobian_spectrum(depth, name, sigma_b2=sigma_b2)  # noqa: E731
                try:
                    make().support
                except ValueError as error:
                    print(f"{name:10s} {depth:5d} {sigma_b2:5.2g} skipped: ValueError: {str(error)[:80]}")
                    continue
                row = {"activation": name, "depth": depth, "sigma_b2": sigma_b2}
                diff = relative = 0.0
                for which in ("cdf", "sampling"):
                    with before_path():
                        before, old, _ = _fresh_tables(make, which, limit)
                    after, new, _ = _fresh_tables(make, which, limit)
                    row[which] = (before, after)
                    if old is not None and new is not None and old.shape == new.shape:
                        diff = max(diff, float(np.max(np.abs(new - old))))
                        big = np.abs(old) > 1e-300
                        if big.any():
                            relative = max(relative, float(np.max(np.abs(new[big] - old[big]) / np.abs(old[big]))))
                    elif old is not None and new is not None:
                        diff = relative = math.inf
                row["diff"], row["relative"] = diff, relative
                cells = []
                for which in ("cdf", "sampling"):
                    before, after = row[which]
                    ratio = f"{before / after:6.1f}" if before is not None and after is not None else f"{'':6s}"
                    cells.append(f"{fmt(before):>{10 if which == 'cdf' else 15}s} {fmt(after)} {ratio}")
                print(f"{name:10s} {depth:5d} {sigma_b2:5.2g} {cells[0]} {cells[1]} {diff:8.1e} {relative:8.1e}", flush=True)
                rows.append(row)
    for which in ("cdf", "sampling"):
        for k, label in ((0, "before"), (1, "after")):
            over = [f"{r['activation']}/{r['depth']}/{r['sigma_b2']:g}" for r in rows if r[which][k] is None or r[which][k] > 1.0]
            print(f"{which} tables over 1 s {label}: {len(over)}: {', '.join(over) if over else 'none'}")
        pairs = [r[which] for r in rows if None not in r[which]]
        if pairs:
            total_before, total_after = sum(p[0] for p in pairs), sum(p[1] for p in pairs)
            print(f"{which} tables in all: before {total_before:.2f} s, after {total_after:.2f} s ({total_before / total_after:.2f}x)")
    return rows


def sweep(limit: float = 120.0, activations=SWEEP_ACTIVATIONS, depths=SWEEP_DEPTHS, sigma_b2s=SWEEP_SIGMA_B2) -> list[dict]:
    """Issue 15's target: cdf tables and sampling tables ≤ 1 s each at every smooth activation and depth ≤ 1000.

    For each (activation, depth, σ_b²) at the critical σ_w² (combinations whose law raises a documented ValueError
    are listed as skipped), a fresh law has its edges found (not timed) and then its cdf tables built; another fresh
    law its sampling tables (with the cdf pieces they need). Each is printed in CPU seconds and as a ratio to the
    baseline measured first in the same run (depth-6 tanh, σ_b² = 0.05, cdf tables), with the cdf tables' total mass
    less 1 (atoms included) and whether any NaN appeared in the tables. ``limit``: wall seconds per table before
    it is reported as over the limit.
    """
    cdf = lambda law: np.concatenate([np.concatenate(t) for t in law._cdf_tables])  # noqa: E731
    sampling = lambda law: np.concatenate([np.concatenate(t[:2]) for t in law._sampling_tables])  # noqa: E731
    base_law = jacobian_spectrum(6, "tanh", sigma_b2=0.05)
    base_law.support
    base, _ = _timed(lambda: cdf(base_law))
    print(f"baseline: depth-6 tanh (σ_b² = 0.05) cdf tables {base:.3f} s CPU; limit {limit:g} s wall per table")
    print(f"{'activation':10s} {'depth':>5s} {'σ_b²':>5s} {'cdf s':>8s} {'ratio':>7s} {'sampling s':>10s} {'ratio':>7s} {'mass − 1':>9s} nan")
    rows = []
    for name in activations:
        for depth in depths:
            for sigma_b2 in sigma_b2s:
                make = lambda: jacobian_spectrum(depth, name, sigma_b2=sigma_b2)  # noqa: E731
                try:
                    law = make()
                    law.support
                except ValueError as error:
                    print(f"{name:10s} {depth:5d} {sigma_b2:5.2g} skipped: ValueError: {str(error)[:90]}")
                    rows.append({"activation": name, "depth": depth, "sigma_b2": sigma_b2, "skipped": str(error)})
                    continue
                t_cdf, table = _limited(lambda: cdf(law), limit)
                mass = nan = None
                if t_cdf is not None:
                    mass = sum(float(below[-1]) for _, below, _ in law._cdf_tables) + sum(m for _, m in law.atoms) - 1.0
                    nan = bool(np.isnan(table).any())
                law = make()
                law.support
                t_sampling, table = _limited(lambda: sampling(law), limit)
                if t_sampling is not None:
                    nan = bool(nan) or bool(np.isnan(table).any())
                fmt = lambda t: f"{t:8.3f} {t / base:7.1f}" if t is not None else f"{'>' + format(limit, 'g'):>8s} {'':7s}"  # noqa: E731
                print(f"{name:10s} {depth:5d} {sigma_b2:5.2g} {fmt(t_cdf)} {fmt(t_sampling):>18s} "
                      f"{mass if mass is None else format(mass, '9.1e')} {nan}", flush=True)
                rows.append({"activation": name, "depth": depth, "sigma_b2": sigma_b2, "cdf": t_cdf, "sampling": t_sampling,
                             "mass_error": mass, "nan": nan})
    done = [r for r in rows if "skipped" not in r]
    worst = lambda key: max(done, key=lambda r: math.inf if r[key] is None else r[key])  # noqa: E731
    for key in ("cdf", "sampling"):
        if done:
            r = worst(key)
            print(f"max {key} tables: {r[key]} s ({r['activation']}, depth {r['depth']}, σ_b² = {r['sigma_b2']:g})")
            over = [f"{x['activation']}/{x['depth']}/{x['sigma_b2']:g}" for x in done if x[key] is None or x[key] > 1.0]
            print(f"  over 1 s: {', '.join(over) if over else 'none'}")
    return rows


def _sweep_args(argv: list[str]) -> dict:
    """The sweep's grid from ``--activations tanh,erf --depths 1,2 --sigma-b2 0.3,1 --limit 60`` (each optional;
    the full grid where absent)."""
    out: dict = {}
    for flag, key, cast in (("--activations", "activations", str), ("--depths", "depths", int),
                            ("--sigma-b2", "sigma_b2s", float), ("--limit", "limit", float)):
        if flag in argv:
            value = argv[argv.index(flag) + 1]
            out[key] = cast(value) if key == "limit" else tuple(cast(v) for v in value.split(","))
    if "--before" in argv:  # (--compare only)
        out["before"] = argv[argv.index("--before") + 1]
    return out


if __name__ == "__main__":
    if "--help" in sys.argv[1:] or "-h" in sys.argv[1:]:
        print(__doc__.split("\n\n")[0])
        print("modes: (none) the per-case comparisons; --quick; --smooth; --sweep; --compare [--before shallow|gelu1];\n"
              "grid filters: --activations tanh,erf --depths 1,2 --sigma-b2 0.3,1 --limit 60")
    elif "--compare" in sys.argv[1:]:
        sweep_compare(**_sweep_args(sys.argv[1:]))
    elif "--sweep" in sys.argv[1:]:
        sweep(**{k: v for k, v in _sweep_args(sys.argv[1:]).items() if k != "before"})
    else:
        main(quick="--quick" in sys.argv[1:], smooth_only="--smooth" in sys.argv[1:])
