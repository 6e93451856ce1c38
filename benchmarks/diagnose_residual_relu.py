"""Diagnosis of the relu residual-network discrepancy (validation claim ``residual_networks``, universality case).

Question: torch relu residual MLPs x_l = x_{l−1} + α relu(W_l x_{l−1}) (σ_w² = 1, no bias, |x_0|²/N = 1) at L = 16,
α = √(0.6/8) ≈ 0.274, N = 128 gave m2 = tr(JJᵀ)²/N ≈ 11.6 against 7.0 from ``jacobian_spectrum(16, "relu",
residual=α)``. Is that a finite-N effect, an error of the block law/product, or a failure of the independence of
D_l = diag(φ'(h_l)) and the W's?

Ensembles (numpy, float64, J = Π_l (I + α D_l W_l) built explicitly):

* ``relu``   — the real network: D_l = diag(1[h_l > 0]), h_l = W_l x_{l−1} (as in the claim).
* ``masks``  — D_l i.i.d. Bernoulli(½) diagonal masks independent of every W (the model the law describes exactly
  as N → ∞): isolates the block-law/product algebra from the mean-field/freeness assumption.
* ``decor``  — the stream is run as in ``relu`` but D_l is read from h'_l = W'_l x_{l−1} with an independent copy W'_l
  (same stream statistics, no D_l–W_l correlation).
* ``linear`` — φ = identity (exact finite-N reference: the law's moments hold up to O(L/N)).

Per network: m1, m2, λ_max, m2 without the top eigenvalue, |J x̂_0|² (= q_L/q_0 exactly for relu by Euler's
identity J(x) x = f(x) of a positively homogeneous net), |Jᵀ 1/√N|²... and the stream's q_l = |x_l|²/N,
p_l = Σ x_l,i / N against ``residual_mean_field``.

Run from the repository root:  OMP_NUM_THREADS=1 python benchmarks/diagnose_residual_relu.py [--quick]
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

ALPHA = math.sqrt(0.6 / 8.0)  # the claim's universality α for relu at L = 16 (τ = 0.6, σ_w² = 1, E φ'² = ½)
SIGMA_W2 = 1.0


def one_network(rng: np.random.Generator, n: int, depth: int, alpha: float, ensemble: str) -> dict:
    x = rng.standard_normal(n)
    x *= math.sqrt(n) / np.linalg.norm(x)
    x0 = x.copy()
    jac = np.eye(n)
    qs, ps = [float(x @ x / n)], [float(x.mean())]
    for _ in range(depth):
        w = rng.standard_normal((n, n)) * math.sqrt(SIGMA_W2 / n)
        h = w @ x
        if ensemble == "linear":
            d = np.ones(n)
            y = h
        else:
            y = np.maximum(h, 0.0)
            if ensemble == "relu":
                d = (h > 0).astype(float)
            elif ensemble == "masks":
                d = (rng.random(n) < 0.5).astype(float)
            elif ensemble == "decor":
                w2 = rng.standard_normal((n, n)) * math.sqrt(SIGMA_W2 / n)
                d = ((w2 @ x) > 0).astype(float)
            else:
                raise ValueError(ensemble)
        jac = jac + alpha * (d[:, None] * w) @ jac
        x = x + alpha * y
        qs.append(float(x @ x / n))
        ps.append(float(x.mean()))
    gram = jac.T @ jac
    ev = np.linalg.eigvalsh(gram)
    top = ev[-1]
    u0 = x0 / np.linalg.norm(x0)
    ones = np.ones(n) / math.sqrt(n)
    vtop = np.linalg.eigh(gram)[1][:, -1] if n <= 256 else None
    return {
        "m1": float(ev.mean()),
        "m2": float((ev**2).mean()),
        "top": float(top),
        "second": float(ev[-2]),
        "m2_bulk": float((ev[:-1] ** 2).sum() / n),  # top eigenvalue removed (still divided by N)
        "jx0": float(np.sum((jac @ u0) ** 2)),
        "j1": float(np.sum((jac @ ones) ** 2)),
        "jt1": float(np.sum((jac.T @ ones) ** 2)),
        "overlap_top_1": float((vtop @ ones) ** 2) if vtop is not None else float("nan"),
        "overlap_top_x0": float((vtop @ u0) ** 2) if vtop is not None else float("nan"),
        "qL": qs[-1],
        "pL": ps[-1],
    }


def mean_se(v: np.ndarray) -> tuple[float, float]:
    v = np.asarray(v, float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")


def run_case(n: int, depth: int, ensemble: str, trials: int, seed: int, alpha: float = ALPHA) -> dict:
    rng = np.random.default_rng(seed)
    rows = [one_network(rng, n, depth, alpha, ensemble) for _ in range(trials)]
    out = {"n": n, "depth": depth, "ensemble": ensemble, "trials": trials, "alpha": alpha}
    for key in rows[0]:
        out[key] = mean_se(np.array([r[key] for r in rows]))
    return out


def theory(depth: int, alpha: float, activation: str) -> dict:
    from rmt_init.theory import jacobian_spectrum
    from rmt_init.theory.residual import residual_mean_field

    law = jacobian_spectrum(depth, activation, residual=alpha, sigma_w2=SIGMA_W2)
    mf = residual_mean_field(depth, activation, alpha, SIGMA_W2, 0.0, 1.0, 0.0)
    return {"m1": float(law.moment(1)), "m2": float(law.moment(2)), "edge": float(law.support[1]),
            "qL": mf.q[-1], "pL": mf.p[-1]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    plan = []
    budget = {128: 200, 256: 60, 512: 16, 1024: 6}
    if args.quick:
        budget = {128: 20, 256: 6}
    for n, t in budget.items():
        plan.append((n, 16, "relu", t))
    for n, t in budget.items():
        if n <= 512:
            plan.append((n, 16, "masks", t))
            plan.append((n, 16, "linear", t))
    for depth in (8, 32):
        for n, t in budget.items():
            if n <= 512:
                plan.append((n, depth, "relu", t))
    for n in (128, 256):
        if n in budget:
            plan.append((n, 16, "decor", budget[n]))
    results = []
    cache: dict = {}
    for i, (n, depth, ens, t) in enumerate(plan):
        act = "linear" if ens == "linear" else "relu"
        if (depth, act) not in cache:
            cache[(depth, act)] = theory(depth, ALPHA, act)
        th = cache[(depth, act)]
        t0 = time.perf_counter()
        r = run_case(n, depth, ens, t, seed=10_000 + i)
        r["theory"] = th
        r["seconds"] = time.perf_counter() - t0
        results.append(r)
        f = lambda k: f"{r[k][0]:.4g}±{r[k][1]:.2g}"  # noqa: E731
        print(f"{ens:6s} L={depth:2d} N={n:4d} T={t:3d} m1 {f('m1')} (law {th['m1']:.4g})  m2 {f('m2')} "
              f"(law {th['m2']:.4g})  m2-top {f('m2_bulk')}  λmax {f('top')} λ2 {f('second')} (edge {th['edge']:.3g})  "
              f"|Jx0|² {f('jx0')}  |J1|² {f('j1')}  |Jᵀ1|² {f('jt1')}  ov(top,1) {f('overlap_top_1')}  "
              f"ov(top,x0) {f('overlap_top_x0')}  qL {f('qL')} (mf {th['qL']:.4g})  pL {f('pL')} "
              f"(mf {th['pL']:.4g})  [{r['seconds']:.1f}s]", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


if __name__ == "__main__":
    main()
