"""Singular values of products of random matrices ``P_L = W_L ⋯ W_1``, batched over trials.

Two algorithms:

* **direct** — multiply the factors, dividing by the Frobenius norm after each one (its log is
  accumulated, so nothing overflows at any depth), then ``torch.linalg.svdvals``. Singular values are
  then accurate to about ``eps · σ_1`` in absolute terms: fine for spectra at moderate depth, not for
  the smallest ``σ_i`` of a deep product.
* **QR-stabilised** (the standard Lyapunov / discrete-QR algorithm: Benettin et al. 1980; Eckmann &
  Ruelle 1985, Rev. Mod. Phys. 57:617) — keep ``P_l = Q_l D_l U_l`` with ``Q_l`` orthonormal columns,
  ``D_l`` diagonal stored as ``ln|d_i|`` and ``U_l`` upper-trapezoidal with unit-modulus diagonal.
  One step: ``W_{l+1} Q_l = Q_{l+1} R`` (QR), ``ln d ← ln|diag R| + ln d``,
  ``U ← [R_ij / |R_ii| · e^{ln d_j − ln d_i}] U``; every entry stays O(1) because the rows of the
  accumulated triangular factor are graded like ``d_i`` (Oseledets 1968). ``(1/L) Σ ln|R_ii|`` are the
  usual finite-time Lyapunov estimates; the exact singular values are those of ``D U`` and are obtained
  by zero-shift QR sweeps in log-scaled form: ``sv(D U) = sv(Uᵀ D)``, ``Uᵀ = Q' R'``, so
  ``sv(D U) = sv(R' D)`` and ``R' D = D' U'`` with ``ln d'_i = ln|R'_ii| + ln d_i``. Each sweep multiplies
  the coupling ``U_ij`` (``i < j``) by about ``d_j/d_i``, so for a deep product one or two sweeps make
  ``U`` diagonal to working precision and ``ln σ_i = ln d_i + ln|U_ii|`` exactly. Indices whose ``d``'s
  are too close to decouple within ``max_sweeps`` are grouped into blocks; each block's singular values
  come from an SVD of ``diag(e^{ln d − max ln d}) U_block`` (accurate because its dynamic range is small).
  When ``U`` is well conditioned after a sweep (``κ(U) ≤ 100``) and the spread of ``ln d`` fits the float range,
  one SVD of the whole graded matrix is used instead: relative perturbation theory for ``D·U`` (Demmel &
  Veselić 1992) bounds its errors by ``n·eps·κ(U)`` in every ``ln σ_i`` (``qr_log_singular_values``).
  Column scaling does not change Householder QR, which is why the graded factors lose no relative accuracy.

**Stabilising every k layers** (``qr_every``). Re-orthonormalising after each factor costs a QR (about
2–5 GEMMs of the same size on one CPU thread) per GEMM; it is only needed often enough that no QR sees a
matrix whose condition number destroys the small ``|R_ii|``. Between two QRs the block
``Z = W_{l+k} ⋯ W_{l+1} Q_l`` is formed by plain products (rescaled by exact powers of two). Householder QR
is column-wise backward stable and the products are accurate to ``O(eps)`` relative to the block's
largest column, so ``|R_ii|`` of ``Z`` carries a relative error of about ``eps · |R_11|/|R_ii| ≤ eps·κ(Z)``
(Higham 2002, *Accuracy and Stability of Numerical Algorithms*, Thm 19.4). For a block of ``k`` factors
``ln κ(Z) ≈ k (λ_1 − λ_n)`` (finite-time Lyapunov spread; Oseledets), so asking ``eps·κ ≤ 1e-10`` gives
``κ_max = 1e-10/eps ≈ 9·10⁵`` in float64 and ``k ≤ ln κ_max / (λ_1 − λ_n)``. ``qr_every="auto"`` takes
the largest ``k`` with ``k s + 1.5 σ √k ≤ ln κ_max``, ``s`` the spread and ``σ`` its per-factor standard
deviation measured on a pilot sample of the same ensemble (:func:`lyapunov_spread`): Gaussian factors
give ``k = 6`` at ``n = 5``, ``3`` at ``n = 256``, ``2`` at ``n = 1024`` (``s ≈ 1.3, 3.4, 4.1``), Haar factors one block
for the whole product. Because the spread of a single block fluctuates (one small ``|R_nn|`` of a factor
is enough), each block's own ``ln|R_ii|`` spread is checked after its QR, and a trial whose block exceeds
``ln κ_max`` redoes that block as two halves (recursively) — so the bound holds for every QR that is kept, and
each block adds at most ``≈ 1e-10`` to a ``ln σ_i`` (tested against ``qr_every=1`` and 150-digit
arithmetic). float32 (``κ_max < 1``) keeps ``k = 1``.

Log singular values are therefore exact and finite at depth 10⁴ (float64), and ``(1/L) ln σ_i`` converge to
the Lyapunov exponents — for i.i.d. ``N(0, σ_w²/N)`` factors Newman's (1986, Commun. Math. Phys.
103:121) ``λ_i = ½[ψ((N − i + 1)/2) + ln(2σ_w²/N)]``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

from rmt_init._validate import check_int, check_widths

from ._device import (
    check_progress,
    check_memory,
    chunk_from_budget,
    limit_threads,
    linalg_threads,
    resolve_device,
    resolve_dtype,
    resolve_seed,
    run_chunked,
    threads_for,
    trial_generator,
)
from .ensembles import WeightInit, sample_matrices, weight_init
from .results import SpectrumResult

__all__ = [
    "product_spectrum",
    "qr_log_singular_values",
    "layer_blocks",
    "lyapunov_spread",
    "qr_block_length",
    "block_condition_limit",
    "STABILIZE_AUTO_DEPTH",
]

#: ``stabilize="auto"`` uses the QR algorithm above this depth.
STABILIZE_AUTO_DEPTH = 32
_BLOCK_NUMBERS = 1 << 18  # random numbers drawn per trial per call (fixed ⇒ independent of chunking)
_DEFAULT_BUDGET = 1 << 30


def _short_widths(ws: Sequence[int]) -> str:
    return repr(list(ws)) if len(ws) <= 6 else f"[{ws[0]}, {ws[1]}, …, {ws[-1]}] ({len(ws)} entries)"


def layer_blocks(widths: Sequence[int], cap: int = _BLOCK_NUMBERS) -> list[tuple[int, int, int, int]]:
    """Group layers into draws: ``(first_layer, count, n_out, n_in)`` with equal shapes, ≤ ``cap`` numbers each.

    Depends only on the widths, so the random stream of a trial is the same whatever the chunking.
    """
    out = []
    depth = len(widths) - 1
    l = 0
    while l < depth:
        n_in, n_out = widths[l], widths[l + 1]
        per = max(1, cap // (n_in * n_out))
        count = 1
        while l + count < depth and count < per and (widths[l + count], widths[l + count + 1]) == (n_in, n_out):
            count += 1
        out.append((l, count, n_out, n_in))
        l += count
    return out


def _factor_stream(spec: WeightInit, widths, gens, dtype, device):
    """Yield the factors ``W_1, W_2, …`` for a chunk of trials, each of shape ``(trials, n_out, n_in)``."""
    for _, count, n_out, n_in in layer_blocks(widths):
        block = torch.stack(
            [sample_matrices(spec, count, n_out, n_in, generator=g, dtype=dtype, device=device) for g in gens], dim=1
        )  # (count, trials, n_out, n_in)
        yield from block.unbind(0)


def _direct_log_sv(factors, dtype) -> torch.Tensor:
    p = None
    logscale = None
    for w in factors:
        p = w if p is None else w @ p
        nrm = torch.linalg.matrix_norm(p)  # Frobenius, per trial
        nrm = torch.where(nrm > 0, nrm, torch.ones_like(nrm))
        p = p / nrm[:, None, None]
        logscale = torch.log(nrm) if logscale is None else logscale + torch.log(nrm)
    with linalg_threads(p.device):
        sv = torch.linalg.svdvals(p)
    return torch.log(sv) + logscale[:, None]


def _triu_matmul(m: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``m @ u`` for upper-trapezoidal ``m`` (``…, a, b``) and ``u`` (``…, b, c``), skipping the zero blocks.

    Column block ``J`` of the product only needs rows ``≤ end(J)`` of ``u`` and columns ``< end(J)`` of
    ``m``: with 4 column blocks this is ≈ 60 % of the flops of a full product (the exact count for
    triangular factors is a third); 4 blocks measured faster than 8 (whose 32-column GEMMs run at a lower
    rate) and than the plain product at n = 256.
    """
    a, b = m.shape[-2], m.shape[-1]
    c = u.shape[-1]
    if min(a, b, c) < 256:
        return m @ u
    nb = 4
    edges = [round(c * j / nb) for j in range(nb + 1)]
    out = torch.zeros(m.shape[:-1] + (c,), dtype=m.dtype, device=m.device)
    for lo, hi in zip(edges[:-1], edges[1:]):
        e = min(hi, b)  # u[i, lo:hi] = 0 for i ≥ hi
        r = min(e, a)  # m[i, :e] = 0 for i ≥ e
        out[..., :r, lo:hi] = m[..., :r, :e] @ u[..., :e, lo:hi]
    return out


