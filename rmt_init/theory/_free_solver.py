"""The density of a free product: Newton's method for t = log(1 + w), w = ψ(1/z), jointly with the numerical factors'
ψ_j(u_j) = s_j w, continued in η from far above the spectrum down to the real axis, with warm starts, seeds, the
imaginary-axis start next to 0 and the retries of points no path solves (docs/derivations.md §2.4–§2.6).

A mixin of :class:`~rmt_init.theory.free.FreeProductLaw`, which holds the terms and moments it reads; see that
module's docstring for the conventions.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from ._free_edges import _ATOM_TOL

if TYPE_CHECKING:
    from .free import Term

_NEWTON_TOL = 4e-15
_INNER_STEPS = 4
_INNER_SUBSET = True  # Newton's inner steps evaluate only the points they move (False: all active points, as before)
_WARM_REACH = 0.25  # a warm start (FreeProductLaw._solve) reaches |ln x − ln x_ref| ≤ this × ln x_ref's distance to a singular point
_WARM_MAX_GAP = 1.0  # … and at most this
_WARM_ITERATIONS = 12
_WARM_INNER = 0  # inner steps of the warm Newton (joint steps next to a root; None: _INNER_STEPS, as before) …
_WARM_JOINT_POWER = 100  # … for laws whose numerical factors' powers are at most this (deeper: ρ_j enters the joint step
# times the power, and depth-1000 tanh's sampling tables took 25 % longer with joint steps, depth 100 the same, depth 6 −25 %)
_WARM_REMEMBER = True  # warm-started roots are remembered too (False: only the η-continuation's)
_WARM_JUMP = 0.25  # a warm Newton root farther than this × the predictor's step from the predictor is rejected
_DEEP_ETA = 1e-2  # η-continuation below this × the spectral scale: steps of ratio³ from the tangent
_BRIDGE_STEPS = 4  # sub-steps in ln x of the bridged warm start (FreeProductLaw._solve_bridged; 0: none, as before)
_WARM_AGAIN = 4  # more warm passes for the points a seeded first pass's warm Newton rejects (FreeProductLaw._solve)
_SEED_MIN = 32  # more cold points than this are solved from seeds (FreeProductLaw._solve)
_SOLUTIONS_CAP = 1 << 16  # remembered solutions per law (~3 MB)
_CONTINUATION_FLOOR = 1e-3  # η-continuation stops at this fraction of the distance to the nearest edge
_AXIS_X = 1e-4  # points 0 < x ≤ this × the spectral scale start on the imaginary axis (FreeProductLaw._continue)
_AXIS_START = 4.0  # … at the tabulated η ≤ this × x, from the tangent
_AXIS_PREDICTOR_TOL = 0.05  # the axis path's steps keep the tangent predictor within this of the root
_AXIS_MAX_STEP = 8.0 * math.log(64.0)  # … and at most this in ln η
_REFINE_FIRST = 4  # a failed continuation step is first redone in this many (laws with tangent steps; 0: the 40 only)
_RETRY_RATIOS = (0.5, 0.25)  # a point whose η-continuation failed is solved alone on these paths, first converged wins
_LOG_FLOAT_MAX = math.log(np.finfo(float).max)  # … (unless a u_j = e^τ_j of its iterate lies beyond e^{±this})
_UNSOLVED_NOISE = 1e-15  # … and if none converges, its iterate is kept only if xρ = −Im w/π reads below this (density 0)


class FreeProductSolver:
    """The density solver of :class:`~rmt_init.theory.free.FreeProductLaw` (a mixin)."""

    # ------------------------------------------------------------------ log χ and its derivatives
    def _log_chi(self, t: np.ndarray, taus: list[np.ndarray]):
        """log χ (up to 2πi) in the unknowns t = log(1 + w), τ_j = log u_j.

        Returns (log χ, ∂/∂t at fixed τ, [(ρ_j, ∂ρ_j/∂τ_j, s_j, power_j)]) with the residuals
        ρ_j = (1 + ψ_j(u_j)) − (1 + s_j w) of the numerical factors (∂ρ_j/∂t = −s_j (1 + w)).
        """
        w = np.expm1(t)
        one_plus_w = np.exp(t)
        value = np.log(w) - t
        slope = one_plus_w / w - 1.0
        for term in self.rational:
            v, d = term.factor.log_s(w, t, float(term.scale))
            value += term.power * v
            slope += term.power * d
        extras = []
        for term, tau, (one_plus_psi, u_dpsi, psi) in zip(self.numerical, taus, _numerical_psi(self.numerical, taus)):
            s = float(term.scale)
            one_plus_sw = one_plus_w if s == 1.0 else 1.0 + s * w
            log_one_plus_sw = t if s == 1.0 else np.log1p(s * w)
            value += term.power * (tau + log_one_plus_sw - np.log(s * w))
            slope += term.power * (s * one_plus_w / one_plus_sw - one_plus_w / w)
            # ρ_j = ψ_j − s w from ψ_j itself where the factor gives it: (1 + ψ_j) − (1 + s w) carries the rounding
            # of 1 + ψ_j (~1e−16 absolute), which the depth amplifies where |w| ≪ 1 (next to a deep law's top edge)
            rho = one_plus_psi - one_plus_sw if psi is None else np.where(np.isnan(psi), one_plus_psi - one_plus_sw, psi - s * w)
            if self._psi_watch is not None:
                self._watch_psi(term, tau, one_plus_psi, u_dpsi)
            extras.append((rho, u_dpsi, s * one_plus_w, term.power, term.factor.psi_tolerance * np.abs(one_plus_psi)))
        return value, slope, extras

    #: while a point's last-resort continuation runs (:meth:`_watched_continue`): the first (factor, u) at which a
    #: numerical factor returned a non-finite 1 + ψ or uψ' at a finite u ≠ 0, else None (not watching: None)
    _psi_watch: list | None = None

    def _watch_psi(self, term: Term, tau: np.ndarray, one_plus_psi: np.ndarray, u_dpsi: np.ndarray) -> None:
        """Record in :attr:`_psi_watch` the first finite u = e^τ at which ``term``'s factor gave a non-finite value."""
        if self._psi_watch:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            u = np.exp(np.asarray(tau, complex))
            bad = np.isfinite(u) & (u != 0) & ~(np.isfinite(one_plus_psi) & np.isfinite(u_dpsi))
        if np.any(bad):
            self._psi_watch.append((term.factor, complex(np.ravel(u)[np.flatnonzero(np.ravel(bad))[0]])))

    # a factor's ψ is NaN where its own solve failed; those steps are rejected below (np.isfinite), not warned about
    @np.errstate(divide="ignore", invalid="ignore")
    def _newton(self, z: np.ndarray, t: np.ndarray, taus: list[np.ndarray], iterations: int = 40, log_z: np.ndarray | None = None,
                slopes: list | None = None, inner: int | None = None):
        """Newton on Log(zχ) = 0 and ψ_j(u_j) = s_j w in (t, τ_j); keeps Im w < 0 (Im t ∈ (−π, 0)) for Im z > 0.

        z enters only through log z: ``log_z`` (if given) replaces np.log(z), so that z = e^{log z} may lie
        below the float range (then pass z = 1j to keep the branch guard, valid inside the support).
        Each point is iterated until it converges (or its step is rejected as non-finite: it then keeps its
        last finite iterate, reported as not converged); converged points are not evaluated again.
        ``slopes`` (a list, if given) receives the reduced slope ∂_t log χ + Σ_j k_j s_j (1 + w)/(u_j ψ_j') and each
        dτ_j/dt = s_j (1 + w)/(u_j ψ_j') at each converged point's last evaluation (one step before its root, within
        Newton's tolerance; NaN where not converged): the data :meth:`_remember` keeps, without another evaluation.
        ``inner``: inner steps per outer step (default _INNER_STEPS); with fewer, the outer step is the joint Newton
        step in (t, τ_j) (fine next to a root: warm starts), and a point counts as converged by its step only once
        every ρ_j is also at the inner steps' tolerance."""
        shape = np.shape(z)
        z = np.asarray(z).reshape(-1)
        t = np.array(t, complex).reshape(-1)
        taus = [np.array(tau, complex).reshape(-1) for tau in taus]
        converged = np.zeros(z.shape, bool)
        log_z = (np.log(z) if log_z is None else np.asarray(log_z, complex)).reshape(-1)
        active = np.arange(z.size)
        if slopes is not None:
            slope_out = np.full(z.shape, np.nan, complex)
            dtaus_out = [np.full(z.shape, np.nan, complex) for _ in taus]
        # a zero ∂ψ/∂τ (at a pole of a discrete factor's ψ) makes the step non-finite: rejected below, so the
        # divisions that form it are silenced here
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for _ in range(iterations):
                if active.size == 0:
                    break
                za, ta, lza = z[active], t[active], log_z[active]
                taua = [tau[active] for tau in taus]
                positive_eta = za.imag > 0
                log_chi, a, extras = self._log_chi(ta, taua)
                # inner Newton: solve ψ_j(u_j) = s_j w at the current t first, so that the outer step is
                # Newton's step on the reduced equation Log(zχ(w)) = 0 alone. (A joint step in (t, τ_j) lets the
                # residuals ρ_j enter multiplied by the power of the factor — the depth — and diverges for deep
                # products far from the spectrum.)
                inner_steps = _INNER_STEPS if inner is None else inner
                for _inner in range(inner_steps if extras else 0):
                    big = np.zeros(za.shape, bool)
                    for tau, (rho, u_dpsi, s_opw, k, noise) in zip(taua, extras):
                        floor = np.maximum(2.0 * noise, _tau_rounding(tau, u_dpsi))
                        big |= np.abs(rho) > np.maximum(1e-14 * np.abs(s_opw), floor)
                    if not big.any():
                        break
                    for tau, (rho, u_dpsi, *_) in zip(taua, extras):
                        step = np.where(big, rho / u_dpsi, 0)
                        tau[...] = np.where(np.isfinite(step), tau - step, tau)
                    sub = np.flatnonzero(big)
                    if _INNER_SUBSET and sub.size < big.size:
                        # only the points whose τ_j moved are evaluated again (the others' values are unchanged:
                        # _log_chi is point-wise), so a few slow points no longer cost a full evaluation per step
                        log_chi_s, a_s, extras_s = self._log_chi(ta[sub], [tau[sub] for tau in taua])
                        log_chi, a = log_chi.copy(), a.copy()
                        log_chi[sub], a[sub] = log_chi_s, a_s
                        merged = []
                        for full, part in zip(extras, extras_s):
                            fields = []
                            for f_full, f_part in zip(full, part):
                                if isinstance(f_full, np.ndarray):
                                    f_full = np.array(f_full, dtype=np.result_type(f_full, f_part))
                                    f_full[sub] = f_part
                                fields.append(f_full)
                            merged.append(tuple(fields))
                        extras = merged
                    else:
                        log_chi, a, extras = self._log_chi(ta, taua)
                r0 = lza + log_chi
                r0 = r0.real + 1j * np.angle(np.exp(1j * r0.imag))  # principal Log(zχ)
                numerator = r0.copy()
                denominator = a.copy()
                for rho, u_dpsi, s_opw, k, _ in extras:
                    numerator -= k * rho / u_dpsi
                    denominator += k * s_opw / u_dpsi
                dt = -numerator / denominator
                too_big = np.abs(dt) > 1.0
                dt[too_big] /= np.abs(dt[too_big])
                for _halving in range(40):
                    bad = positive_eta & (((ta + dt).imag >= 0) | ((ta + dt).imag <= -math.pi))
                    if not bad.any():
                        break
                    dt[bad] *= 0.5
                new_taus = [tau + (s_opw * dt - rho) / u_dpsi for tau, (rho, u_dpsi, s_opw, *_) in zip(taua, extras)]
                # a step into a pole of ψ (or from a non-finite slope) is rejected: those points keep their
                # last finite iterate and are reported as not converged, so the caller refines them
                finite = np.isfinite(ta + dt)
                for new_tau in new_taus:
                    finite &= np.isfinite(new_tau)
                dt = np.where(finite, dt, 0)
                for tau, tau_a, new_tau in zip(taus, taua, new_taus):
                    tau[active] = np.where(finite, new_tau, tau_a)
                t[active] = ta + dt
                residual = np.abs(r0)
                # the residual cannot go below the rounding of the sum of logarithms that forms it, nor below
                # the error of a numerical ψ_j carried into log χ through τ_j (times the factor's power)
                rounding = 1e-15 * (self._n_logs + np.abs(lza) + np.abs(log_chi))
                for tau, (rho, u_dpsi, s_opw, k, noise) in zip(taua, extras):
                    residual = np.maximum(residual, np.abs(rho) / np.abs(s_opw))
                    rounding = rounding + abs(k) * (2.0 * noise / np.abs(u_dpsi) + _tau_rounding(tau, u_dpsi) / np.abs(s_opw))
                small_step = np.abs(dt) <= _NEWTON_TOL * np.maximum(1.0, np.abs(ta + dt))
                if inner_steps < _INNER_STEPS:  # joint steps: τ_j must have converged too
                    for tau, (rho, u_dpsi, s_opw, k, noise) in zip(taua, extras):
                        floor = np.maximum(2.0 * noise, _tau_rounding(tau, u_dpsi))
                        small_step &= np.abs(rho) <= np.maximum(1e-14 * np.abs(s_opw), floor)
                # no convergence where the rounding bound is not finite, nor where the step took some u_j = e^{τ_j}
                # out of the float range: a |uψ'| ~ 1e−68 gave τ steps to ~1e67 with a bound 2·noise/|uψ'| ~ 1e55 that
                # passed any residual (depth-1 gelu, σ_b² = 1); the point stays unconverged and takes the fallbacks
                trusted = np.isfinite(rounding)
                for new_tau in new_taus:
                    trusted &= np.abs(new_tau.real) <= _LOG_FLOAT_MAX
                done = finite & trusted & (small_step | (residual <= rounding))
                converged[active] = done
                if slopes is not None and done.any():
                    slope_out[active[done]] = denominator[done]
                    for out, (_, u_dpsi, s_opw, *_) in zip(dtaus_out, extras):
                        out[active[done]] = (s_opw / u_dpsi)[done]
                # a rejected step repeats itself: such a point stays where it is, unconverged
                active = active[finite & ~done]
        if slopes is not None:
            slopes.append((slope_out.reshape(shape), [d.reshape(shape) for d in dtaus_out]))
        return t.reshape(shape), [tau.reshape(shape) for tau in taus], converged.reshape(shape)

    def _solve(self, x: np.ndarray, ratio: float = 0.25) -> np.ndarray:
        """t = log(1 + w), w = ψ(1/z), at z = x + i0 inside the support.

        Where a solution at a nearby point x_ref is known (:attr:`_solutions`: every point solved inside the
        support so far), Newton at z = x + i0 from the predictor t_ref + (s − s_ref)·dt/ds, s = ln z,
        dt/ds = −1/∂_t log χ — a few steps instead of the η-continuation's dozens of solves. The equation
        involves z only through s (:meth:`_newton`), and t(s + i0) is analytic in s away from the logarithms
        of the positive singular points (edges, atoms; 0 is at s = −∞): "nearby" is |s − s_ref| ≤
        _WARM_REACH·δ (δ: the distance in s from s_ref to the nearest of them, with none between) and ≤
        _WARM_MAX_GAP. A warm point is kept when Newton converged to a root inside the support (−π < Im t < 0);
        the others take the continuation (:meth:`_solve_cold`). With numerically inverted factors the unknowns
        τ_j = log u_j start from τ_ref + (t − t_ref)·dτ_j/dt, dτ_j/dt = s_j(1 + w)/(u ψ_j'), dt/ds = −1/(∂_t log χ
        + Σ_j k_j s_j (1 + w)/(u ψ_j')) (the reduced equation's slope, as in :meth:`_newton`), and a warm point
        is kept only if each u_j also stays on its branch (Im u_j ≤ 0). Next to a root, warm Newton takes joint steps in
        (t, τ_j) (``_WARM_INNER = 0``: no inner steps, about half the ψ evaluations; for factors of power ≤
        _WARM_JOINT_POWER), and the roots it accepts are
        remembered too (``_WARM_REMEMBER``), with the slopes its last evaluation gave, so that a table's later passes
        (tanh–sinh levels, the hard-edge and sampling tables) start next to them. In a seeded first pass, the points
        the warm pass from the seeds rejects get up to ``_WARM_AGAIN`` more warm passes from the roots accepted so far
        (the same acceptance), and only those still rejected take the continuation.
        """
        x = np.asarray(x, float)
        t = np.empty(x.shape, complex)
        cold = np.ones(x.shape, bool)
        if ratio == 0.25 and x.size:
            warm_t, warm = self._solve_warm(x)
            t[warm] = warm_t[warm]
            cold = ~warm
        if ratio == 0.25 and cold.sum() > _SEED_MIN:
            # many cold points (a table's first pass): the continuation at seeds within warm reach of all of
            # them, then Newton from the seeds for the rest (those not accepted take the continuation below)
            idx = np.flatnonzero(cold)
            seeds = idx[self._seeds(x[idx])]
            tc, taus = self._solve_cold_taus(x[seeds], ratio)
            t[seeds] = tc
            cold[seeds] = False
            self._remember(x[seeds], tc, taus)
            warm_t, warm = self._solve_warm(x[cold])
            rest = np.flatnonzero(cold)
            t[rest[warm]] = warm_t[warm]
            cold[rest[warm]] = False
            for _ in range(_WARM_AGAIN):
                # the points that warm pass rejected (too far from a seed for the predictor: gelu at depth 1, σ_b² = 1,
                # 674 of a sampling table's 16384, 4.2 s of η-continuation) again from the roots it accepted and
                # remembered, now next to them — as the table's later passes would start them
                if not (warm.any() and cold.any()):
                    break
                rest = np.flatnonzero(cold)
                warm_t, warm = self._solve_warm(x[rest])
                t[rest[warm]] = warm_t[warm]
                cold[rest[warm]] = False
        if ratio == 0.25 and _BRIDGE_STEPS and cold.any() and self._tangent_steps:
            # the points no warm pass took, away from 0: warm Newton over a few sub-steps from the nearest root
            rest = np.flatnonzero(cold)
            bridged_t, bridged = self._solve_bridged(x[rest])
            t[rest[bridged]] = bridged_t[bridged]
            cold[rest[bridged]] = False
        if cold.any():
            tc, taus = self._solve_cold_taus(x[cold], ratio)
            t[cold] = tc
            self._remember(x[cold], tc, taus)
        return t

    def _nearest_solution(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(ln x, the remembered ln x_ref (sorted), the index k of the nearest one to each x, whether x lies on its
        side of every positive singular point)."""
        with np.errstate(divide="ignore"):
            log_x = np.log(np.where(x > 0, x, 0.0))
        ref = self._solutions["log_x"]
        k = np.clip(np.searchsorted(ref, log_x), 1, ref.size - 1) if ref.size > 1 else np.zeros(x.shape, int)
        if ref.size > 1:
            k = np.where(np.abs(log_x - ref[k - 1]) < np.abs(log_x - ref[k]), k - 1, k)
        singular = np.log(self._singular_points[self._singular_points > 0])
        same_side = np.searchsorted(singular, log_x) == np.searchsorted(singular, ref[k])
        return log_x, ref, k, same_side

    def _solve_bridged(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, accepted) for points the warm passes rejected, by :meth:`_solve_warm` at _BRIDGE_STEPS points evenly spaced
        in ln x from the nearest remembered solution to x (the last one x itself), each started from the root the
        previous one accepted and remembered; a point is accepted where every sub-step was (the same Newton, branch and
        jump checks as a warm start, each over a quarter of the gap). Only for x above _AXIS_X × the axis scale (next to
        0 the points take the imaginary-axis start, whose verdicts the hard-edge table reads) and within _WARM_MAX_GAP in
        ln x of the reference, on its side of every positive singular point; and only for laws that take tangent steps
        (:attr:`_tangent_steps`: no atoms, factors' ψ without poles off the cut — with atoms or discrete factors another
        root of the same equations may lie near the path, the case the jump check was made for).

        Where the density has a sharp feature inside the support (depth-1 gelu near x ≈ 0.02–0.03, the image of d's
        interior local maximum), the warm predictor over a full gap is rejected by its jump check (the root it converges
        to is the right one, but 0.2–0.5 × the predictor's step away), and one such point alone took the η-continuation
        from far above: ~250 evaluations of ψ near the cut, 0.06–0.1 s each, several per table. A root reached by
        accepted sub-steps is the same boundary value t(x + i0), continued along the support (docs/derivations.md
        §2.6 (h))."""
        t = np.zeros(x.shape, complex)
        accepted = np.zeros(x.shape, bool)
        memo = self._solutions
        if memo["log_x"].size == 0 or _BRIDGE_STEPS < 2:
            return t, accepted
        log_x, ref, k, same_side = self._nearest_solution(x)
        low = _AXIS_X * self._axis_scale if self._axis_allowed else 0.0
        alive = np.flatnonzero((x > low) & same_side & (np.abs(log_x - ref[k]) <= _WARM_MAX_GAP) & (log_x != ref[k]))
        start = ref[k[alive]]
        for j in range(1, _BRIDGE_STEPS + 1):
            if alive.size == 0:
                break
            if j < _BRIDGE_STEPS:
                xj = np.exp(start + (log_x[alive] - start) * (j / _BRIDGE_STEPS))
            else:
                xj = x[alive]
            tj, ok = self._solve_warm(xj)
            if j == _BRIDGE_STEPS:
                t[alive[ok]] = tj[ok]
                accepted[alive[ok]] = True
            alive, start = alive[ok], start[ok]
        return t, accepted

    def _seeds(self, x: np.ndarray) -> np.ndarray:
        """Indices of a subset of x > 0 such that every x is within warm reach (see :meth:`_solve`) of one on its
        side of every positive singular point (greedy in ln x); x ≤ 0 are all seeds."""
        positive = self._singular_points[self._singular_points > 0]
        with np.errstate(divide="ignore"):
            log_x = np.log(np.where(x > 0, x, 0.0))
        order = np.argsort(log_x, kind="stable")
        reach = np.full(x.shape, _WARM_MAX_GAP)
        side = np.zeros(x.shape, int)
        if positive.size:
            logs = np.log(positive)
            reach = np.minimum(_WARM_REACH * np.min(np.abs(log_x[:, None] - logs[None, :]), axis=1), _WARM_MAX_GAP)
            side = np.searchsorted(logs, log_x)
        chosen = np.zeros(x.shape, bool)
        chosen[x <= 0] = True
        last = None
        for i in order[x[order] > 0]:
            if last is None or side[i] != side[last] or log_x[i] - log_x[last] > 0.9 * reach[last]:
                chosen[i] = True
                last = i
        return np.flatnonzero(chosen)

    @cached_property
    def _solutions(self) -> dict[str, np.ndarray]:
        """Points solved inside the support: ln x (sorted), t, ∂_t log χ at t, and δ (distance to the
        nearest singular point)."""
        empty = np.zeros(0)
        n = len(self.numerical)
        return {"log_x": empty, "t": empty.astype(complex), "slope": empty.astype(complex), "reach": empty,
                "taus": np.zeros((n, 0), complex), "dtaus": np.zeros((n, 0), complex)}

    def _remember(self, x: np.ndarray, t: np.ndarray, taus: list[np.ndarray] | None = None,
                  slopes: tuple[np.ndarray, list[np.ndarray]] | None = None) -> None:
        """Add the solutions inside the support (−sin Im t > 0, x > 0) to :attr:`_solutions` (capped). ``slopes``:
        their reduced slopes and dτ_j/dt where the caller has them (from :meth:`_newton`), else one evaluation here."""
        taus = np.array(taus, complex).reshape(len(taus), x.size) if taus else np.zeros((0, x.size), complex)
        keep = (x > 0) & np.isfinite(t) & (-np.sin(t.imag) > 0) & (t.imag > -math.pi)
        keep &= np.all(np.isfinite(taus) & (np.sin(taus.imag) <= 0.0), axis=0)  # Im u_j ≤ 0
        if slopes is not None:
            given_slope = np.asarray(slopes[0], complex).reshape(x.size)
            given_dtaus = np.array(slopes[1], complex).reshape(len(slopes[1]), x.size)
            keep &= np.isfinite(given_slope) & np.all(np.isfinite(given_dtaus), axis=0)
        if not keep.any():
            return
        x, t, taus = x[keep], t[keep], taus[:, keep]
        positive = self._singular_points[self._singular_points > 0]
        log_x = np.log(x)
        # the distance in s = ln x to the nearest singular point (0 is at s = −∞)
        reach = np.min(np.abs(log_x[:, None] - np.log(positive)[None, :]), axis=1) if positive.size else np.full(x.shape, np.inf)
        memo = self._solutions
        log_x = np.concatenate([memo["log_x"], log_x])
        order = np.argsort(log_x, kind="stable")
        if order.size > _SOLUTIONS_CAP:  # thin evenly rather than drop a region
            order = order[:: -(-order.size // _SOLUTIONS_CAP)]
        memo["log_x"] = log_x[order]
        memo["t"] = np.concatenate([memo["t"], t])[order]
        if slopes is not None:
            slope, dtaus = given_slope[keep], list(given_dtaus[:, keep])
        else:
            _, slope, extras = self._log_chi(t, list(taus))
            dtaus = []
            for _, u_dpsi, s_opw, k, _ in extras:
                slope = slope + k * s_opw / u_dpsi
                dtaus.append(s_opw / u_dpsi)
        memo["slope"] = np.concatenate([memo["slope"], slope])[order]
        memo["reach"] = np.concatenate([memo["reach"], reach])[order]
        memo["taus"] = np.concatenate([memo["taus"], taus], axis=1)[:, order]
        memo["dtaus"] = np.concatenate([memo["dtaus"], np.array(dtaus, complex).reshape(taus.shape)], axis=1)[:, order]

    def _solve_warm(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, accepted) by Newton from the nearest remembered solution (see :meth:`_solve`)."""
        memo = self._solutions
        accepted = np.zeros(x.shape, bool)
        t = np.zeros(x.shape, complex)
        if memo["log_x"].size == 0:
            return t, accepted
        log_x, ref, k, same_side = self._nearest_solution(x)
        reach = np.minimum(_WARM_REACH * memo["reach"][k], _WARM_MAX_GAP)
        near = (x > 0) & same_side & (np.abs(log_x - ref[k]) <= reach)
        idx = np.flatnonzero(near)
        if idx.size == 0:
            return t, accepted
        gap = log_x[idx] - ref[k[idx]]
        guess = memo["t"][k[idx]] - gap / memo["slope"][k[idx]]
        tau_guess = [tau[k[idx]] + (guess - memo["t"][k[idx]]) * dtau[k[idx]] for tau, dtau in zip(memo["taus"], memo["dtaus"])]
        found: list = []
        solved, solved_taus, ok = self._newton(x[idx] + 0j, guess, tau_guess, iterations=_WARM_ITERATIONS,
                                               slopes=found if _WARM_REMEMBER else None, inner=self._warm_inner)
        ok &= np.isfinite(solved) & (solved.imag < 0) & (solved.imag > -math.pi) & (-np.sin(solved.imag) > 0)
        for tau in solved_taus:  # each u_j = e^{τ_j} on its branch, Im u_j ≤ 0
            ok &= np.isfinite(tau) & (np.sin(tau.imag) <= 0.0)
        # a smooth branch moves O(step²) away from the first-order predictor: Newton that went farther than
        # _WARM_JUMP × the predictor's step reached another root of the same equations (a spurious one inside
        # the support: BN batch Jacobian, linear, B = 4, depth 1, ρ(0.0518) = 1.17 instead of 0.411 on a cdf
        # table's grid, 2.5e−3 of mass), and the point takes the continuation
        step = guess - memo["t"][k[idx]]
        ok &= np.abs(solved - guess) <= _WARM_JUMP * np.abs(step) + 1e-12 * (1.0 + np.abs(guess))
        t[idx] = solved
        accepted[idx] = ok
        # the accepted roots are remembered too, so that later passes start next to them (not where they would overflow
        # the memory and thin it: the sparse cold seeds next to the edges are worth more than a dense bulk)
        if found and ok.any() and memo["log_x"].size + int(ok.sum()) <= _SOLUTIONS_CAP:
            slope, dtaus = found[0]
            self._remember(x[idx][ok], solved[ok], [tau[ok] for tau in solved_taus], (slope[ok], [d[ok] for d in dtaus]))
        return t, accepted

    @property
    def _warm_inner(self) -> int | None:
        """Inner steps of the warm Newton: _WARM_INNER (joint steps) where every numerical factor's power is at most
        _WARM_JOINT_POWER, else the default (see :meth:`_newton`)."""
        if all(abs(term.power) <= _WARM_JOINT_POWER for term in self.numerical):
            return _WARM_INNER
        return None

    def _solve_cold(self, x: np.ndarray, ratio: float = 0.25) -> np.ndarray:
        """t at z = x + i0 by η-continuation from far above the spectrum (:meth:`_solve_cold_taus`)."""
        return self._solve_cold_taus(x, ratio)[0]

    def _solve_cold_taus(self, x: np.ndarray, ratio: float = 0.25) -> tuple[np.ndarray, list[np.ndarray]]:
        """(t, τ_j) at z = x + i0 by η-continuation from far above the spectrum.

        Points whose continuation fails (Newton stuck at a pole of a discrete factor's ψ) are solved again on other
        paths (:data:`_RETRY_RATIOS`: η ratio ½, then ¼), and take the first that converges. The first retry runs for
        all of them at once (their paths differ from those they take alone only in the start height, 10 × the
        spectral scale plus the batch's largest |x|: far above the spectrum either way; gelu at depth 1, σ_b² = 1:
        ~20 such points next to 1e−283 per hard-edge table took ~3.5 s each alone); the points it does not solve
        continue one at a time. A point that none reaches raises FloatingPointError if a numerical factor gave a
        non-finite ψ at a finite u on the way (found by the paths one point at a time, which name the point); else
        its iterate is returned if it reads as density 0 (far below a gap's edge, where u = 1/z leaves the float
        range; the retries stop at such an iterate), and NaN if it would give a positive density: it is no solution,
        and the density there is unknown (docs/derivations.md §2.6)."""
        t, ok, taus = self._continue(x, ratio)
        if ok.all() or ratio >= 0.5:
            return t, taus
        failing = np.flatnonzero(~ok)
        tried: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}  # the first retry's iterates, no ψ non-finite
        if failing.size > 1:
            t_r, ok_r, taus_r, watch = self._watched_continue(x[failing], _RETRY_RATIOS[0])
            solved = failing[ok_r]
            t[solved] = t_r[ok_r]
            for tau, tau_r in zip(taus, taus_r):
                tau[solved] = tau_r[ok_r]
            if not watch:
                tried = {int(i): (t_r[k : k + 1], [tau[k : k + 1] for tau in taus_r]) for k, i in enumerate(failing) if not ok_r[k]}
            failing = failing[~ok_r]
        for i in failing:
            first = None
            for j, retry in enumerate(_RETRY_RATIOS):
                if j == 0 and int(i) in tried:
                    (t_i, taus_i), ok_i, watch = tried[int(i)], np.zeros(1, bool), []
                else:
                    t_i, ok_i, taus_i, watch = self._watched_continue(x[i : i + 1], retry)
                if not ok_i[0] and watch:
                    # the factor's non-finite ψ rejected Newton's steps there: the iterate is not a solution, and
                    # its density would be silently wrong (a NaN from a smooth factor's rule once gave cdf tables
                    # of mass 1.001). That is an error in the factor.
                    factor, u = watch[0]
                    raise FloatingPointError(
                        f"{self!r}: the factor {factor!r} returned a non-finite ψ at u = {u!r}, and the solution at "
                        f"x = {float(x[i])!r} could not be reached without it; the law's density there is unknown"
                    )
                if ok_i[0]:
                    break
                if first is None:
                    first = (t_i, taus_i)
                if _reads_as_zero_density(complex(t_i[0])) and any(abs(tau[0].real) > _LOG_FLOAT_MAX for tau in taus_i):
                    break  # u_j = e^τ_j left the float range (far below a gap's edge): no other path gets further
            if not ok_i[0]:
                # no path converged: the finer path's iterate if it reads as density 0, else NaN (unknown; the
                # density is NaN there, which the hard-edge table reads as an unresolved panel)
                t_i, taus_i = first
                if not _reads_as_zero_density(complex(t_i[0])):
                    t_i = np.full(1, complex(math.nan, math.nan))
                    taus_i = [np.full(1, complex(math.nan, math.nan)) for _ in taus_i]
            t[i : i + 1] = t_i
            for tau, tau_i in zip(taus, taus_i):
                tau[i : i + 1] = tau_i
        return t, taus

    def _watched_continue(self, x: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list]:
        """:meth:`_continue` with the numerical factors' non-finite ψ values recorded (:meth:`_watch_psi`): (t, converged,
        τ_j, [(factor, u), …])."""
        self._psi_watch = []
        try:
            t, ok, taus = self._continue(x, ratio)
            return t, ok, taus, self._psi_watch
        finally:
            self._psi_watch = None

    def _continue(self, x: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(t, converged, τ_j) at z = x + i0 by η-continuation; the points next to 0 (x ≤ _AXIS_X × the
        spectral scale) from the imaginary axis where the law allows it (:meth:`_continue_from_axis`), the
        others (and any the axis path fails) by :meth:`_continue_eta`."""
        low = np.zeros(x.shape, bool)
        if ratio == 0.25 and x.size and self._axis_allowed and _DEEP_ETA > 0.0:  # _DEEP_ETA = 0: the plain path
            low = (x > 0) & (x <= _AXIS_X * self._axis_scale)
        if not low.any():
            return self._continue_eta(x, ratio)
        t = np.empty(x.shape, complex)
        ok = np.zeros(x.shape, bool)
        taus = [np.empty(x.shape, complex) for _ in self.numerical]
        idx = np.flatnonzero(low)
        t_l, taus_l, ok_l = self._continue_from_axis(x[idx])
        t[idx], ok[idx] = t_l, ok_l
        for tau, tau_l in zip(taus, taus_l):
            tau[idx] = tau_l
        rest = np.flatnonzero(~ok)
        if rest.size:
            t_r, ok_r, taus_r = self._continue_eta(x[rest], ratio)
            t[rest], ok[rest] = t_r, ok_r
            for tau, tau_r in zip(taus, taus_r):
                tau[rest] = tau_r
        return t, ok, taus

    @cached_property
    def _tangent_steps(self) -> bool:
        """Whether the continuation may take long steps from the tangent predictor: laws without atoms whose
        numerical factors declare a ψ without poles off its cut (``tangent_steps``); with atoms or discrete
        factors, a long step can land on another branch of t."""
        return bool(self.numerical) and not self.atoms and all(getattr(term.factor, "tangent_steps", False) for term in self.numerical)

    @cached_property
    def _axis_allowed(self) -> bool:
        """Whether :meth:`_continue` may start points next to 0 on the imaginary axis: laws without atoms whose
        numerical factors all state whether they allow tangent steps (the smooth factors,
        :class:`~rmt_init.theory.gaussian_image.GaussianImageS`; with an atom in the factor, SELU's d, only short
        steps follow the axis path down, see :meth:`_continue_from_axis`)."""
        return bool(self.numerical) and not self.atoms and all(hasattr(term.factor, "tangent_steps") for term in self.numerical)

    @cached_property
    def _axis_scale(self) -> float:
        """The scale below which x counts as next to 0 for :meth:`_continue`: the spectral scale, or the
        smallest positive singular point if that is lower."""
        positive = self._singular_points[self._singular_points > 0]
        return min(self._spectral_scale, float(positive.min()) if positive.size else math.inf)

    @cached_property
    def _axis(self) -> dict[str, Any]:
        """The solution on the imaginary axis z = iη (s = ln η + iπ/2), built down from η = 10 × the spectral
        scale by :meth:`_extend_axis` as far as it is asked for: ln η (decreasing), t, τ_j, the reduced slope
        ∂_t log χ + Σ_j k_j s_j (1 + w)/(u ψ_j') and dτ_j/dt (as in :meth:`_remember`); ``end``: True once a
        step failed (the path then stops there)."""
        return {"log_eta": np.zeros(0), "t": np.zeros(0, complex), "taus": np.zeros((len(self.numerical), 0), complex),
                "slope": np.zeros(0, complex), "dtaus": np.zeros((len(self.numerical), 0), complex), "end": False}

    def _axis_slopes(self, t: np.ndarray, taus: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The reduced slope d log χ/dt along the solution and dτ_j/dt (see :meth:`_newton`); NaN where some
        u_j ψ_j' is 0 or not finite (no tangent there: the callers refuse those points)."""
        _, slope, extras = self._log_chi(t, taus)
        usable = np.ones(np.shape(slope), bool)
        for _, u_dpsi, *_ in extras:
            usable &= np.isfinite(u_dpsi) & (u_dpsi != 0)
        dtaus = []
        for _, u_dpsi, s_opw, k, _ in extras:
            ratio = np.where(usable, s_opw / np.where(usable, u_dpsi, 1.0), np.nan)
            slope = slope + k * ratio
            dtaus.append(ratio)
        return slope, dtaus

    def _axis_newton(self, log_eta: float, t: complex, taus: list[complex]):
        """Newton at z = iη given ln η (z enters only through ln z = ln η + iπ/2; z = i keeps the branch guard);
        (t, τ_j, accepted): converged, on the branch −π < Im t < 0 with Im w < 0, and each Im u_j ≤ 0."""
        solved, solved_taus, ok = self._newton(
            np.array([1j]), np.array([t], complex), [np.array([tau], complex) for tau in taus],
            log_z=np.array([log_eta + 0.5j * math.pi]))
        ok = bool(ok[0]) and bool(np.isfinite(solved[0])) and -math.pi < solved[0].imag < 0 and -math.sin(solved[0].imag) > 0
        for tau in solved_taus:
            ok = ok and bool(np.isfinite(tau[0])) and math.sin(tau[0].imag) <= 0.0
        return complex(solved[0]), [complex(tau[0]) for tau in solved_taus], ok

    def _extend_axis(self, log_eta_min: float, stop: Any = None) -> None:
        """Extend :attr:`_axis` down to ln η ≤ ``log_eta_min`` (or to where a step fails, or to the first new point whose
        t makes ``stop(t)`` true, if given: the points up to there are those of the whole extension).

        From η = 10 × scale (w ≈ m₁/z + m₂/z²) down to _DEEP_ETA × scale in steps of 1/4 with the far predictor
        w ∝ 1/z, then from the tangent in s = ln z (t is analytic there: the axis keeps a distance ≥ π/2 in s
        from every positive singular point, and 0 is at s = −∞) with steps Δs adapted to the predictor's error
        e = |t − t_pred|: accepted when Newton converged on the branch and e ≤ _AXIS_PREDICTOR_TOL, halved
        otherwise, doubled (up to _AXIS_MAX_STEP) after a step with e below a quarter of that.
        """
        axis = self._axis
        if axis["end"] or (axis["log_eta"].size and axis["log_eta"][-1] <= log_eta_min):
            return
        scale = self._spectral_scale
        log_scale = math.log(scale)
        points = [(float(v), complex(t), [complex(tau) for tau in taus], complex(sl), [complex(d) for d in dts])
                  for v, t, taus, sl, dts in zip(axis["log_eta"], axis["t"], axis["taus"].T, axis["slope"], axis["dtaus"].T)]
        if not points:
            m1, m2 = self._first_moments
            log_eta = math.log(10.0) + log_scale
            z = 1j * math.exp(log_eta)
            w = m1 / z + m2 / z**2
            t0 = complex(np.log1p(w))
            taus0 = [complex(np.log(float(term.scale) * w / term.factor.mean)) for term in self.numerical]
            t0, taus0, ok = self._axis_newton(log_eta, t0, taus0)
            if not ok:
                axis["end"] = True
                return
            slope, dtaus = self._axis_slopes(np.array([t0]), [np.array([tau]) for tau in taus0])
            points.append((log_eta, t0, taus0, complex(slope[0]), [complex(d[0]) for d in dtaus]))
        step = math.log(64.0)
        deep = math.log(_DEEP_ETA) + log_scale
        while points[-1][0] > log_eta_min:
            log_eta, t, taus, slope, dtaus = points[-1]
            if log_eta > deep:  # as in _continue_eta: steps of 1/4, far from the spectrum from w ∝ 1/z
                new = log_eta - math.log(4.0)
                if log_eta - math.log(4.0) > log_scale + math.log(4.0):  # |z| > 4 × scale at the new point
                    t_pred, tau_pred = complex(np.log1p(complex(np.expm1(t)) * 4.0)), [tau + math.log(4.0) for tau in taus]
                else:
                    t_pred, tau_pred = t, list(taus)
                check = False
            else:
                new = log_eta - step
                dt = step / slope  # Δt = −Δs/slope, Δs = −step
                t_pred, tau_pred = t + dt, [tau + dt * d for tau, d in zip(taus, dtaus)]
                check = True
            t_new, taus_new, ok = self._axis_newton(new, t_pred, tau_pred)
            error = max([abs(t_new - t_pred)] + [abs(a - b) for a, b in zip(taus_new, tau_pred)]) if ok else math.inf
            if check and (not ok or error > _AXIS_PREDICTOR_TOL):
                if step <= math.log(4.0) / 8:
                    axis["end"] = True
                    break
                step *= 0.5
                continue
            if not ok:
                axis["end"] = True
                break
            if check and error < 0.25 * _AXIS_PREDICTOR_TOL:  # the doubled step's error ~4× this: within the tolerance
                step = min(2.0 * step, _AXIS_MAX_STEP)
            slope_new, dtaus_new = self._axis_slopes(np.array([t_new]), [np.array([tau]) for tau in taus_new])
            points.append((new, t_new, taus_new, complex(slope_new[0]), [complex(d[0]) for d in dtaus_new]))
            if stop is not None and stop(t_new):
                break
        n = len(self.numerical)
        axis["log_eta"] = np.array([p[0] for p in points])
        axis["t"] = np.array([p[1] for p in points], complex)
        axis["taus"] = np.array([p[2] for p in points], complex).T.reshape(n, len(points))
        axis["slope"] = np.array([p[3] for p in points], complex)
        axis["dtaus"] = np.array([p[4] for p in points], complex).T.reshape(n, len(points))

    def _continue_from_axis(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """(t, τ_j, accepted) at z = x + i0 for 0 < x ≪ the spectral scale, starting on the imaginary axis.

        Far above x the path z = x + iη of :meth:`_continue_eta` is the imaginary axis to O(x/η), so every such
        point starts at η = _AXIS_START·x from the axis solution (:attr:`_axis`) at the smallest tabulated
        η_k ≥ _AXIS_START·x, by the tangent predictor over Δs = ln(η/η_k) + ln(1 − ix/η) (at most one axis step,
        whose predictor error was ≤ _AXIS_PREDICTOR_TOL), then goes down in η by steps of 1/64 from the tangent
        (1/4 from the last solution where the law forbids tangent steps) to its floor (10⁻³x, as in
        :meth:`_continue_eta`) and to η = 0. t(z) and u_j(z) are single-valued analytic in the upper half-plane,
        so the root reached is the one the continuation from far above finds (equal to Newton's tolerance). Points
        whose Newton fails or whose start lands farther than 2·_AXIS_PREDICTOR_TOL from its predictor are
        reported as not accepted (the caller continues them from far above). docs/derivations.md §2.4.
        """
        n = x.size
        log_x = np.log(x)
        self._extend_axis(float(log_x.min()) + math.log(_AXIS_START))
        axis = self._axis
        t = np.zeros(n, complex)
        taus = [np.zeros(n, complex) for _ in self.numerical]
        ok = np.zeros(n, bool)
        ref = axis["log_eta"]
        if ref.size < 2:
            return t, taus, ok
        # the smallest tabulated η_k ≥ _AXIS_START·x (ref decreases; where the path stopped short, its last point)
        k = np.searchsorted(-ref, -(log_x + math.log(_AXIS_START)), side="right") - 1
        idx = np.flatnonzero(k >= 0)
        if idx.size == 0:
            return t, taus, ok
        kk = k[idx]
        xa = x[idx]
        # start at η = _AXIS_START·x, from the tangent at η_k: Δs = ln(x + iη) − ln(iη_k) = ln(η/η_k) + ln(1 − ix/η)
        # (|Δs| at most one axis step, whose predictor error was ≤ _AXIS_PREDICTOR_TOL); where the path stopped
        # short of _AXIS_START·x, at η_k itself
        log_eta = np.where(kk < ref.size - 1, np.log(xa) + math.log(_AXIS_START), ref[kk])
        eta = np.exp(log_eta)
        floor = 1e-15 * np.maximum(xa, np.finfo(float).tiny)
        if self._singular_points.size:
            floor = np.maximum(floor, _CONTINUATION_FLOOR * self._singular_distance(xa))
        ds = (log_eta - ref[kk]) + np.log1p(-1j * (xa / eta))
        dt = -ds / axis["slope"][kk]
        t_pred = axis["t"][kk] + dt
        tau_pred = [tau[kk] + dt * d[kk] for tau, d in zip(axis["taus"], axis["dtaus"])]
        eta = np.maximum(eta, floor)
        ta, taua, good = self._newton(xa + 1j * eta, t_pred, tau_pred)
        # the start is kept only where the root is as near the predictor as along the axis path (else another
        # root may have been found; those points take the continuation from far above)
        good &= np.abs(ta - t_pred) <= 2.0 * _AXIS_PREDICTOR_TOL
        for tau, pred in zip(taua, tau_pred):
            good &= np.abs(tau - pred) <= 2.0 * _AXIS_PREDICTOR_TOL
        tangent = self._tangent_steps
        step = 1.0 / 64.0 if tangent else 0.25
        while True:
            active = np.flatnonzero(good & (eta > floor))
            if active.size == 0:
                break
            e_old = eta[active]
            e_new = np.maximum(e_old * step, floor[active])
            t_start, tau_start = ta[active], [tau[active] for tau in taua]
            if tangent:
                z_old, z_new = xa[active] + 1j * e_old, xa[active] + 1j * e_new
                slope, dtaus = self._axis_slopes(t_start, tau_start)
                # no tangent where the slope is 0 or not finite (a u_j ψ_j' = 0): those points are refused
                usable = np.isfinite(slope) & (slope != 0)
                for d in dtaus:
                    usable &= np.isfinite(d)
                if not usable.all():
                    good[active[~usable]] = False
                    active, e_old, e_new = active[usable], e_old[usable], e_new[usable]
                    z_old, z_new, slope = z_old[usable], z_new[usable], slope[usable]
                    t_start, tau_start = t_start[usable], [tau[usable] for tau in tau_start]
                    dtaus = [d[usable] for d in dtaus]
                    if active.size == 0:
                        continue
                dt = -(np.log(z_new) - np.log(z_old)) / slope
                t_start, tau_start = t_start + dt, [tau + dt * d for tau, d in zip(tau_start, dtaus)]
            t_new, taus_new, conv = self._newton(xa[active] + 1j * e_new, t_start, tau_start)
            ta[active] = t_new
            for tau, new in zip(taua, taus_new):
                tau[active] = new
            eta[active] = e_new
            good[active] = conv
        ta, taua, conv = self._newton(xa + 0j, ta, taua)
        good &= conv & np.isfinite(ta) & (ta.imag <= 0) & (ta.imag > -math.pi)
        t[idx], ok[idx] = ta, good
        for tau, new in zip(taus, taua):
            tau[idx] = new
        return t, taus, ok

    #: the η-continuation starts at this × the spectral scale (plus 10 × the largest |x|), where the moment guess
    #: w ≈ m₁/z + m₂/z² lies in the basin of the root that continues to the density (laws with heavy tails start higher)
    _start_height = 10.0

    def _singular_distance(self, x: np.ndarray) -> np.ndarray:
        """Distance from each x to the nearest singular point (edges, atoms, 0)."""
        return np.min(np.abs(x[:, None] - self._singular_points[None, :]), axis=1)

    def _continue_eta(self, x: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        m1, m2 = self._first_moments
        scale = max(self._spectral_scale, max((loc for loc, _ in self.atoms), default=0.0))
        eta = self._start_height * scale + 10.0 * np.max(np.abs(x), initial=0.0)
        z = x + 1j * eta
        w = m1 / z + m2 / z**2
        t = np.log1p(w)
        taus = [np.log(float(term.scale) * w / term.factor.mean) for term in self.numerical]
        t, taus, ok = self._newton(z, t, taus)
        # η decreases geometrically for every point down to its own floor, then the last step goes to
        # η = 0. w(z) is analytic in a disc around x whose radius is x's distance δ to the nearest singular
        # point (an edge, an atom, 0), so Newton from η = δ/1000 lands on the right branch at η = 0; the
        # floor is that, but never below 1e-15·x (points near the hard edge at 0 need η ≪ x).
        failed = ~ok
        floor = 1e-15 * np.maximum(np.abs(x), np.finfo(float).tiny)
        if self._singular_points.size and self.continuous_mass > _ATOM_TOL:
            distance = np.min(np.abs(x[:, None] - self._singular_points[None, :]), axis=1)
            floor = np.maximum(floor, _CONTINUATION_FLOOR * distance)
        tangent = self._tangent_steps  # long tangent steps only where no other branch is near (see there)
        while True:
            # below _DEEP_ETA × scale, steps of ratio³ from the tangent predictor (t(s) is analytic in s = ln z
            # there, far from every singular point but those it stops short of by its floor)
            step = ratio**3 if tangent and ratio == 0.25 and eta <= _DEEP_ETA * scale else ratio
            eta *= step
            active = np.flatnonzero(eta * ratio >= floor * ratio**2) if eta > floor.min() else np.array([], int)
            if active.size == 0:
                break
            za = x[active] + 1j * np.maximum(eta, floor[active])
            t_old, taus_old = t[active], [tau[active] for tau in taus]
            # predictor: far from the spectrum w = ψ(1/z) ≈ m₁/z, and each u_j ∝ w, so all scale like 1/z
            far = np.abs(za) > 4.0 * scale
            # log(z_prev/z) as a difference of logs: both lie in the upper half-plane, so the difference is the
            # principal log of the ratio, and no complex division over/underflows at |z| ~ 1e-300 or 1e300
            z_prev = x[active] + 1j * np.maximum(eta / step, floor[active])
            shift = np.where(far, np.log(z_prev) - np.log(za), 0.0)
            t_start = np.where(far, np.log1p(np.expm1(t_old) * np.exp(shift)), t_old)
            tau_start = [tau + shift for tau in taus_old]
            if step != ratio:  # the tangent: dt/ds = −1/(reduced slope), dτ_j/dt as in _remember
                # only from iterates inside the float range (a failed point continues from its last iterate, whose
                # u_j = e^τ_j may have left it: no tangent there, :meth:`_axis_slopes`), the others keep t_start
                usable = ~far & np.isfinite(t_old)
                for tau in taus_old:
                    usable &= np.isfinite(tau) & (np.abs(tau.real) <= _LOG_FLOAT_MAX)
                idx = np.flatnonzero(usable)
                if idx.size:
                    slope, dtaus = self._axis_slopes(t_old[idx], [tau[idx] for tau in taus_old])
                    with np.errstate(invalid="ignore"):  # NaN slope (no tangent): dt NaN, not used
                        dt = (np.log(z_prev[idx]) - np.log(za[idx])) / slope  # Δt = −Δs/slope, Δs = ln za − ln z_prev
                    good = np.isfinite(dt) & (np.abs(dt) < 0.5)
                    sel = idx[good]
                    dt, dtaus = dt[good], [dtau[good] for dtau in dtaus]
                    t_start = t_start.copy()
                    t_start[sel] = t_old[sel] + dt
                    tau_start = [tau0.copy() for tau0 in tau_start]
                    for tau0, tau, dtau in zip(tau_start, taus_old, dtaus):
                        tau0[sel] = tau[sel] + dt * dtau
            ta, taua, ok = self._newton(za, t_start, tau_start)
            if not ok.all():
                # redo the step in small ones, from the last converged point of the failed paths
                ta = np.where(ok, ta, t_old)
                taua = [np.where(ok, new, old) for new, old in zip(taua, taus_old)]
                ta, taua, ok = self._refine(x[active], ta, taua, ok, eta / step, eta, floor[active])
                failed[active] |= ~ok
            t[active] = ta
            for tau, new in zip(taus, taua):
                tau[active] = new
        t, taus, ok = self._newton(x + 0j, t, taus)
        return t, ok & ~failed, taus

    def _refine(self, x, t, taus, ok, eta_from, eta_to, floor):
        """Redo one continuation step in 40 small ones for the points that did not converge.

        Laws that take tangent steps (:attr:`_tangent_steps`: no atoms, factors' ψ without poles off the cut) first
        redo it in _REFINE_FIRST steps (η ratio ≥ 4^{−1/4} ≈ 0.71 for a step of 1/4: gentler than the retries' ½), and
        only the points those leave unconverged take the 40, from the step's start (depth-1 gelu, σ_b² = 1: one point
        of the cdf tables' first pass, x = 0.023, converged in the first of these; the 40 on the quadrature path near
        the cut took 0.45 s; docs/derivations.md §2.6 (g))."""
        idx = np.flatnonzero(~ok)
        if self._tangent_steps and _REFINE_FIRST:
            ti, taui = t[idx], [tau[idx] for tau in taus]
            for eta in np.geomspace(eta_from, eta_to, _REFINE_FIRST + 1)[1:]:
                ti, taui, oki = self._newton(x[idx] + 1j * np.maximum(eta, floor[idx]), ti, taui)
            ok, t, taus = ok.copy(), t.copy(), [tau.copy() for tau in taus]
            done = idx[oki]
            ok[done] = True
            t[done] = ti[oki]
            for tau, new in zip(taus, taui):
                tau[done] = new[oki]
            idx = idx[~oki]
            if idx.size == 0:
                return t, taus, ok
        ti = t[idx]
        taui = [tau[idx] for tau in taus]
        for eta in np.geomspace(eta_from, eta_to, 40)[1:]:
            ti, taui, oki = self._newton(x[idx] + 1j * np.maximum(eta, floor[idx]), ti, taui)
        ok = ok.copy()
        ok[idx] = oki
        t = t.copy()
        t[idx] = ti
        out = []
        for tau, new in zip(taus, taui):
            tau = tau.copy()
            tau[idx] = new
            out.append(tau)
        return t, out, ok

    def _density(self, x: np.ndarray) -> np.ndarray:
        """ρ(x) = −Im G(x + i0)/π = −Im w/(πx); |Im w| within rounding of 0 (outside the support) is 0."""
        x = np.asarray(x, float)
        t = self._solve(x)
        # Im w = Im e^t = e^{Re t} sin(Im t): exact even when w is within 1e-300 of −1. Outside the
        # support w is real (Im t = 0 or ±π); rounding leaves |sin(Im t)| of a few ulps there.
        sine = np.sin(t.imag)
        inside = -sine > 8 * np.finfo(float).eps
        # Next to a hard edge at 0, Im t → 0 like a power of x and is computed with full relative accuracy
        # (relu/orthogonal depth 3: Im t = −5e−101 at x = 1e−300, exactly ∝ x^{1/3}); the rounding threshold
        # above is meant for the soft edges, so below 1e−3 of an interval starting at 0 any −sin > 0 counts.
        if self.intervals and self.intervals[0][0] == 0.0:
            inside |= (x < 1e-3 * self.intervals[0][1]) & (-sine > 0)
        # next to an integrable singularity at 0 a density can exceed the float range at subnormal x (deep
        # chaotic products: ρ ~ x^{−L/(L+1)}/scale); it is then +inf there, not a warning
        # (t is NaN where no path solved the point, :meth:`_solve_cold_taus`: the density there is unknown, NaN)
        with np.errstate(over="ignore", divide="ignore"):
            return np.where(inside, -np.exp(t.real) * sine / (math.pi * x), np.where(np.isnan(t), np.nan, 0.0))

    def _pdf(self, x: np.ndarray) -> np.ndarray:
        self._require_density()
        return self._density(x)


def _reads_as_zero_density(t: complex) -> bool:
    """Whether t = log(1 + w) gives density 0 both to :meth:`FreeProductLaw._density` (−sin Im t within 8ε of 0) and to
    laws that threshold xρ = −Im w/π (BN: below _UNSOLVED_NOISE); False for a non-finite t."""
    if not (math.isfinite(t.real) and math.isfinite(t.imag)):
        return False
    x_rho = -math.exp(t.real) * math.sin(t.imag) / math.pi if t.real < 700.0 else math.copysign(math.inf, -math.sin(t.imag))
    return x_rho <= _UNSOLVED_NOISE and -math.sin(t.imag) <= 8 * np.finfo(float).eps


def _tau_rounding(tau: np.ndarray, u_dpsi: np.ndarray) -> np.ndarray:
    """The change of a numerical factor's ψ under one rounding of its unknown τ = log u: |∂ψ/∂τ|·4ε(1 + |τ|).

    ρ = ψ(u) − s w cannot be driven below it. Next to a square-root edge of the factor (a branch point of its ψ,
    |∂ψ/∂τ| ~ |u − 1/b|^{−1/2}) it exceeds the factor's own ``psi_tolerance``: one linear Gaussian block, α = 1.5, at
    1e−6 below its upper edge, |∂ψ/∂τ| = 1128 and ρ jittered at 1e−12 between τ one ulp apart, so Newton ran all
    its iterations, was refined in 40 η-steps that did the same (~5500 block solves, 7–90 s a point), and the cdf
    tables of that law took many minutes (docs/derivations.md §8.7(g))."""
    return 4.0 * np.finfo(float).eps * (1.0 + np.abs(tau)) * np.abs(u_dpsi)


def _numerical_psi(terms: Sequence[Term], taus: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """(1 + ψ_j(u_j), u_j ψ_j'(u_j), ψ_j(u_j) or None) of the numerical factors at u_j = e^{τ_j}; ψ_j itself from
    factors that sum it with relative accuracy where |ψ_j| ≪ 1 (a method ``psi_parts``, NaN where they do not,
    e.g. the smooth factors), else None;
    factors whose class solves several at once (a classmethod ``one_plus_psi_many(factors, us)``, e.g. residual
    blocks) are handed over together."""
    us = [np.exp(tau) for tau in taus]
    out: list[Any] = [None] * len(us)
    groups: dict[Any, list[int]] = {}
    for j, term in enumerate(terms):
        many = getattr(type(term.factor), "one_plus_psi_many", None)
        parts = getattr(term.factor, "psi_parts", None)
        if many is not None:
            groups.setdefault(many, []).append(j)
        elif parts is not None:
            out[j] = parts(us[j])
        else:
            out[j] = (*term.factor.one_plus_psi(us[j]), None)
    for many, members in groups.items():
        for j, result in zip(members, many([terms[j].factor for j in members], [us[j] for j in members])):
            out[j] = (*result, None)
    return out
