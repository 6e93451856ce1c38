"""Distribution function of a free product: tanh–sinh tables of the density, the hard-edge table at 0 and the mass
below the float range, the law of ln λ for deep products, and the Hermite tables behind ``method="table"`` and
sampling (docs/derivations.md §2.4, §2.5).

A mixin of :class:`~rmt_init.theory.free.FreeProductLaw`, which supplies the density (``_pdf``, ``_density``) and
the edges it reads; see that module's docstring for the conventions.
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Any, NamedTuple

import numpy as np

from . import _free_solver
from .laws import _tanhsinh, bracketed_mass_step

_SAMPLING_NODES = 2049
_EDGE_FLOOR = float(np.finfo(float).tiny)  # the hard-edge table at 0 goes down to the smallest normal float at most
# (the density is resolved there: ~1e−13 against Fuss–Catalan down to 1e−310)
_EDGE_DEPTH = 16.0  # … or until F has fallen by e^{−16·ln 10}: 10^{16/κ} decades for F ∝ x^κ
_EDGE_SUBTRACTION_NOISE = 1e-12  # a mass below the floor found by subtraction is known to this (absolute)
_EDGE_NOISE = 1e-12  # next to an atom at 0, xρ(x) below this is rounding noise (see FreeProductLaw._hard_edge)
_EDGE_TAIL_OK = 1e-7  # below the table, the power law's mass is used when it is below this (error ~ its square)
_EDGE_PANELS_PER_DECADE = 4  # panels of the ln F table per decade (one per decade left 3e−6 errors, depth-5 FC)
_EDGE_NODE = 32  # the log–log edge table covers the sampling table's panels below this node
_EDGE_BATCH_MIN = 8  # the hard-edge table's lowest nodes are solved top-down in batches of at least this many
_EDGE_DISPLACED = 2.0  # the deep probes are skipped where F below them is at most this × the bound 2 Σ_j k_j P_j on the
# change of F made by the factors' underflow atoms (P_j: ``underflow_mass``; docs/derivations.md §2.6 (f))
_SHORT_STEP = 0.05  # a quantile Newton step this short (× distance to a singular point) adds ∫ρ by Gauss–Legendre
_GAUSS_8 = np.polynomial.legendre.leggauss(8)


class EdgeTable(NamedTuple):
    """ln F against ln x near a hard edge at 0 (both increasing), with the power ``F ∝ x^{exponent}``
    continuing it below the first node (see ``FreeProductLaw._hard_edge``)."""

    log_x: np.ndarray
    log_f: np.ndarray
    exponent: float
    slopes: np.ndarray  # d ln F / d ln x at the nodes

    def cdf(self, x: np.ndarray) -> np.ndarray:
        from scipy.interpolate import CubicHermiteSpline

        with np.errstate(divide="ignore"):
            lx = np.log(x)  # subnormal x too (ln 5e−324 = −744.4)
        hermite = CubicHermiteSpline(self.log_x, self.log_f, self.slopes)
        inside = hermite(np.clip(lx, self.log_x[0], self.log_x[-1]))
        below = self.log_f[0] + self.exponent * (lx - self.log_x[0])
        return np.exp(np.where(lx < self.log_x[0], below, inside))

    def ppf(self, f: np.ndarray) -> np.ndarray:
        from scipy.interpolate import PchipInterpolator

        with np.errstate(divide="ignore"):
            lf = np.log(f)
        inside = PchipInterpolator(self.log_f, self.log_x)(np.clip(lf, self.log_f[0], self.log_f[-1]))
        below = self.log_x[0] + (lf - self.log_f[0]) / self.exponent
        return np.exp(np.where(lf < self.log_f[0], below, inside))


class HardEdge(NamedTuple):
    """The continuous mass near a hard edge at 0, integrated in s = ln x (see ``FreeProductLaw._hard_edge``).

    ``log_x``: panel ends s_0 < … < s_n (quarter decades, s_n = ln x_J, x_J the first node of the cdf
    tables); ``cumulative``: the continuous mass below each (the first is the mass below the table's floor
    x_low = e^{s_0}); ``exponent``: κ with F ∝ x^κ below x_low; ``slopes``: d ln F/d ln x = xρ(x)/F at
    the nodes; ``total``: the interval's continuous mass.
    """

    log_x: np.ndarray
    cumulative: np.ndarray
    exponent: float
    slopes: np.ndarray
    total: float

    @property
    def top(self) -> float:
        return float(np.exp(self.log_x[-1]))

    def mass_below(self, x: np.ndarray, density: Any) -> np.ndarray:
        """F(x) for 0 ≤ x ≤ x_J: the panel's cumulative mass plus ∫_{s_k}^{ln x} xρ ds by 8-point
        Gauss–Legendre (xρ is smooth in s; error ≲ 1e−15 relative on a quarter decade); below the floor, the
        power law L_m (x/x_low)^κ."""
        x = np.asarray(x, float)
        out = np.zeros(x.shape)
        with np.errstate(divide="ignore"):
            s = np.log(x)
        below = (x > 0) & (s < self.log_x[0])
        out[below] = self.cumulative[0] * np.exp(self.exponent * (s[below] - self.log_x[0]))
        inside = (x > 0) & ~below
        if inside.any():
            si = np.minimum(s[inside], self.log_x[-1])
            k = np.clip(np.searchsorted(self.log_x, si, side="right") - 1, 0, len(self.log_x) - 2)
            g, gw = _GAUSS_8
            half = 0.5 * (si - self.log_x[k])
            nodes = np.exp(self.log_x[k][:, None] + half[:, None] * (1.0 + g[None, :]))
            pieces = (density(nodes) * nodes * gw[None, :]).sum(axis=1) * half
            out[inside] = self.cumulative[k] + pieces
        return out

    def edge_table(self) -> EdgeTable:
        return EdgeTable(self.log_x, np.log(self.cumulative), self.exponent, self.slopes)


class FreeProductTables:
    """cdf/sf/ppf/isf, tables and sampling of :class:`~rmt_init.theory.free.FreeProductLaw` (a mixin)."""

    #: the generic tanh–sinh tables of :class:`~rmt_init.theory.laws.Law` (their first panel at a hard edge at
    #: 0 misses the mass below the smallest float; :attr:`_cdf_tables` replaces it)
    @cached_property
    def _raw_cdf_tables(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """As :meth:`SpectralLaw._cdf_tables`, but the first panel [0, x₁] of an interval starting at 0 is left out
        (its mass counted as 0): :attr:`_hard_edge` replaces it, and its tanh–sinh nodes reach x ~ 1e−310, each a
        cold solve there (minutes for the residual laws with a hard edge, docs/derivations.md §8.7(e));
        :attr:`_cdf_tables` adds it only where the law has no hard-edge table."""
        from .laws import _TABLE_NODES

        tables = []
        for a, b in self.intervals:
            theta = np.linspace(0.0, np.pi, _TABLE_NODES)
            nodes = a + (b - a) * 0.5 * (1.0 - np.cos(theta))  # clustered at both edges
            nodes[0], nodes[-1] = a, b
            pieces = np.zeros(len(nodes) - 1)
            first = 1 if a == 0.0 else 0
            pieces[first:] = _tanhsinh(self._pdf_vectorised, nodes[first:-1], nodes[first + 1 :], self._mass_atol)
            below = np.concatenate([[0.0], np.cumsum(pieces)])
            above = np.concatenate([np.cumsum(pieces[::-1])[::-1], [0.0]])
            tables.append((nodes, below, above))
        return tables

    @cached_property
    def _interval_masses(self) -> list[float]:
        """The continuous mass of each interval: exact (``continuous_mass`` less the others) for an interval
        starting at 0, whose mass may lie partly below the smallest float; quadrature for the others."""
        masses = [float(below[-1]) for _, below, _ in self._raw_cdf_tables]
        if self.intervals and self.intervals[0][0] == 0.0:
            masses[0] = self.continuous_mass - math.fsum(masses[1:])
        return masses

    def _edge_panel_density(self, x: np.ndarray, noise: float) -> np.ndarray:
        """ρ at the hard-edge table's nodes ``x`` (one row per panel, panels increasing), NaN on the panels below the
        highest panel whose lowest node is not resolved (ρ not finite and positive, or xρ ≤ ``noise``).

        :meth:`_hard_edge` keeps only the panels above the highest unresolved one, and unresolved points are the
        solver's expensive ones (failed η-paths and their retries). So the lowest node of every panel is solved
        first, and the full panels only above the highest unresolved of those: gelu at depth 1, σ_b² = 1, whose
        density reads 0 below ~1e−283, had 512 such points below 700
        resolved panels, 69 s of its 93 s cdf tables (there F is within a few times the mass of its factor's underflow
        atom, d < 1e−280 put at d = 0, and the solver does not resolve the density: §2.6 (f))."""
        # The lowest nodes top-down, in batches halving with what is left (at least _EDGE_BATCH_MIN), down to the
        # first batch holding an unresolved one: the panels below it are dropped whatever their density, and each
        # unresolved point costs ~1 s of failed η-paths (gelu, σ_b² = 1: 32 points below 1e−283, 19 of them
        # unresolved, took 4.5 s of the 5.9 s of all 738 lowest nodes; the batch holding the highest one, 23 points,
        # 1.5 s). Each point's verdict is its own (its η-path and retries), so the highest unresolved node is the same.
        lowest = np.full(len(x), np.nan)
        top = len(x)
        first = 0
        while top > 0:
            start = max(top - max(top // 2, _EDGE_BATCH_MIN), 0)
            lowest[start:top] = self._pdf_vectorised(x[start:top, 0])
            part = lowest[start:top]
            bad = ~(np.isfinite(part) & (part > 0) & (x[start:top, 0] * part > noise))
            if bad.any():
                first = start + int(np.flatnonzero(bad)[-1]) + 1
                break
            top = start
        density = np.full(x.shape, np.nan)
        density[first:, 0] = lowest[first:]
        if first < len(x):
            density[first:, 1:] = self._pdf_vectorised(x[first:, 1:])
        return density

    def _deep_probes_displaced(self, x_high: float) -> bool:
        """Whether the law's mass on [0, ``x_high``] is at most _EDGE_DISPLACED × the bound 2 Σ_j k_j P_j on the change
        of F that the numerical factors' underflow atoms make (P_j: a factor's ``underflow_mass``, the mass of d < 1e−280
        that its rules put at d = 0; k_j: its power). There F is not the law's to better than its own size, so the deep
        probes (x ≤ ``x_high``) cannot give the law's edge exponent: depth-1 gelu, where they read density 0 after ~1 s
        of failed η-paths (σ_b² = 0.5, 1) or values whose sign changes with the η-path (σ_b² = 0.3: xρ = 2.9e−47,
        −2.0e−44, 2.3e−46 at 2.2e−306 for η ratios 1/4, 1/2, 1/8), and its table stopped at 1.1e−14 with 3 % of the
        mass below it on a power law, off by up to 50 % (docs/derivations.md §2.6 (f)).

        The bound is F(x_high) ≤ F(η) ≤ 2 Re(1 + w(iη)) at the deepest point η ≥ x_high of the imaginary-axis solution
        (:attr:`_axis`; Re zG(iη) = ∫ η²/(η² + λ²) dμ ≥ μ([0, η])/2), and the rank inequality |F̃ − F| ≤ 2 Σ_j k_j P_j
        for the law F̃ that the factors' rules represent (each of the k_j copies of D_j changes on a fraction P_j of
        its diagonal). False (the probes run, as before) where no factor has an underflow atom, where the law does not
        take the axis path (:attr:`_axis_allowed`), and where the axis path stops above ``x_high``.
        """
        displaced = 2.0 * sum(abs(float(term.power)) * float(getattr(term.factor, "underflow_mass", 0.0)) for term in self.numerical)
        if not displaced > 0.0 or not self._axis_allowed or not _free_solver._DEEP_ETA > 0.0:
            return False
        log_x = math.log(x_high)
        within = lambda t: 2.0 * math.exp(t.real) * math.cos(t.imag) <= _EDGE_DISPLACED * displaced  # 2 Re(1 + w(iη))  # noqa: E731
        # the axis goes down only until a point meets the bound (any η ≥ x_high will do): depth-1 gelu's axis path fails
        # a little below x_high after ~0.1 s of halved steps at σ_b² = 0.5, 1, and its table needs it only to ~1e−283
        self._extend_axis(log_x, stop=within)
        axis = self._axis
        reached = np.flatnonzero(axis["log_eta"] >= log_x)
        return bool(reached.size) and within(complex(axis["t"][reached[-1]]))

    @cached_property
    def _hard_edge(self) -> HardEdge | None:
        """The distribution function of the first interval near a hard edge at 0, in s = ln x.

        There ρ ~ C x^{−α} (α = L/(L+1) for a Fuss–Catalan-type edge) and F ∝ x^κ, κ = 1 − α, so in s the
        measure xρ(x) ds is smooth and decays like e^{κs}. It is integrated by 8-point Gauss–Legendre on
        panels of a quarter decade below x_J, widening to 0.05/κ in ln x further down, from x_J (the first node of the cdf tables, ~6e−4 of the interval) down to
        the floor x_low: where F has fallen by 10^{−16} (16/κ decades) or to the smallest normal float,
        whichever comes first (the density is resolved there, ~1e−13 relative). The mass below the floor
        is the power law's x_low ρ(x_low)/κ when that is below 1e−7 (its relative error is of the order of
        F itself, so ≲ 1e−14 absolute), else — for deep laws, where much mass lies below every float
        (Fuss–Catalan of depth 1000: F(1e−300) = 0.50) — the interval's exact mass less the mass above the
        floor. ``None`` when the density near 0 is not positive (not resolved there).
        """
        if not self.intervals or self.intervals[0][0] != 0.0:
            return None
        nodes, _, above = self._raw_cdf_tables[0]
        x_j, total = float(nodes[1]), self._interval_masses[0]
        # κ from the density at the deepest resolved pair of points (the power law sets in late for deep
        # products: depth-200 Fuss–Catalan has a local exponent −1.0003 at 1e−3 of the interval, −200/201 at 0)
        probes = np.array([1e2 * _EDGE_FLOOR, 1e10 * _EDGE_FLOOR, 1e-5 * x_j, 1e-3 * x_j])  # two pairs (low, high)
        # Next to an atom at 0 the solver's w tends to −(1 − atom), and xρ(x) = −Im w/π carries an absolute
        # rounding noise ~1e−17 (depth-8 ReLU: 2.6× off at x = 1e−200, where xρ ~ 1e−27): only xρ above
        # _EDGE_NOISE counts as resolved there; the mass below is then ~_EDGE_NOISE/κ, far below 1e−7.
        noise = _EDGE_NOISE if any(loc == 0.0 for loc, _ in self.atoms) else 0.0
        # (factors that declare ``deep_probes = False`` — residual blocks, whose density at 1e−300 costs a cold solve
        # with refined η-steps, minutes — are probed at the upper pair only; κ only sets the table's depth here; so are
        # laws whose mass below the deep pair is that of their factors' underflow atoms, :meth:`_deep_probes_displaced`)
        deep = all(getattr(term.factor, "deep_probes", True) for term in self.numerical)
        deep = deep and not self._deep_probes_displaced(float(probes[1]))
        rho = self._pdf_vectorised(probes) if deep else np.concatenate([[np.nan, np.nan], self._pdf_vectorised(probes[2:])])
        good = np.isfinite(rho) & (rho > 0) & (probes * rho > noise)
        if not good[2:].all():
            return None
        i = 0 if good[:2].all() else 2
        kappa = min(max(1.0 - math.log(rho[i] / rho[i + 1]) / math.log(probes[i + 1] / probes[i]), 1e-6), 2.0)
        # panels: quarter decades below x_J, widening by 1.25 per panel down to 0.05/κ in ln x (F varies on
        # the scale 1/κ there: F = C x^κ (1 + c x^κ + …)), so a depth-1000 law needs ~40 panels, not 1200
        depth_limited = _EDGE_DEPTH / kappa < math.log10(x_j / _EDGE_FLOOR)
        bottom_log = math.log(x_j) - _EDGE_DEPTH / kappa * math.log(10.0) if depth_limited else math.log(_EDGE_FLOOR)
        step = math.log(10.0) / _EDGE_PANELS_PER_DECADE
        cap = max(step, 0.05 / kappa)
        ends = [math.log(x_j)]
        while ends[-1] > bottom_log:
            ends.append(max(ends[-1] - min(step * 1.25 ** (len(ends) - 1), cap), bottom_log))
        log_edges = np.array(ends[::-1])  # increasing
        g, gw = _GAUSS_8
        half = 0.5 * np.diff(log_edges)
        x = np.exp((0.5 * (log_edges[:-1] + log_edges[1:]))[:, None] + half[:, None] * g[None, :])
        density = self._edge_panel_density(x, noise)
        resolved = np.all(np.isfinite(density) & (density > 0) & (x * density > noise), axis=1)
        if not resolved.all():  # keep the panels above the highest unresolved one
            first = int(np.flatnonzero(~resolved)[-1]) + 1
            if first >= len(resolved):
                return None
            log_edges, x, density, half = log_edges[first:], x[first:], density[first:], half[first:]
            depth_limited = False  # the table did not reach its depth
        masses = (density * x * gw[None, :]).sum(axis=1) * half
        x_low = math.exp(log_edges[0])
        rho_low = self._pdf_vectorised(np.array([x_low, 10.0 * x_low]))
        if not np.all(np.isfinite(rho_low) & (rho_low > 0)):
            return None
        local = min(max(1.0 - math.log(rho_low[0] / rho_low[1]) / math.log(10.0), 1e-12), 2.0)
        tail = x_low * float(rho_low[0]) / local
        # (a depth-limited table whose power law still leaves more than _EDGE_TAIL_OK below it had its κ from the upper
        # probes — the lower ones unresolved — and F ∝ x^κ with slowly varying κ there: gelu at depth 1, σ_b² = 0.5,
        # whose mass below 1e−215 is 1.28e−6, the power law 0.35 % off; the subtraction below is exact to ~1e−13)
        if tail <= _EDGE_TAIL_OK:
            bottom, exponent = tail, local
        else:  # the mass above the floor subtracted from the exact total (absolute error ~1e−13)
            bottom = total - float(above[1]) - math.fsum(masses)
            if bottom > _EDGE_SUBTRACTION_NOISE:
                exponent = x_low * float(rho_low[0]) / bottom  # the exact d ln F/d ln x at the floor
            else:  # within the subtraction's rounding of 0: the power law, capped at that rounding
                bottom, exponent = min(tail, _EDGE_SUBTRACTION_NOISE), local
        cumulative = bottom + np.concatenate([[0.0], np.cumsum(masses)])
        edges_x = np.exp(log_edges)
        slopes = edges_x * self._pdf_vectorised(edges_x) / cumulative
        return HardEdge(log_edges, cumulative, exponent, slopes, total)

    @cached_property
    def _cdf_tables(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The generic tables, with the first panel at a hard edge at 0 taken from :attr:`_hard_edge`."""
        tables = list(self._raw_cdf_tables)
        edge = self._hard_edge
        if edge is None and self.intervals and self.intervals[0][0] == 0.0:  # the first panel, left out above
            nodes, below, above = tables[0]
            first = float(_tanhsinh(self._pdf_vectorised, nodes[:1], nodes[1:2], self._mass_atol)[0])
            tables[0] = (nodes, np.concatenate([[0.0], below[1:] + first]), np.concatenate([[above[0] + first], above[1:]]))
        if edge is not None:
            nodes, below, above = tables[0]
            pieces = np.diff(below)[1:]
            below = np.concatenate([[0.0], edge.cumulative[-1] + np.concatenate([[0.0], np.cumsum(pieces)])])
            # the mass below the interval's top is its exact mass (the sums above reach it to a few ulps, which
            # would leave cdf(upper edge) one ulp below 1 or sf's complement off by as much)
            below[-1] = edge.total
            above = np.concatenate([[edge.total], above[1:]])
            tables[0] = (nodes, below, above)
        return tables

    def _interval_cdf(self, i: int, x: np.ndarray) -> np.ndarray:
        edge = self._hard_edge if i == 0 else None
        if edge is None:
            return super()._interval_cdf(i, x)
        out = np.empty(x.shape)
        near = x < edge.top
        out[near] = self._edge_mass_below(edge, x[near])
        if (~near).any():
            out[~near] = super()._interval_cdf(i, x[~near])
        return out

    def _edge_mass_below(self, edge: HardEdge, x: np.ndarray) -> np.ndarray:
        """F near the hard edge: the table down to its floor, the log-variable table below it where the
        law has one (subnormal x), else the power law."""
        out = edge.mass_below(x, self._pdf_vectorised)
        tiny = (x > 0) & (np.log(np.where(x > 0, x, 1.0)) < edge.log_x[0])
        if tiny.any() and edge.cumulative[0] > _EDGE_TAIL_OK and self._deep_edge is not None:
            out[tiny] = self._below_floor_mass(np.log(x[tiny]), "x", float(x[tiny].min()))
        return out

    def _interval_sf(self, i: int, x: np.ndarray) -> np.ndarray:
        edge = self._hard_edge if i == 0 else None
        if edge is None:
            return super()._interval_sf(i, x)
        out = np.empty(x.shape)
        near = x < edge.top
        out[near] = edge.total - self._edge_mass_below(edge, x[near])
        if (~near).any():
            out[~near] = super()._interval_sf(i, x[~near])
        return out

    def _invert_interval(self, i: int, local: np.ndarray, upper_tail: bool) -> np.ndarray:
        """As :meth:`Law._invert_interval`; near a hard edge at 0 Newton's method in s = ln x on the exact
        mass of :meth:`HardEdge.mass_below`, from the log–log table's quantile (and the power law below the
        floor, in closed form: quantiles below the smallest float come out as 0)."""
        edge = self._hard_edge if i == 0 else None
        if edge is None:
            return self._invert_bulk(i, local, upper_tail)
        mass = edge.total - local if upper_tail else local
        near = mass < edge.cumulative[-1]
        out = np.empty(local.shape)
        if (~near).any():
            out[~near] = self._invert_bulk(i, local[~near], upper_tail)
        if near.any():
            target = mass[near]
            x = edge.edge_table().ppf(target)
            floor = target < edge.cumulative[0]
            if floor.any() and edge.cumulative[0] > _EDGE_TAIL_OK and self._deep_edge is not None:
                # quantiles below e^{−746} round to 0: only the targets above that mass are solved
                representable = floor & (target > self._mass_below_zero_quantile)
                x[floor] = 0.0
                if representable.any():
                    x[representable] = np.exp(self._deep_log_quantile(target[representable]))
            lo_s, hi_s = edge.log_x[0], edge.log_x[-1]
            s = np.log(np.where(floor, 1.0, x))
            # Newton in s per point: a point stops once its step is at rounding level in s or its mass is
            # matched to the rounding of the Gauss–Legendre sum (steps of noise/κ otherwise never end)
            active = np.flatnonzero(~floor & (x > 0))
            for _ in range(6):
                if active.size == 0:
                    break
                xa = np.exp(s[active])
                goal = target[active]
                g = self._edge_mass_below(edge, xa) - goal
                p = xa * self._pdf_vectorised(xa)
                with np.errstate(divide="ignore", invalid="ignore"):
                    step = np.where(p > 0, g / p, 0.0)
                s[active] = np.clip(s[active] - step, lo_s, hi_s)
                done = (np.abs(step) <= 1e-15 * np.maximum(1.0, np.abs(s[active]))) | (np.abs(g) <= 1e-15 * goal)
                active = active[~done]
            out[near] = np.where(floor, x, np.exp(s))
        return out

    def _invert_bulk(self, i: int, local: np.ndarray, upper_tail: bool) -> np.ndarray:
        """As :meth:`Law._invert_interval` (bracket from the cumulative table, Newton inside it, bisection
        otherwise, the same per-point convergence tests), with two savings: the start is the secant of the
        table's masses across the bracket (not its midpoint), and once a point's steps are short — within
        _SHORT_STEP of its distance to the nearest singular point, where ρ is analytic — the mass at the new
        iterate is the old one plus ∫ρ over the step by 8-point Gauss–Legendre (error ≲ (step/2δ)^16, far
        below the quadrature's 1e−13) instead of a tanh–sinh quadrature from the table node."""
        _, below, above = self._cdf_tables[i]
        lo, hi, k = self._table_bracket(i, local, upper_tail)
        with np.errstate(divide="ignore", invalid="ignore"):
            if upper_tail:
                frac = (above[k - 1] - local) / (above[k - 1] - above[k])
            else:
                frac = (local - below[k - 1]) / (below[k] - below[k - 1])
        x = lo + (hi - lo) * np.where(np.isfinite(frac), np.clip(frac, 0.01, 0.99), 0.5)
        singular = self._singular_points
        previous_x = np.full(x.shape, np.nan)
        previous_g = np.zeros(x.shape)
        g8, w8 = _GAUSS_8
        active = np.arange(local.size)
        for _ in range(80):
            if active.size == 0:
                break
            xa = x[active]
            px = previous_x[active]
            j = np.clip(np.searchsorted(singular, px), 1, singular.size - 1) if singular.size > 1 else np.zeros(px.shape, int)
            reach = np.minimum(np.abs(px - singular[j - 1]), np.abs(singular[j] - px)) if singular.size > 1 else np.abs(px)
            short = np.isfinite(px) & (np.abs(xa - px) <= _SHORT_STEP * reach)
            g = np.empty(xa.shape)
            if short.any():  # g grows by ∫ρ over the step (the mass below grows, the mass above shrinks)
                a, b = px[short], xa[short]
                half = 0.5 * (b - a)
                points = (0.5 * (a + b))[:, None] + half[:, None] * g8[None, :]
                g[short] = previous_g[active][short] + (self._pdf_vectorised(points) * w8[None, :]).sum(axis=1) * half
            far = ~short
            if far.any():
                if upper_tail:  # mass above x minus target: decreasing in x; flip the sign to increasing
                    g[far] = -(self._interval_sf(i, xa[far]) - local[active][far])
                else:
                    g[far] = self._interval_cdf(i, xa[far]) - local[active][far]
            previous_x[active], previous_g[active] = xa, g
            lo[active] = np.where(g < 0, xa, lo[active])
            hi[active] = np.where(g >= 0, xa, hi[active])
            x[active], converged = bracketed_mass_step(
                xa, g, self._pdf_vectorised(xa), lo[active], hi[active], local[active], self._mass_atol
            )
            active = active[~converged]
        return x

    # ------------------------------------------------------------------ the law of t = ln λ (log-scale view)
    def _below_floor_mass(self, t: np.ndarray, name: str, value: float) -> np.ndarray:
        """Continuous mass below e^t for t below the floor (~ln 2.2e−308): where the mass below the floor is
        ≤ 1e−7, the hard edge's power law F(x_low)·e^{κ(t − ln x_low)} (relative error of the order of F
        itself); above, the log-variable table :attr:`_deep_edge` (deep laws); ValueError where the law has
        none (a factor given through ψ, or the two masses below the floor disagree)."""
        if not self.intervals or self.intervals[0][0] > 0.0:
            return np.zeros(t.shape)
        edge = self._hard_edge
        deep = self._deep_edge if edge is not None and edge.cumulative[0] > _EDGE_TAIL_OK else None
        if deep is not None:
            ends, t_ends, slopes, cumulative, exponent = deep
            out = np.empty(t.shape)
            below = t < ends[0]
            out[below] = cumulative[0] * np.exp(exponent * (t[below] - ends[0]))
            inside = ~below
            if inside.any():
                si = np.minimum(t[inside], ends[-1])
                k = np.clip(np.searchsorted(ends, si, side="right") - 1, 0, len(ends) - 2)
                g, gw = _GAUSS_8
                half = 0.5 * (si - ends[k])
                nodes = ends[k][:, None] + half[:, None] * (1.0 + g[None, :])
                p = self._log_density(ends, t_ends, slopes, nodes.ravel()).reshape(nodes.shape)
                out[inside] = cumulative[k] + (p * gw[None, :]).sum(axis=1) * half
            return out
        if edge is None or edge.cumulative[0] > _EDGE_TAIL_OK:
            mass = "an unknown mass" if edge is None else f"mass {edge.cumulative[0]:.3g}"
            raise ValueError(
                f"{name} = {value!r} is out of reach: the law of ln λ is resolved down to ln λ = "
                f"{math.log(_EDGE_FLOOR):.6g}, and {mass} lies below, where F is not yet a power law ({self!r})"
            )
        return edge.cumulative[0] * np.exp(edge.exponent * (t - edge.log_x[0]))

    @cached_property
    def _deep_edge(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float] | None:
        """The law of s = ln λ below the hard-edge table's floor, for laws with much mass there.

        The characteristic equation involves z only through log z (see :meth:`_newton`), so it is solved
        at log z = s for s below ln(2.2e−308): from the table's floor downward along the real s axis
        (inside the support, the root with Im t ∈ (−π, 0); predictor t + Δs·dt/ds with dt/ds = −1/∂_t log χ),
        on panels widening to 0.05/κ, until F has fallen by 1e−16 (or, next to an atom at 0, to where
        sρ-rounding dominates); the density of s is p(s) = −Im w/π. Then the mass below the floor found
        this way must equal the one found by subtraction (the exact total less the mass above), to 1e−9;
        otherwise ``None`` (and the log view refuses). Only for laws whose factors are all rational.
        Returns (panel ends, increasing; t at them; dt/ds at them; cumulative mass; exponent below).
        """
        edge = self._hard_edge
        if edge is None or edge.cumulative[0] <= _EDGE_TAIL_OK or self.numerical:
            return None
        noise = _EDGE_NOISE if any(loc == 0.0 for loc, _ in self.atoms) else 0.0
        s0 = float(edge.log_x[0])
        kappa = edge.exponent
        start = self._solve(np.array([math.exp(s0)]))
        dummy = np.array([1j])

        def slope(t):
            return -1.0 / self._log_chi(t, [])[1]

        ends, ts, slopes = [s0], [start], [slope(start)]
        step = math.log(10.0) / _EDGE_PANELS_PER_DECADE
        cap = max(step, 0.05 / kappa)
        h = step
        target = edge.cumulative[0] * 1e-16
        while True:
            s_new = ends[-1] - h
            guess = ts[-1] - h * slopes[-1]
            t_new, _, ok = self._newton(dummy, guess, [], log_z=np.array([s_new + 0j]))
            if not (ok.all() and -math.pi < t_new[0].imag < 0):
                h *= 0.5
                if h < 1e-6:
                    return None
                continue
            ends.append(s_new)
            ts.append(t_new)
            slopes.append(slope(t_new))
            p = -math.exp(t_new[0].real) * math.sin(t_new[0].imag) / math.pi
            if p <= max(noise, kappa * target) or len(ends) > 20000:
                break
            h = min(1.5 * h, cap)
        ends_arr, t_arr, slope_arr = np.array(ends[::-1]), np.concatenate(ts[::-1]), np.concatenate(slopes[::-1])
        density = self._log_density(ends_arr, t_arr, slope_arr, ends_arr)
        g, gw = _GAUSS_8
        half = 0.5 * np.diff(ends_arr)
        nodes = (0.5 * (ends_arr[:-1] + ends_arr[1:]))[:, None] + half[:, None] * g[None, :]
        p_nodes = self._log_density(ends_arr, t_arr, slope_arr, nodes.ravel()).reshape(nodes.shape)
        masses = (p_nodes * gw[None, :]).sum(axis=1) * half
        local = max(math.log(density[1] / density[0]) / (ends_arr[1] - ends_arr[0]), 1e-12)  # d ln p/ds at the bottom
        tail = density[0] / local
        cumulative = tail + np.concatenate([[0.0], np.cumsum(masses)])
        if not abs(cumulative[-1] - edge.cumulative[0]) <= 1e-9:
            return None
        cumulative *= edge.cumulative[0] / cumulative[-1]  # the subtraction's value at the floor (~1e−13 change)
        return ends_arr, t_arr, slope_arr, cumulative, local

    @cached_property
    def _mass_below_zero_quantile(self) -> float:
        """The continuous mass below e^{−746} (below which e^s rounds to 0), from :attr:`_deep_edge`."""
        return float(self._below_floor_mass(np.array([-746.0]), "x", 0.0)[0])

    def _deep_log_quantile(self, local: np.ndarray) -> np.ndarray:
        """s = ln x with continuous mass ``local`` below x, below the floor (:attr:`_deep_edge`): Newton in s
        on the table's mass, from ln F interpolated linearly in s; the power law below the table."""
        ends, t_ends, slopes, cumulative, exponent = self._deep_edge
        result = ends[0] + np.log(local / cumulative[0]) / exponent
        inside = local >= cumulative[0]
        if inside.any():
            target = np.minimum(local[inside], cumulative[-1])
            k = np.clip(np.searchsorted(cumulative, target, side="right") - 1, 0, len(ends) - 2)
            lf0, lf1 = np.log(cumulative[k]), np.log(cumulative[k + 1])
            si = ends[k] + (np.log(target) - lf0) / (lf1 - lf0) * (ends[k + 1] - ends[k])
            active = np.arange(si.size)  # per point: a point stops once its own step is at rounding level
            for _ in range(8):
                if active.size == 0:
                    break
                sa = si[active]
                g = self._below_floor_mass(sa, "q", float(target.max())) - target[active]
                p = self._log_density(ends, t_ends, slopes, sa)
                step = np.where(p > 0, g / np.where(p > 0, p, 1.0), 0.0)
                si[active] = np.clip(sa - step, ends[k[active]], ends[k[active] + 1])
                active = active[np.abs(step) > 1e-14 * np.maximum(1.0, np.abs(si[active]))]
            result[inside] = si
        return result

    def _log_density(self, ends: np.ndarray, t_ends: np.ndarray, slopes: np.ndarray, s: np.ndarray) -> np.ndarray:
        """p(s) = −Im w(e^s)/π below the float range, Newton from the nearest solved point (a predictor)."""
        k = np.clip(np.searchsorted(ends, s), 0, len(ends) - 1)
        k = np.where((k > 0) & (np.abs(s - ends[np.maximum(k - 1, 0)]) < np.abs(s - ends[k])), k - 1, k)
        guess = t_ends[k] + (s - ends[k]) * slopes[k]
        t, _, ok = self._newton(np.full(s.shape, 1j), guess, [], log_z=s + 0j)
        if not ok.all():
            raise RuntimeError(f"{self!r}: the log-variable solve did not converge at s = {s[~ok][:3]}")
        return -np.exp(t.real) * np.sin(t.imag) / math.pi

    def _log_cdf(self, t: np.ndarray) -> np.ndarray:
        """P(ln λ ≤ t); t = −∞ is λ = 0 (atoms at 0). Numpy float64 array in, array out."""
        return self._log_tail(t, upper=False)

    def _log_sf(self, t: np.ndarray) -> np.ndarray:
        """P(ln λ > t)."""
        return self._log_tail(t, upper=True)

    def _log_tail(self, t: np.ndarray, upper: bool) -> np.ndarray:
        """cdf (or sf) of ln λ: through e^t above the floor, the mass below the floor under it."""
        t = np.asarray(t, float)
        out = np.full(t.shape, np.nan)
        low = t < math.log(_EDGE_FLOOR)
        high = ~low & ~np.isnan(t)
        if high.any():
            out[high] = (self._sf if upper else self._cdf)(np.exp(t[high]))
        if low.any():
            below = self._mass_at_zero() + self._below_floor_mass(t[low], "t", float(t[low].min()))
            out[low] = 1.0 - below if upper else below
        return out

    def _log_pdf(self, t: np.ndarray) -> np.ndarray:
        """Density of ln λ at t: e^t ρ(e^t) (the continuous part; κ F(e^t) below the floor)."""
        t = np.asarray(t, float)
        out = np.full(t.shape, np.nan)
        low = t < math.log(_EDGE_FLOOR)
        high = ~low & ~np.isnan(t)
        if high.any():
            with np.errstate(over="ignore"):
                x = np.exp(t[high])
            x = np.where(np.isfinite(x), x, 0.0)  # e^t beyond the float range: above the top edge, density 0
            out[high] = x * self._pdf_vectorised(x)
        if low.any():
            mass = self._below_floor_mass(t[low], "t", float(t[low].min()))
            deep = self._deep_edge if self._hard_edge is not None and self._hard_edge.cumulative[0] > _EDGE_TAIL_OK else None
            if deep is not None:
                ends, t_ends, slopes, _, exponent = deep
                tl = t[low]
                inside = tl >= ends[0]
                density = exponent * mass
                if inside.any():
                    density[inside] = self._log_density(ends, t_ends, slopes, tl[inside])
                out[low] = density
            else:
                out[low] = (self._hard_edge.exponent * mass) if self._hard_edge is not None else 0.0
        return out

    def _log_ppf(self, q: np.ndarray) -> np.ndarray:
        """The q-quantile of ln λ (−∞ inside the atoms at 0)."""
        q = np.asarray(q, float)
        zero = self._mass_at_zero()
        edge = self._hard_edge
        x = self._ppf(q)
        with np.errstate(divide="ignore"):
            out = np.log(x)
        low = (q > zero) & (x < _EDGE_FLOOR) & ~np.isnan(q)
        if low.any():
            self._below_floor_mass(np.array([-np.inf]), "q", float(q[low].max()))  # refuses where not resolved
            local = q[low] - zero
            deep = self._deep_edge if edge.cumulative[0] > _EDGE_TAIL_OK else None
            if deep is None:
                out[low] = edge.log_x[0] + np.log(local / edge.cumulative[0]) / edge.exponent
            else:
                out[low] = self._deep_log_quantile(local)
        return out

    def _log_isf(self, p: np.ndarray) -> np.ndarray:
        """Inverse survival function of ln λ: ln isf(p); below the floor the lower-tail quantile
        :meth:`_log_ppf` at 1 − p (an absolute error of 1e−16 in p, as the mass there is far from 0)."""
        p = np.asarray(p, float)
        x = self._isf(p)
        with np.errstate(divide="ignore"):
            out = np.log(x)
        low = (x < _EDGE_FLOOR) & (p < 1.0 - self._mass_at_zero()) & ~np.isnan(p)
        if low.any():
            out[low] = self._log_ppf(1.0 - p[low])
        return out

    def _log_mean(self) -> float:
        """E[ln λ]: −∞ with an atom at 0; else the atoms, plus ∫ ln x ρ(x) dx by tanh–sinh above the hard-edge
        table, ∫ s p(s) ds (s = ln x) by Gauss–Legendre on its panels and on the log-variable table below the
        float range, and the power-law tail ∫ s dF = F(s_b)(s_b − 1/κ) below that (Fuss–Catalan: −L)."""
        self._require_density()
        if self._mass_at_zero() > 0.0:
            return -math.inf
        terms = [m * math.log(loc) for loc, m in self.atoms]
        g, gw = _GAUSS_8
        log_integrand = lambda x: np.log(np.where(x > 0, x, 1.0)) * self._pdf_vectorised(x)  # noqa: E731
        for i, (a, b) in enumerate(self.intervals):
            edge = self._hard_edge if i == 0 else None
            if edge is None:
                nodes, _, _ = self._raw_cdf_tables[i]
                if a == 0.0:
                    raise ValueError(f"E[ln λ] of {self!r}: the density near 0 is not resolved")
                terms.append(float(np.sum(_tanhsinh(log_integrand, nodes[:-1], nodes[1:], self._mass_atol))))
                continue
            nodes, _, _ = self._raw_cdf_tables[i]
            terms.append(float(np.sum(_tanhsinh(log_integrand, nodes[1:-1], nodes[2:], self._mass_atol))))
            half = 0.5 * np.diff(edge.log_x)
            s_nodes = (0.5 * (edge.log_x[:-1] + edge.log_x[1:]))[:, None] + half[:, None] * g[None, :]
            x = np.exp(s_nodes)
            terms.append(float(np.sum((s_nodes * x * self._pdf_vectorised(x) * gw[None, :]).sum(axis=1) * half)))
            deep = self._deep_edge if edge.cumulative[0] > _EDGE_TAIL_OK else None
            if edge.cumulative[0] > _EDGE_TAIL_OK and deep is None:
                self._below_floor_mass(np.array([-np.inf]), "t", -math.inf)  # refuses
            if deep is None:
                terms.append(edge.cumulative[0] * (edge.log_x[0] - 1.0 / edge.exponent))
            else:
                ends, t_ends, slopes, cumulative, exponent = deep
                half = 0.5 * np.diff(ends)
                s_nodes = (0.5 * (ends[:-1] + ends[1:]))[:, None] + half[:, None] * g[None, :]
                p = self._log_density(ends, t_ends, slopes, s_nodes.ravel()).reshape(s_nodes.shape)
                terms.append(float(np.sum((s_nodes * p * gw[None, :]).sum(axis=1) * half)))
                terms.append(cumulative[0] * (ends[0] - 1.0 / exponent))
        return math.fsum(terms)

    # ------------------------------------------------------------------ tables (method="table") and sampling
    @cached_property
    def _sampling_tables(self) -> list[tuple[np.ndarray, np.ndarray, EdgeTable | None]]:
        """Per interval: (cumulative continuous mass at the nodes, nodes, hard-edge table), 2049 Chebyshev nodes.

        Panel masses by 8-point Gauss–Legendre (tanh–sinh on the 4 panels at each end, where the
        density may have an integrable singularity). For an interval starting at 0 the nodes below node
        ``_EDGE_NODE`` (~6e−4 of the interval) take the exact mass of :attr:`_hard_edge` (whose log–log table
        interpolates there), and the cumulative sum starts from the mass at that node (mass below the
        smallest float included); then each interval is rescaled to its mass (a ~1e−10 change).
        """
        g, gw = _GAUSS_8
        tables = []
        for i, (a, b) in enumerate(self.intervals):
            theta = np.linspace(0.0, np.pi, _SAMPLING_NODES)
            nodes = a + (b - a) * 0.5 * (1.0 - np.cos(theta))
            nodes[0], nodes[-1] = a, b
            lo, hi = nodes[:-1], nodes[1:]
            half = 0.5 * (hi - lo)
            x = half[:, None] * g[None, :] + (0.5 * (hi + lo))[:, None]
            masses = (self._pdf_vectorised(x) * gw[None, :]).sum(axis=1) * half
            edge = self._hard_edge if i == 0 else None
            # (with a hard-edge table the panels below _EDGE_NODE take its masses: no tanh–sinh there, whose nodes
            # reach x ~ 1e−300, each a cold solve)
            ends = np.r_[0 if edge is None else 4 : 4, len(lo) - 4 : len(lo)]
            masses[ends] = _tanhsinh(self._pdf_vectorised, lo[ends], hi[ends], self._mass_atol)
            cumulative = np.concatenate([[0.0], np.cumsum(masses)])
            if edge is not None:
                near = edge.mass_below(nodes[1 : _EDGE_NODE + 1], self._pdf_vectorised)
                cumulative[1 : _EDGE_NODE + 1] = near
                cumulative[_EDGE_NODE:] = near[-1] + np.concatenate([[0.0], np.cumsum(masses[_EDGE_NODE:])])
            cumulative *= self._interval_masses[i] / cumulative[-1]
            tables.append((cumulative, nodes, edge.edge_table() if edge is not None else None))
        return tables

    @cached_property
    def _cdf_interpolants(self) -> list[Any]:
        """Per interval: the cubic Hermite interpolant of the tabulated F with the exact slopes F' = ρ at
        the nodes (O(h⁴); PCHIP's estimated slopes are O(h) and left 3e−6 errors where F ∝ x^{1/6}).
        The first node is left out when the density diverges there (a hard edge at 0)."""
        from scipy.interpolate import CubicHermiteSpline

        out = []
        for (a, b), (cumulative, nodes, _) in zip(self.intervals, self._sampling_tables):
            keep = np.concatenate([[True], np.diff(nodes) > 0])
            x, f = nodes[keep], cumulative[keep]
            slope = self._pdf_vectorised(x)  # 0 at the end points (outside the open support)
            start = 1 if a == 0.0 else 0
            out.append(CubicHermiteSpline(x[start:], f[start:], slope[start:]))
        return out

    def _cdf_table(self, x: np.ndarray) -> np.ndarray:
        """The distribution function from the tables (``cdf(x, method="table")``): fast, for many points.

        Between the 2049 Chebyshev nodes of each interval a cubic Hermite interpolant with the exact slopes
        ρ; below ~6e−4 of an interval starting at 0 (a hard edge) ln F against ln x on quarter decades
        (:attr:`_hard_edge`, down to ~2e−308 or where F is 1e−16 of its value there), the power law F ∝ x^κ
        below; atoms with their exact masses, and F exactly constant outside the intervals (at an atom at
        0, F(0) is the atom's mass). Accuracy (tests, against the closed-form Fuss–Catalan cdf): ≤ 2e−7
        absolute everywhere, ≤ 5e−7 relative below 1e−2 (depths 2–50); deep laws keep the mass below the
        smallest float.
        """
        from scipy.interpolate import PchipInterpolator

        x = np.asarray(x, float)
        out = self._atoms_at_most(x)
        for i, ((a, b), (cumulative, nodes, edge), hermite) in enumerate(
            zip(self.intervals, self._sampling_tables, self._cdf_interpolants)
        ):
            clipped = np.clip(x, a, b)
            inside = hermite(clipped)
            if edge is not None:  # hard edge at 0: the log–log table below node _EDGE_NODE
                near = (x > a) & (x < nodes[_EDGE_NODE])
                inside[near] = edge.cdf(x[near])
            elif a == 0.0:  # below the first node the density may diverge: the monotone PCHIP there
                first = clipped < nodes[1]
                keep = np.concatenate([[True], np.diff(nodes) > 0])
                inside[first] = PchipInterpolator(nodes[keep], cumulative[keep])(clipped[first])
            inside = np.where(x <= a, 0.0, np.where(x >= b, cumulative[-1], inside))
            out += np.clip(inside, 0.0, cumulative[-1])
        return out

    def _sf_table(self, x: np.ndarray) -> np.ndarray:
        """1 − the tabulated cdf, summed piece by piece (absolute accuracy as :meth:`_cdf_table`)."""
        x = np.asarray(x, float)
        below = self._cdf_table(x) - self._atoms_at_most(x)
        return self._atoms_above(x) + np.maximum(math.fsum(self._interval_masses) - below, 0.0)

    def _ppf_table(self, q: np.ndarray) -> np.ndarray:
        """The quantile function from the tables (``ppf(q, method="table")``): a monotone (PCHIP) interpolant
        of the inverse through the 2049 nodes per interval, the log–log table near a hard edge at 0, atoms
        with their exact masses. Accuracy (tests): ≤ 5e−5 relative in x against the exact quantiles."""
        from scipy.interpolate import PchipInterpolator

        q = np.asarray(q, float)
        if any(a < loc < b for loc, _ in self.atoms for a, b in self.intervals):
            return self._ppf(q)
        pieces = [(loc, "atom", m) for loc, m in self.atoms]
        pieces += [(a, "part", i) for i, (a, _) in enumerate(self.intervals)]
        pieces.sort(key=lambda p: (p[0], 0 if p[1] == "atom" else 1))
        out = np.full(q.shape, self.support[1])
        done = np.isnan(q)
        accumulated = 0.0
        for loc, kind, data in pieces:
            if kind == "atom":
                hit = ~done & (q <= accumulated + data)
                out[hit] = loc
                accumulated += data
            else:
                cumulative, nodes, edge = self._sampling_tables[data]
                hit = ~done & (q <= accumulated + cumulative[-1])
                if hit.any():
                    local = np.clip(q[hit] - accumulated, 0.0, cumulative[-1])
                    keep = np.concatenate([[True], np.diff(cumulative) > 0])
                    x = np.clip(PchipInterpolator(cumulative[keep], nodes[keep])(local), nodes[0], nodes[-1])
                    if edge is not None:  # hard edge at 0: the log–log table below node _EDGE_NODE
                        near = (local > 0) & (local < cumulative[_EDGE_NODE])
                        x[near] = np.clip(edge.ppf(local[near]), nodes[0], nodes[_EDGE_NODE])
                    out[hit] = x
                accumulated += cumulative[-1]
            done |= hit
        out[q == 0.0] = self.support[0]
        out[q == 1.0] = self.support[1]
        return out

    def _isf_table(self, p: np.ndarray) -> np.ndarray:
        return self._ppf_table(1.0 - np.asarray(p, float))

    def _sample_uniform(self, u: np.ndarray) -> np.ndarray:
        """Inverse-transform sampling through the tabulated quantile function (:meth:`_ppf_table`)."""
        return self._ppf_table(u)