def _qr_update(state, z: torch.Tensor, logscale: torch.Tensor | None):
    """One re-orthonormalisation: ``z = Q' R`` (``z`` = the block's factors applied to the old ``Q``, times
    ``e^{-logscale}``); returns the new state ``(H, τ, ln d, U)`` — ``Q'`` kept in LAPACK's Householder
    form ``(H, τ)`` (``geqrf``), applied later by ``ormqr`` — and the block's ``ln|R_ii|``. On the CPU
    (float32/64, smaller side ≥ ``_LAPACK_QR_MIN``) the same QR runs through scipy's LAPACK in compact-WY form
    ``(H, T)`` (``geqrt``/``gemqrt``; :func:`_geqrt`): ≈ 2.6 GEMMs of time against ≈ 3.1 for torch's calls at
    n = 1024 (equal at n = 256, hence the threshold).

    Householder form rather than an explicit ``Q``: it skips forming ``Q`` (``orgqr``), and LAPACK's
    ``orgqr`` rounds differently depending on where a matrix sits in a batch (observed for 5×5 factors),
    which a block's condition number would amplify into chunk-dependent results.
    """
    _, _, logd, u = state
    if _lapack_qr(z):
        h, tau = _geqrt(z)  # tau: the compact-WY triangles T (…, nb, k)
    else:
        with linalg_threads(z.device):
            h, tau = torch.geqrf(z)  # tau: the Householder scalars (…, k)
    k_new = min(z.shape[-2], z.shape[-1])
    ra = torch.diagonal(h, dim1=-2, dim2=-1).abs()
    logr = torch.log(ra)
    if logscale is not None:
        logr = logr + logscale[:, None]
    # M = triu(R_ij / |R_ii| · e^{ln d_j − ln d_i}): one temporary, scaled and cut in place (the entries
    # below the diagonal, Householder vectors here, are zeroed by triu_ whatever they became)
    m = torch.empty(h.shape[:-2] + (k_new, h.shape[-1]), dtype=h.dtype, device=h.device)  # row-major: the
    if logd is None:  # triangular products below run ~10 % faster on it
        torch.div(h[..., :k_new, :], ra[..., :, None], out=m)
        return (h, tau, logr, m.triu_()), logr
    # e^{ln d_j − ln d_i} = e^{ln d_j − c} · e^{c − ln d_i} (c = mid-range): 2n exponentials and a row and a
    # column scaling instead of n² exponentials (0.12 GEMMs of time against 0.30 at n = 256); each factor stays
    # within e^{±300} when the spread is at most _FACTORED_SPREAD (float32: e^{±40}, _FACTORED_SPREAD_32), and
    # the rounding is that of the exponent, as before. A trial with a wider spread takes the entrywise
    # exponentials (decided per trial: a trial's result never depends on the batch it shares).
    lo, hi = logd.amin(dim=-1, keepdim=True), logd.amax(dim=-1, keepdim=True)
    mid = 0.5 * (lo + hi)
    torch.mul(h[..., :k_new, :], (torch.exp(mid - logd[..., :k_new]) / ra)[..., :, None], out=m)
    m.mul_(torch.exp(logd - mid)[..., None, :])
    limit = _FACTORED_SPREAD if logd.dtype == torch.float64 else _FACTORED_SPREAD_32
    wide = torch.nonzero((hi - lo).reshape(-1) > limit).reshape(-1)
    if wide.numel():
        lw = logd[wide]
        m[wide] = h[wide, :k_new, :] / ra[wide, :, None] * (lw[:, None, :] - lw[:, :k_new, None]).exp()
    m.triu_()
    mu = _trmm(m, u) if _lapack_trmm(m) else _triu_matmul(m, u)
    return (h, tau, logr + logd[..., :k_new], mu), logr


def _apply_q(state, w: torch.Tensor) -> torch.Tensor:
    """``W Q`` for the state's ``Q`` (its first ``min(m, k)`` Householder columns), or ``W`` before any QR."""
    h, tau = state[0], state[1]
    if h is None:
        return w
    if tau.dim() == h.dim():  # compact-WY triangles from _geqrt
        return _gemqrt(h, tau, w)
    with linalg_threads(w.device):
        wq = torch.ormqr(h, tau, w, left=False)
    return wq[..., : min(h.shape[-2], h.shape[-1])]


# --- the QR step through scipy's LAPACK (CPU) -------------------------------------------------------------------
#
# Same Householder QR as torch.geqrf / ormqr (LAPACK's dgeqrt builds the same reflectors, dlarfg, and keeps the
# block reflectors' triangles T instead of the scalars τ; dgemqrt applies Q blockwise), called on zero-copy numpy
# views: a row-major (C-ordered) torch matrix is the column-major transpose, so ``W Q = (Qᵀ Wᵀ)ᵀ`` is computed in
# place in the rows of a copy of ``W``, and the factored matrix is copied once into a column-major buffer. Measured
# (one thread, float64, CPU time, interleaved with torch's calls on the shared development machine, in GEMMs of the
# same size): factor + apply 1.07 + 1.51 at n = 1024 (block 128) against 1.13–1.25 + 1.83–1.98 for torch's geqrf +
# ormqr (MKL here); 1.25 + 1.8 against 1.53 + 1.77 at n = 512 (block 64); equal at n = 256 (1.37 + 1.75 against
# 1.34–1.49 + 1.65), where torch's calls are kept. scipy's dgeqrf/dormqr (OpenBLAS) time as torch's at n = 256
# and 1024; forming Q (orgqr) and one GEMM is slower (2.0 GEMMs for the apply). scipy's BLAS thread pool is
# limited to torch's thread count for the duration of each call (threadpoolctl), so the engine's thread policy
# (:func:`linalg_threads`) holds for it too.

#: Matrices whose smaller side is at least this go through scipy's LAPACK on the CPU (float32/float64): the compact-WY
#: QR is faster than torch's from about n = 512 (measured above), equal at 256.
_LAPACK_QR_MIN = 384
#: … and the triangular update ``U ← M U`` (BLAS ``trmm``) when ``M`` is square with at least this many rows.
_TRMM_MIN = 128
#: … in 4 column blocks from this size on (:func:`_trmm`).
_TRMM_BLOCKS_MIN = 256
_LAPACK_FUNCS: dict[torch.dtype, tuple] = {}
_THREADPOOLS: list = []


def _lapack_qr(z: torch.Tensor) -> bool:
    """Whether the QR step of ``z`` (…, m, n) goes through scipy's LAPACK (CPU, float32/64, large enough)."""
    return (
        z.device.type == "cpu"
        and z.dtype in (torch.float32, torch.float64)
        and z.dim() == 3
        and min(z.shape[-2], z.shape[-1]) >= _LAPACK_QR_MIN
        and _threadpools() is not None
    )


def _lapack_trmm(m: torch.Tensor) -> bool:
    """Whether ``M U`` (``M`` upper triangular) goes through scipy's BLAS ``trmm`` (CPU, square ``M``, large)."""
    return (
        m.device.type == "cpu"
        and m.dtype in (torch.float32, torch.float64)
        and m.dim() == 3
        and m.shape[-2] == m.shape[-1] >= _TRMM_MIN
        and _threadpools() is not None
    )


def _trmm(m: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """``M U`` for square upper-triangular ``M`` (…, k, k) and upper-trapezoidal ``U`` by BLAS ``trmm``.

    Row-major ``M U`` is the column-major ``Uᵀ Mᵀ``: ``trmm`` multiplies a column-major ``Uᵀ`` by the
    lower-triangular ``Mᵀ`` from the right. From ``min(k, c) ≥ 256`` the columns of ``U`` are taken in 4 blocks
    as in :func:`_triu_matmul` (column block ``J`` needs only rows ``< end(J)`` of ``U`` and the leading square
    of ``M``): ``≈ 0.47 k³`` flops against ``k³`` for one ``trmm`` and ``2k³`` for a GEMM. Measured (one thread,
    CPU time, in GEMMs of time): 0.45 at n = 256 and 0.32 at 1024, against 0.62 and 0.47 for one ``trmm`` and
    0.92 and 0.67 for :func:`_triu_matmul`."""
    trmm = _funcs(m.dtype)[2]
    k, c = m.shape[-1], u.shape[-1]
    nb = 4 if min(k, c) >= _TRMM_BLOCKS_MIN else 1
    edges = [round(c * j / nb) for j in range(nb + 1)]
    out = torch.zeros(u.shape, dtype=u.dtype)
    with _blas_threads(m.device):
        for i in range(out.shape[0]):
            mi = m[i].numpy()
            for lo, hi in zip(edges[:-1], edges[1:]):
                e = min(hi, k)  # u[r, lo:hi] = 0 for r ≥ hi, so rows ≥ e of this block of M U vanish
                b = np.array(u[i, :e, lo:hi].numpy().T, order="F")  # U_blockᵀ, column-major (a copy)
                r = trmm(1.0, mi[:e, :e].T, b, side=1, lower=1, overwrite_b=1)  # Mᵀ[:e, :e] is lower triangular
                out[i, :e, lo:hi] = torch.from_numpy(r.T)
    return out


def _threadpools():
    """threadpoolctl's controller of the loaded BLAS libraries (built once: inspecting them takes ≈ 2 ms), or None."""
    if not _THREADPOOLS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - a declared dependency; torch's LAPACK is the fallback
            _THREADPOOLS.append(None)
        else:
            _THREADPOOLS.append(ThreadpoolController())
    return _THREADPOOLS[0]


def _blas_threads(device: torch.device):
    """Torch's LAPACK thread policy (:func:`linalg_threads`) with scipy's BLAS limited to the same count."""
    from contextlib import ExitStack

    stack = ExitStack()
    stack.enter_context(linalg_threads(device))
    stack.enter_context(_threadpools().limit(limits=torch.get_num_threads(), user_api="blas"))
    return stack


def _funcs(dtype: torch.dtype) -> tuple:
    if dtype not in _LAPACK_FUNCS:
        np_dtype = np.float64 if dtype == torch.float64 else np.float32
        _LAPACK_FUNCS[dtype] = (
            *_lapack.get_lapack_funcs(("geqrt", "gemqrt"), dtype=np_dtype),
            _blas.get_blas_funcs("trmm", dtype=np_dtype),
        )
    return _LAPACK_FUNCS[dtype]


def _wy_block(k: int) -> int:
    """Block size of the compact-WY QR (measured fastest: 32 at n = 256, 64 at 512, 128 at 1024)."""
    return max(1, min(k, 32 if k <= 384 else 64 if k <= 768 else 128))


def _geqrt(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``z = Q R`` per trial by LAPACK's ``geqrt``: ``(H, T)``, ``H`` (…, m, n) holding ``R`` on and above the
    diagonal and the Householder vectors below it (as ``torch.geqrf``), ``T`` (…, nb, min(m, n)) the triangles
    of the block reflectors. Both are column-major per trial (what LAPACK reads and writes without copies)."""
    geqrt = _funcs(z.dtype)[0]
    batch, m, n = z.shape
    k = min(m, n)
    nb = _wy_block(k)
    h = torch.empty((batch, n, m), dtype=z.dtype).mT  # column-major per trial
    h.copy_(z)
    t = torch.empty((batch, k, nb), dtype=z.dtype).mT
    with _blas_threads(z.device):
        for i in range(batch):
            a = h[i].numpy()
            a_out, t_out, info = geqrt(nb, a, overwrite_a=1)
            if info != 0:  # pragma: no cover - only for invalid arguments
                raise RuntimeError(f"LAPACK geqrt failed (info={info})")
            if not np.shares_memory(a_out, a):  # pragma: no cover - f2py works in place on a column-major array
                a[...] = a_out
            t[i].numpy()[...] = t_out
    return h, t


def _gemqrt(h: torch.Tensor, t: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``W Q`` (its first ``min(m, n)`` columns) for ``Q`` in the compact-WY form ``(H, T)`` of :func:`_geqrt`.

    ``W`` is copied row-major; its transpose is then a column-major ``Wᵀ``, overwritten in place by ``Qᵀ Wᵀ``."""
    gemqrt = _funcs(w.dtype)[1]
    k = t.shape[-1]
    out = torch.empty(w.shape, dtype=w.dtype)
    out.copy_(w)
    with _blas_threads(w.device):
        for i in range(out.shape[0]):
            c = out[i].numpy().T  # Wᵀ, column-major, (m, n_out)
            c_out, info = gemqrt(h[i, :, :k].numpy(), t[i].numpy(), c, side="L", trans="T", overwrite_c=1)
            if info != 0:  # pragma: no cover - only for invalid arguments
                raise RuntimeError(f"LAPACK gemqrt failed (info={info})")
            if not np.shares_memory(c_out, c):  # pragma: no cover - f2py works in place on a column-major array
                c[...] = c_out
    return out[..., :k]


#: Largest spread ``max ln d − min ln d`` for which the block update scales rows and columns separately
#: (:func:`_qr_update`); wider spreads take ``e^{ln d_j − ln d_i}`` entry by entry.
_FACTORED_SPREAD = 600.0
#: The same for float32, whose range is e^{±88}: each factor within e^{±40} (600 overflowed there: a width-4,
#: depth-500 float32 product gave inf · 0 = NaN and its SVD failed).
_FACTORED_SPREAD_32 = 80.0


#: Inside a block the running product is rescaled after every this many factors (and at the block's end):
#: it can only leave the float64 range if the factors grow norms by more than e^{700/16} ≈ 1e19 each.
_RESCALE_EVERY = 16


def _apply_block(state, block: list[torch.Tensor]):
    """``W_k ⋯ W_1 Q`` for the factors of a block; with more than one factor, rescaled (every
    :data:`_RESCALE_EVERY` factors and at the end) by the power of two nearest its largest entry — exact,
    and computed from that trial's numbers alone, so a trial's result does not depend on the batch it
    shares. Returns the matrix and the accumulated natural log of the scale factors (or None)."""
    z = None
    exponent = None
    for j, w in enumerate(block):
        z = _apply_q(state, w) if z is None else w @ z
        if len(block) > 1 and ((j + 1) % _RESCALE_EVERY == 0 or j + 1 == len(block)):
            top = torch.maximum(z.amax(dim=(-2, -1)), z.amin(dim=(-2, -1)).neg())  # max |z|, no temporary
            e = torch.frexp(torch.where(top > 0, top, torch.ones_like(top))).exponent  # top = m·2^e, ½ ≤ m < 1
            z.mul_(torch.pow(2.0, -e.to(z.dtype))[:, None, None])  # exact (a power of two), in place
            exponent = e if exponent is None else exponent + e
    return z, None if exponent is None else exponent.to(z.dtype) * math.log(2.0)


def _block_step(state, block: list[torch.Tensor], log_condition_limit: float):
    """Advance the recursion over one block; a trial whose block QR shows a spread ``max ln|R_ii| −
    min ln|R_ii|`` above ``log_condition_limit`` redoes it as two half blocks (recursively, down to
    single factors), so every QR that is kept sees a condition number within the limit."""
    z, logscale = _apply_block(state, block)
    new, logr = _qr_update(state, z, logscale)
    if len(block) > 1:
        spread = torch.nan_to_num(logr.amax(-1) - logr.amin(-1), nan=math.inf)
        bad = torch.nonzero(spread > log_condition_limit).reshape(-1)
        if bad.numel():
            sub = tuple(None if x is None else x[bad] for x in state)
            half = len(block) // 2
            for part in (block[:half], block[half:]):
                sub = _block_step(sub, [w[bad] for w in part], log_condition_limit)
            new = tuple(x.index_put((bad,), y) for x, y in zip(new, sub))
    return new


def _qr_accumulate(factors, every: int = 1, log_condition_limit: float = math.inf):
    """Run the discrete-QR recursion; return ``(logd, U)`` with ``P = Q diag(e^{logd}) U``.

    ``every = k``: re-orthonormalise after each block of up to ``k`` consecutive factors of the same
    shape (a shape change always ends a block, so a narrower layer is never hidden inside a block). Inside
    a block the factors multiply ``Q`` directly (rescaled exactly by powers of two, logs accumulated, so
    nothing overflows). A trial whose block turned out worse conditioned than ``e^{log_condition_limit}``
    — measured as the spread ``max ln|R_ii| − min ln|R_ii|`` of the block's own QR — redoes it in halves
    (:func:`_block_step`), so every kept QR sees a condition number within the limit (module docstring,
    "Stabilising every k layers"). Trials are handled independently: the result of a trial does not
    depend on the others in the batch.
    """
    every = max(1, int(every))
    state = (None, None, None, None)
    it = iter(factors)
    pending = next(it, None)
    while pending is not None:
        block = [pending]
        pending = next(it, None)
        while pending is not None and len(block) < every and tuple(pending.shape) == tuple(block[0].shape):
            block.append(pending)
            pending = next(it, None)
        state = _block_step(state, block, log_condition_limit)
    return state[2], state[3]


#: Largest condition number a block of unorthogonalised factors may reach, per dtype: a block's QR then
#: loses at most about ``eps · κ`` relative accuracy in ``|R_ii|`` (float64: ``1e-10 / eps ≈ 9·10⁵``;
#: float32: below 1, i.e. a QR after every factor as before).
def block_condition_limit(dtype: torch.dtype) -> float:
    """``κ_max = 1e-10 / eps(dtype)``: the block condition number that keeps ``eps·κ ≤ 1e-10``."""
    return 1e-10 / torch.finfo(dtype).eps


_SPREAD_CACHE: dict[tuple, tuple[float, float]] = {}


def _pilot_layers(n: int) -> int:
    """Pilot size: 64 factors for small ``n`` (cheap), down to 8 for ``n ≥ 128`` (8 QRs and draws)."""
    return int(min(64, max(8, 2**24 // max(n, 1) ** 3)))


def lyapunov_spread(spec: WeightInit, n: int, dtype: torch.dtype, device: torch.device) -> tuple[float, float]:
    """Measured Lyapunov spread ``λ_1 − λ_n`` of products of ``n × n`` factors of ``spec`` and its per-factor
    standard deviation, ``(s, σ)`` (cached per process).

    Pilot: :func:`_pilot_layers` independent factors (64 for small ``n``, 8 for ``n ≥ 128``) drawn from a
    fixed generator — independent of the user's seed, so the block length depends only on the
    configuration, never on seeds or chunking — and factored by QR; the average of ``ln|R_11| − ln|R_nn|``
    estimates ``λ_1 − λ_n`` (Benettin et al. 1980). In the recursion each step factors ``W Q``, which for
    orthogonally invariant ensembles (Gaussian, Haar) has the law of ``W`` itself, so there
    ``E ln|R_ii| = λ_i`` exactly (Newman 1986: ``½[ψ((n−i+1)/2) + ln(2σ²/n)]`` for Gaussian factors,
    spread ≈ 1.3 at n = 5, 3.4 at 256, 4.1 at 1024); for other i.i.d. entries it is the usual
    approximation. Haar factors give ~eps. ``σ`` is the sample standard deviation of the per-factor
    values (≈ 1.1 for Gaussian factors: ``½ ln χ²_1`` dominates). The estimate only sets the block length:
    accuracy is enforced block by block (:func:`_qr_accumulate`).
    """
    key = (tuple(sorted((k, repr(v)) for k, v in spec.describe().items())), n, device.type)
    if key not in _SPREAD_CACHE:
        gen = trial_generator(0, 2**40, device)
        layers = _pilot_layers(n)
        with torch.no_grad():
            mats = sample_matrices(spec, layers, n, n, generator=gen, dtype=torch.float64, device=device)
            with linalg_threads(device):
                r = torch.linalg.qr(mats, mode="r").R
            logr = torch.log(torch.diagonal(r, dim1=-2, dim2=-1).abs())
        per_layer = (logr[:, 0] - logr[:, -1]).cpu().numpy()
        mean, sd = float(per_layer.mean()), float(per_layer.std(ddof=1))
        _SPREAD_CACHE[key] = (mean, sd) if math.isfinite(mean) and math.isfinite(sd) else (math.inf, 0.0)
    return _SPREAD_CACHE[key]


#: Standard deviations of a block's spread kept in reserve below ``ln κ_max`` when choosing ``k``: a trial
#: whose block still exceeds the limit (probability ≈ 7 % per block and trial; more for a heavy tail)
#: redoes it in halves. Larger values mean shorter blocks and fewer redone ones (measured: 2.5 was slower
#: than 1.5 at n = 4 and n = 256).
BLOCK_MARGIN_SD = 1.5


def qr_block_length(spread: float, dtype: torch.dtype, depth: int, sd: float = 0.0) -> int:
    """The largest ``k ≤ depth`` with ``k s + 1.5 σ √k ≤ ln κ_max`` (``s, σ`` = :func:`lyapunov_spread`,
    ``κ_max`` = :func:`block_condition_limit`), at least 1: the block length whose condition number
    ``e^{k s}`` (a sum of ``k`` independent per-factor spreads, standard deviation ``σ √k``) stays within
    ``κ_max`` but for rare fluctuations. One block for the whole product when ``e^{depth·s} ≤ κ_max``."""
    limit = math.log(max(block_condition_limit(dtype), 1.0))
    if not (math.isfinite(spread) and math.isfinite(sd)) or limit <= 0.0:
        return 1
    if spread * depth + BLOCK_MARGIN_SD * sd * math.sqrt(depth) <= limit or spread * depth <= 0.0:
        return depth
    if spread <= 0.0:  # only the fluctuations grow the condition number
        return max(1, min(depth, int((limit / (BLOCK_MARGIN_SD * sd)) ** 2)))
    # k s + c √k ≤ L  ⇔  √k ≤ (−c + √(c² + 4 s L)) / (2 s)
    c = BLOCK_MARGIN_SD * sd
    root = (-c + math.sqrt(c * c + 4.0 * spread * limit)) / (2.0 * spread)
    return max(1, min(depth, int(root * root + 1e-9)))


def _coupling(u: torch.Tensor) -> torch.Tensor:
    """``c_i = max_{r ≤ i < c} |U_rc|``: the largest coupling across the cut between ``i`` and ``i + 1``."""
    a = torch.triu(u.abs(), diagonal=1)
    suffix = torch.flip(torch.cummax(torch.flip(a, dims=[-1]), dim=-1).values, dims=[-1])  # max_{c ≥ j}
    s = torch.cat([suffix[..., 1:], torch.zeros_like(suffix[..., :1])], dim=-1)  # max_{c > i}, row r
    return torch.cummax(s, dim=-2).values.diagonal(dim1=-2, dim2=-1)  # max over r ≤ i


def qr_log_singular_values(
    logd: torch.Tensor, u: torch.Tensor, *, max_sweeps: int = 8, tol: float | None = None
) -> np.ndarray:
    """Exact ``ln σ_i`` of ``diag(e^{logd}) U`` (batched, ``U`` of shape ``(…, k, n)``, ``k ≤ n``), decreasing.

    Zero-shift QR sweeps in log-scaled form (module docstring), then block SVDs for the indices that
    did not decouple. ``tol`` (default ``√eps``) is the coupling below which two indices count as
    decoupled: the neglected terms change ``ln σ`` by ``O(tol²)``.

    Early exit: the sweeps only separate scales that one SVD could not resolve. A backward-stable SVD of a
    block ``G = diag(e^{logd − max}) U`` has absolute errors ``≲ eps·σ_max(G)``, so relative errors
    ``≲ eps·σ_max/σ_i``; when every block (before any sweep: the whole matrix) has ``σ_max/σ_min ≤ κ_max``
    (:func:`block_condition_limit`, the bound the blocks of the product itself keep) its singular values are
    already accurate to ``eps·κ_max = 1e-10`` and the sweeps stop. A block is tried only when its ``logd``
    spread is at most ``ln κ_max`` (a screen; the check above decides; a failed try costs one SVD). Before, a
    product whose whole spectrum fits in one SVD (a short or near-orthogonal product) still ran every sweep.

    Graded exit (:func:`_graded_log_sv`): after each sweep, if ``U`` is well conditioned (``κ(U) ≤ 100``, bounded
    from above) and the ``logd`` spread is at most 340, one SVD of the whole row-sorted graded matrix gives every
    ``ln σ_i`` to ``≲ n·eps·κ(U)`` relative, however wide the grading (the log-determinant is checked). Square
    Gaussian products of moderate depth have a continuum of close ``d``'s that no number of sweeps decouples
    (width 256, depth 50: all 9 sweeps ran, then the same SVD per undecoupled block, 0.14 s); one sweep makes
    ``κ₂(U) ≈ 10`` there, and the exit costs one sweep and one SVD (0.04 s), within 5e-14 of 300 sweeps.
    """
    eps = torch.finfo(u.dtype).eps
    tol = math.sqrt(eps) if tol is None else tol
    kmax = block_condition_limit(u.dtype)
    screen = math.log(max(kmax, 1.0))
    spread = logd.max(dim=-1).values - logd.min(dim=-1).values
    if bool((spread <= screen).all()):  # the whole graded matrix in one SVD
        top = logd.max(dim=-1, keepdim=True).values
        with linalg_threads(u.device):
            sv = torch.linalg.svdvals(torch.exp(logd - top)[..., :, None] * u)
        if bool((sv[..., 0] <= kmax * sv[..., -1]).all()):
            with np.errstate(divide="ignore"):
                return (torch.log(sv) + top).detach().cpu().to(torch.float64).numpy()
    for sweep in range(max_sweeps + 1):
        with linalg_threads(u.device):
            r = torch.linalg.qr(u.transpose(-2, -1), mode="r").R  # (…, k, k); Q is not needed
        rd = torch.diagonal(r, dim1=-2, dim2=-1)
        ra = rd.abs()
        scale = torch.exp(logd[..., None, :] - logd[..., :, None])
        u = torch.triu(r / ra[..., :, None] * scale)
        logd = torch.log(ra) + logd
        out = _graded_log_sv(logd, u)  # U well conditioned: one SVD of the graded matrix (cheaper than sweeping)
        if out is not None:
            return out
        coupling = _coupling(u)
        if bool((coupling <= tol).all()) or sweep == max_sweeps:
            break
        logd_np, u_np, c_np = _as_numpy(logd, u, coupling)
        if _blocks_within(logd_np, c_np, tol, screen):
            out, ok = _block_log_sv(logd_np, u_np, c_np, tol, kmax)
            if ok:
                return out
    out, _ = _block_log_sv(*_as_numpy(logd, u, coupling), tol, None)
    return out


#: :func:`_graded_log_sv` is used when the swept ``U`` has ``κ(U) ≤`` this bound (relative error of its ``ln σ``
#: ``≲ n·eps·κ(U)`` ≤ 6e-12 at n = 256)…
GRADED_KAPPA_MAX = 100.0
#: … and the graded matrix's ``ln d`` spread is at most this (``e^{-spread}`` and its square stay normal floats).
_GRADED_SPREAD_MAX = 340.0


def _graded_log_sv(logd: torch.Tensor, u: torch.Tensor) -> np.ndarray | None:
    """``ln σ`` of ``diag(e^{logd}) U`` from one SVD of the row-graded matrix, or ``None`` if it does not apply.

    After a zero-shift sweep ``U`` is square, unit-modulus on the diagonal and well conditioned even where
    close ``d``'s keep the sweeps from decoupling (Gaussian factors at n = 256, depth 50: ``κ₂(U) ≈ 10`` after one
    sweep, against ``6·10⁵`` before). For ``G = D U`` a perturbation ``D(U + δU)`` moves every ``σ_i`` by a
    relative ``≤ ‖U⁻¹‖ ‖δU‖`` (``G + DδU = G(I + U⁻¹δU)``; Eisenstat & Ipsen 1995, SIAM J. Numer. Anal. 32:1972),
    so an SVD whose backward error is row-wise small (``‖δG_i‖ ≲ n·eps·‖G_i‖``) has relative errors
    ``≲ n·eps·κ(U)`` in every ``σ_i`` however wide the grading (Demmel & Veselić 1992, SIAM J. Matrix Anal. Appl.
    13:1204). LAPACK's SVD is only normwise backward stable in theory; row-wise small errors are what it
    shows on rows sorted by decreasing norm (the rows are sorted first; σ does not change), and two checks
    guard the result: ``κ(U)`` — bounded from above by ``√(‖U‖₁‖U‖_∞ ‖U⁻¹‖₁‖U⁻¹‖_∞)`` — at most
    :data:`GRADED_KAPPA_MAX`, and ``Σ ln σ_i = ln|det G| = Σ (ln d_i + ln|U_ii|)`` to ``n·1e-12`` (a lost small
    ``σ_i``, the failure mode of an inaccurate SVD of a graded matrix, comes out too large and shows there).
    Measured against 200 sweeps (n = 256, depth 50): ≤ 5e-14 in ``ln σ``; the old path (8 sweeps, then the same
    SVD per undecoupled block) agrees to the same digits at under a third of the cost.
    """
    k = u.shape[-1]
    if u.shape[-2] != k or k < 2 or u.dtype != torch.float64:  # (float32 keeps its sweeps: n·eps·κ ≈ 1e-3)
        return None
    spread = logd.max(dim=-1).values - logd.min(dim=-1).values
    if not bool((spread <= _GRADED_SPREAD_MAX).all()):
        return None
    eye = torch.eye(k, dtype=u.dtype, device=u.device).expand_as(u)
    with linalg_threads(u.device):
        inv = torch.linalg.solve_triangular(u, eye, upper=True)
    if not bool(torch.isfinite(inv).all()):
        return None

    def two_norm_bound(m: torch.Tensor) -> torch.Tensor:
        a = m.abs()
        return torch.sqrt(a.sum(dim=-2).amax(dim=-1) * a.sum(dim=-1).amax(dim=-1))  # √(‖·‖₁‖·‖_∞) ≥ ‖·‖₂

    kappa = two_norm_bound(u) * two_norm_bound(inv)
    if not bool((kappa <= GRADED_KAPPA_MAX).all()):
        return None
    order = torch.argsort(logd, dim=-1, descending=True)
    top = logd.max(dim=-1, keepdim=True).values
    g = torch.exp(logd - top)[..., :, None] * u
    g = torch.take_along_dim(g, order[..., :, None], dim=-2)
    with linalg_threads(u.device):
        sv = torch.linalg.svdvals(g)
    logsv = torch.log(sv) + top  # a zero σ gives −inf and fails the check below
    logdet = (logd + torch.log(torch.diagonal(u, dim1=-2, dim2=-1).abs())).sum(dim=-1)
    if not bool(((logsv.sum(dim=-1) - logdet).abs() <= k * 1e-12).all()):
        return None
    return logsv.detach().cpu().to(torch.float64).numpy()


def _as_numpy(*tensors: torch.Tensor) -> list[np.ndarray]:
    return [t.detach().cpu().to(torch.float64).numpy() for t in tensors]


def _block_bounds(coupling: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Start and end indices of the blocks that ``coupling ≤ tol`` separates (one trial)."""
    k = coupling.shape[-1]
    cuts = np.flatnonzero(coupling[:-1] <= tol) + 1 if k > 1 else np.array([], dtype=int)
    return np.concatenate([[0], cuts]), np.concatenate([cuts, [k]])


def _blocks_within(logd: np.ndarray, coupling: np.ndarray, tol: float, screen: float) -> bool:
    """Whether every block of every trial has a ``logd`` spread ``≤ screen`` (worth one SVD per block)."""
    flat_l = logd.reshape(-1, logd.shape[-1])
    flat_c = coupling.reshape(-1, coupling.shape[-1])
    for lt, ct in zip(flat_l, flat_c):
        for a, b in zip(*_block_bounds(ct, tol)):
            if lt[a:b].max() - lt[a:b].min() > screen:
                return False
    return True


def _block_log_sv(
    logd: np.ndarray, u: np.ndarray, coupling: np.ndarray, tol: float, kmax: float | None
) -> tuple[np.ndarray, bool]:
    """``ln σ`` of ``diag(e^{logd}) U`` (``U`` upper triangular) from the SVDs of its decoupled diagonal blocks,
    decreasing, and whether every block had ``σ_max/σ_min ≤ kmax`` (always ``True`` for ``kmax=None``)."""
    flat_l = logd.reshape(-1, logd.shape[-1])
    flat_u = u.reshape(-1, *u.shape[-2:])
    flat_c = coupling.reshape(-1, coupling.shape[-1])
    out = np.empty_like(flat_l)
    for t in range(flat_l.shape[0]):
        diag = np.abs(np.diagonal(flat_u[t]))
        with np.errstate(divide="ignore"):
            res = flat_l[t] + np.log(diag)
        for a, b in zip(*_block_bounds(flat_c[t], tol)):
            if b - a > 1:
                top = flat_l[t, a:b].max()
                blk = np.exp(flat_l[t, a:b] - top)[:, None] * flat_u[t, a:b, a:b]
                sv = np.linalg.svd(blk, compute_uv=False)
                if kmax is not None and not sv[0] <= kmax * sv[-1]:
                    return out.reshape(logd.shape), False
                with np.errstate(divide="ignore"):
                    res[a:b] = np.log(sv) + top
        out[t] = np.sort(res)[::-1]
    return out.reshape(logd.shape), True


def product_spectrum(
    depth: int,
    width: int | None = None,
    init: str = "gaussian",
    *,
    trials: int = 100,
    seed: int | None = 0,
    device: str | torch.device = "auto",
    dtype: torch.dtype | str = torch.float64,
    sigma_w2: float | None = None,
    weights: str | None = None,
    widths: Sequence[int] | None = None,
    init_kwargs: dict[str, object] | None = None,
    stabilize: bool | str = "auto",
    qr_every: int | str = "auto",
    max_sweeps: int = 8,
    max_chunk: int | None = None,
    memory_budget: int | None = None,
    progress: bool | str = False,
) -> SpectrumResult:
    """Squared singular values of ``P = W_L ⋯ W_1`` (i.i.d. random factors), ``trials`` independent products.

    Factors: ``W_l`` of shape ``n_l × n_{l−1}`` (``widths = (n_0, …, n_L)``, or all equal to ``width``;
    give one of the two — both raise ``ValueError``),
    drawn by the ``torch.nn.init`` scheme ``init`` with torch's own defaults (e.g. ``kaiming_normal`` ⇒
    ``σ_w² = 2``, ``orthogonal`` ⇒ Haar with gain 1; ``init_kwargs`` passes ``gain``/``a``/``mode``/
    ``nonlinearity``), or with an explicit ``sigma_w2``: entries of variance ``σ_w²/n_{l−1}`` in the
    ensemble ``weights`` (``"gaussian"``, ``"uniform"``, or ``"orthogonal"`` = ``√σ_w² ×`` Haar). See
    :mod:`rmt_init.montecarlo.ensembles`. ``init="gaussian"`` alone is the Ginibre product with
    ``σ_w² = 1`` whose ``N → ∞`` spectrum is the Fuss–Catalan law (Penson & Życzkowski 2011, PRE 83,
    061118, arXiv 1103.3453) and whose finite-``N`` moments are exact in
    ``rmt_init.theory.finite_width_moments``.

    ``stabilize``: ``True`` — QR-stabilised algorithm (exact log singular values at any depth; see the
    module docstring); ``False`` — direct product (rescaled, never overflows, but ``σ_i`` below
    ``≈ eps·σ_1`` are not resolved); ``"auto"`` — QR above depth ``STABILIZE_AUTO_DEPTH`` (32).
    ``qr_every``: with the QR algorithm, re-orthonormalise after every ``k`` factors (an int ``k ≥ 1``;
    ``1`` is the classical every-layer recursion) or ``"auto"``: ``k ≈ ln κ_max / (λ_1 − λ_n)`` less a
    margin for fluctuations, from the measured Lyapunov spread (:func:`lyapunov_spread`,
    :func:`qr_block_length`; module docstring), which keeps the log singular values within about
    ``1e-10`` (relative) of the every-layer path in float64; float32 always uses ``k = 1``. The ``k``
    used is ``config["qr_every"]``. Measured (one thread, Gaussian factors, depth 50; old and new code
    interleaved in one script on the shared 2-core machine, medians of per-round ratios, CPU and wall time; three
    runs at 256, two at 1024): stabilised/direct 1.38–1.59 at width 256 (``k = 3``; 1.57–1.64 for the code before
    the row-and-column block scaling, BLAS ``trmm`` update and scipy-LAPACK QR below, new/old 0.89–0.95),
    1.57–1.63 at width 1024 (``k = 2``; 2.0–2.04 before, new/old 0.79); every-layer QR 2.1–2.3 (2.5–2.7 before)
    at 256; Haar factors ≈ 1.0 (one block). What is left is LAPACK's: per block a QR (``4n³/3`` flops, 0.67 GEMMs,
    in ≈ 1.1–1.5 GEMMs of time) and the application of its ``Q`` in place of one GEMM (one GEMM's flops in
    ≈ 1.5–1.8 GEMMs of time), plus the triangular update (``≈ 0.47 n³`` flops in ≈ 0.3–0.45 GEMMs of time,
    ``trmm`` in column blocks). At the GEMM rate a block of ``k = 2`` would cost ``(1 + 0.67 + 1 + 0.24)/2 ≈
    1.45`` GEMMs per factor against the direct product's 1, and ``k = 3`` ``1.30`` (before the random numbers and
    rescaling common to both); at LAPACK's measured rates (55–65 % of the GEMM's for the QR steps) that is
    ≈ 1.6 at width 1024 and ≈ 1.5 at 256, which is what was measured. The CPU steps run through scipy's
    LAPACK/BLAS where that measured faster (QR for sides ≥ 384, ``trmm`` for ≥ 128; :func:`_qr_update`), with
    scipy's BLAS threads limited to torch's setting.
    (Tried and slower here: applying ``Q`` by a compact-WY loop of GEMMs, 1.8×; ``geqrf`` of ``[Z | Wᵀ]`` to
    get ``W Q`` from the trailing update, 1.25×; forming ``Q`` by ``orgqr`` and one GEMM.)

    Engine: ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``), ``dtype`` (float64 or float32), ``seed``
    (each trial has its own generator, so results do not depend on the chunking), ``max_chunk``
    (trials per chunk) / ``memory_budget`` (bytes; default 1 GiB) — a chunk that runs out of memory is
    halved and retried — and ``progress`` (tqdm bar: ``True``, ``False``, ``"auto"``). Threads: torch's
    current setting is kept (LAPACK steps and widths ≤ 64 run on one thread); on the shared 2-core
    development machine 2 threads made the QR-stabilised product at width 256 8.5× slower, see
    :func:`~rmt_init.montecarlo.network_jacobian_spectrum`. A problem whose
    single trial cannot fit in the device's memory at all (e.g. width 10⁶: one factor alone is 8·10¹²
    bytes) raises ``ValueError`` up front, naming the sizes and the estimated bytes.

    Returns a :class:`SpectrumResult` with ``squared_singular_values`` and ``log_singular_values`` of shape
    ``(trials, min(n_0, n_L))``; if a hidden width is smaller, the missing ones are exact zeros (``ln σ =
    −inf``). ``.growth_rates = ln σ / L``. At large depth ``σ² = e^{2 ln σ}`` leaves the float64 range
    (e.g. depth 10⁴, width 4): the log values and growth rates stay exact and finite, and only reading
    ``squared_singular_values``/``samples`` warns (``RuntimeWarning``) that they are saturated.

    Examples: ``product_spectrum(3, 100, trials=20).samples.mean()`` ≈ 1 (``E tr(PPᵀ)/N = σ_w^{2L}``);
    Haar factors give an exact isometry:

    >>> r = product_spectrum(3, 4, "orthogonal", trials=2, device="cpu")
    >>> bool(np.allclose(r.squared_singular_values, 1.0))
    True
    """
    depth = check_int("depth", depth, minimum=1)
    if widths is not None and width is not None:
        raise ValueError(
            f"give either width or widths, not both: got width={width!r} and widths={widths!r} "
            "(width=n means widths=[n] * (depth + 1))"
        )
    if widths is not None:
        ws = check_widths("widths", widths, length=depth + 1)
    else:
        if width is None:
            raise ValueError("give width (an integer >= 1) or widths (a sequence of depth + 1 integers)")
        ws = (check_int("width", width, minimum=1),) * (depth + 1)
    trials = check_int("trials", trials, minimum=1)
    seed = resolve_seed(seed)
    dev = resolve_device(device)
    dt = resolve_dtype(dtype)
    spec = weight_init(init, sigma_w2=sigma_w2, weights=weights, init_kwargs=init_kwargs)
    max_sweeps = check_int("max_sweeps", max_sweeps, minimum=0)
    progress = check_progress(progress)
    auto_every = isinstance(qr_every, str) and qr_every.strip().lower() == "auto"
    if not auto_every:
        if isinstance(qr_every, str):
            raise ValueError(f"unknown qr_every {qr_every!r}; valid choices are 'auto' or an integer >= 1")
        qr_every = check_int("qr_every", qr_every, minimum=1)
    if isinstance(stabilize, str):
        if stabilize.strip().lower() != "auto":
            raise ValueError(f"unknown stabilize {stabilize!r}; valid choices are True, False, 'auto'")
        use_qr = depth > STABILIZE_AUTO_DEPTH
    elif isinstance(stabilize, (bool, np.bool_)):
        use_qr = bool(stabilize)
    else:
        raise ValueError(f"unknown stabilize {stabilize!r}; valid choices are True, False, 'auto'")

    n_sv = min(ws[0], ws[-1])
    k_min = min(ws)
    itemsize = torch.finfo(dt).bits // 8
    block_numbers = max(n_out * n_in * cnt for _, cnt, n_out, n_in in layer_blocks(ws))
    per_trial = itemsize * (2 * block_numbers + 4 * max(ws) ** 2 + 4 * max(ws) * ws[0])
    # Lower bound of one trial's memory: a factor W_l, the running product (or Q, n_l × ≥ min(n_0, n_l))
    # and the new product W_l P coexist.
    least = itemsize * max(ws[l + 1] * ws[l] + 2 * ws[l + 1] * min(ws[0], ws[l + 1]) for l in range(depth))
    sizes = f"width={ws[0]}" if width is not None else f"widths={_short_widths(ws)}"
    check_memory(least, dev, f"product_spectrum(depth={depth}, {sizes}, dtype={str(dt).replace('torch.', '')})",
                 "reduce the width")
    budget = memory_budget if memory_budget is not None else _DEFAULT_BUDGET
    chunk = chunk_from_budget(per_trial, budget, max_chunk, trials)

    every = 1
    if use_qr:
        if auto_every:
            # square sizes that occur in runs of ≥ 2 equal factors (only those can share a block)
            square = {ws[l] for l in range(depth - 1) if ws[l] == ws[l + 1] == ws[l + 2]}
            if square:
                with limit_threads(threads_for(dev, max(ws))):
                    estimates = [lyapunov_spread(spec, n, dt, dev) for n in square]
                every = min(qr_block_length(m, dt, depth, sd) for m, sd in estimates)
        else:
            every = qr_every

    def run(part: Sequence[int]) -> np.ndarray:
        gens = [trial_generator(seed, t, dev) for t in part]
        factors = _factor_stream(spec, ws, gens, dt, dev)
        with torch.no_grad():
            if use_qr:
                logd, u = _qr_accumulate(factors, every, math.log(block_condition_limit(dt)))
                logsv = qr_log_singular_values(logd, u, max_sweeps=max_sweeps)
            else:
                logsv = _direct_log_sv(factors, dt).cpu().to(torch.float64).numpy()
                logsv = -np.sort(-logsv, axis=-1)
        out = np.full((len(part), n_sv), -np.inf)
        keep = min(k_min, n_sv)
        out[:, :keep] = logsv[:, :keep]
        return out

    with limit_threads(threads_for(dev, max(ws))):
        parts = run_chunked(run, list(range(trials)), chunk, progress=progress, description="products")
    logsv = np.concatenate(parts, axis=0)
    if np.isnan(logsv).any():
        raise RuntimeError("non-finite values in the product recursion (a factor was exactly singular?)")
    with np.errstate(over="ignore", under="ignore"):
        sq = np.exp(2.0 * logsv)  # may saturate at large depth: the result warns when sq is read, not here
    config: dict[str, object] = {
        "kind": "product",
        "depth": depth,
        "widths": list(ws),
        **spec.describe(),
        "sigma_w2_effective": [spec.effective_sigma_w2((ws[l + 1], ws[l])) for l in range(depth)],
        "trials": trials,
        "seed": seed,
        "device": str(dev),
        "dtype": str(dt).replace("torch.", ""),
        "stabilize": use_qr,
        "method": "qr" if use_qr else "direct",
        "qr_every": every,
        "max_sweeps": max_sweeps,
    }
    return SpectrumResult(
        squared_singular_values=sq,
        log_singular_values=logsv,
        structural_zeros=np.zeros(trials, dtype=np.int64),
        config=config,
    )
