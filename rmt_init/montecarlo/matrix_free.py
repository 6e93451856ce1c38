"""Matrix-free spectra of Jacobians from Jacobian-vector and vector-Jacobian products only.

* :class:`JacobianOperator` — the Jacobian ``J = ∂fn/∂x`` at ``x0`` of a map ``fn: R^{n_in} → R^{n_out}`` as a
  linear operator: ``matvec(V) = J V`` by forward mode (``torch.func.jvp``), ``rmatvec(U) = Jᵀ U`` by reverse
  mode (one ``torch.func.vjp`` at ``x0``, its pullback reused), both batched over columns with
  ``torch.func.vmap``. ``J`` is never formed.
* :func:`lanczos_squared_singular_values` — the ``k`` largest or smallest squared singular values of ``J`` by
  Golub–Kahan–Lanczos bidiagonalization with full reorthogonalization (Golub & Kahan 1965, SIAM J. Numer. Anal.
  B 2(2); Golub & Van Loan, *Matrix Computations*, 4th ed., §10.4).
* :func:`stochastic_lanczos_quadrature` — the spectral density of ``JᵀJ`` by stochastic Lanczos quadrature
  (Ubaru, Chen & Saad 2017, SIAM J. Matrix Anal. Appl. 38(4):1075–1099; as PyHessian, Yao et al. 2020,
  arXiv:1912.07145, does for Hessians), returned as an :class:`SLQEstimate` with moments and their standard errors.

Squared singular values. ``J`` is ``n_out × n_in``; its squared singular values are here the
``p = min(n_out, n_in)`` eigenvalues of the *smaller* Gram matrix (``JᵀJ`` when ``n_in ≤ n_out``, else ``JJᵀ``).
The larger Gram matrix has these plus ``|n_out − n_in|`` structural zeros, which
:func:`lanczos_squared_singular_values` does not return (SLQ works on ``JᵀJ`` and does see them: an atom at 0 of
mass ``(n_in − n_out)/n_in`` when ``n_out < n_in``).
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .._validate import check_choice, check_int, check_real

__all__ = [
    "FORWARD_MODES",
    "JacobianOperator",
    "SLQEstimate",
    "lanczos_squared_singular_values",
    "stochastic_lanczos_quadrature",
]

_EPS = float(np.finfo(np.float64).eps)

#: How :class:`JacobianOperator` computes ``J V``: forward mode (``"jvp"``), the double-vjp trick, or ``"auto"``.
FORWARD_MODES = ("auto", "jvp", "double-vjp")


# --------------------------------------------------------------------------------------------------------------
# The operator
# --------------------------------------------------------------------------------------------------------------


class JacobianOperator:
    """The Jacobian ``J = ∂fn/∂x |_{x0}`` (shape ``(n_out, n_in)``) as a linear operator; ``J`` is never formed.

    ``fn`` maps a flat tensor of shape ``(n_in,)`` to a flat tensor of shape ``(n_out,)`` (float64 by default; any
    floating dtype and device, taken from ``x0``). Attributes: ``shape == (n_out, n_in)``, ``dtype``, ``device``,
    ``output`` (``fn(x0)``, detached), and the counters ``matvecs`` / ``rmatvecs`` — the number of
    Jacobian-vector / vector-Jacobian products computed so far (columns, not calls), for benchmarks.

    Backends, chosen at construction and reported in ``backend`` / ``forward_mode``:

    * ``backend == "torch.func"`` (preferred): ``rmatvec`` applies the pullback of one ``torch.func.vjp(fn, x0)``
      (the forward's saved tensors are kept; each product costs one backward pass), vmapped over columns.
      ``matvec`` with ``forward="jvp"`` is forward mode, ``torch.func.jvp`` (one forward pass with tangents per
      product, recomputing the primal), vmapped over columns (``forward_mode == "vmap-jvp"``); where ``vmap``
      refuses ``fn`` (data-dependent control flow, missing batching rules) the columns are looped
      (``"jvp-loop"``); where forward-mode AD itself is missing for an operation it falls back to the
      double-vjp trick (``"double-vjp"``): ``u ↦ Jᵀu`` is linear, so its vjp (built once, at ``u = 0``) with
      cotangent ``v`` is ``J v`` — a double-backward pass per product, no extra memory beyond the backward
      graph. ``forward="double-vjp"`` uses that trick directly, and ``forward="auto"`` (default) does so on the
      CPU and uses forward mode on other devices. Reason (measured with torch 2.13 on the CPU, one thread):
      ``torch.func.jvp`` through a ``Linear`` layer takes 10–20× the time of the plain matrix-vector product,
      and on a width-1024, depth-10 ReLU MLP one ``J v`` took 45–130 ms by jvp (runs on a shared machine; plus a
      transient of about half the weights' memory) against 12 ms by double-vjp, as much as one ``Jᵀ u``
      (11 ms) or one plain forward pass (11 ms). On GPUs forward mode is the
      textbook choice (cost ≈ one forward pass); that default is not measured here.
    * ``backend == "autograd"``: used when ``torch.func`` refuses ``fn`` altogether — e.g. a BatchNorm in train
      mode, whose in-place running-statistics update no function transform accepts (pytorch issue 85533). One
      forward pass with a ``torch.autograd`` graph is kept; ``rmatvec`` is ``torch.autograd.grad`` with
      ``is_grads_batched=True`` (looped if that fails); ``matvec`` is the double-vjp trick on that graph
      (``forward_mode == "double-vjp"``).

    ``fn`` is called once at construction and, with ``"vmap-jvp"``/``"jvp-loop"``, once per ``matvec`` call:
    side effects of ``fn`` (BatchNorm running statistics) happen that often — pass a pure function (e.g. through
    ``torch.func.functional_call``) if they matter. Gradients with respect to parameters are never built: the
    products run under ``torch.no_grad`` (which function transforms see through) and are detached.

    Raises ``ValueError`` for a non-callable ``fn``, an ``x0`` that is not a non-empty 1-D floating tensor with
    finite entries, or an ``fn(x0)`` that is not a finite 1-D tensor of the same dtype.
    """

    def __init__(
        self, fn: Callable[[torch.Tensor], torch.Tensor], x0: torch.Tensor, *, forward: str = "auto"
    ) -> None:
        self._forward = check_choice("forward", forward, FORWARD_MODES)
        if not callable(fn):
            raise ValueError(f"fn must be a callable mapping a flat tensor (n_in,) to (n_out,); got {fn!r}")
        if not isinstance(x0, torch.Tensor):
            raise ValueError(f"x0 must be a torch.Tensor of shape (n_in,); got {type(x0).__name__}")
        if x0.ndim != 1 or x0.numel() == 0:
            raise ValueError(f"x0 must be a non-empty flat tensor of shape (n_in,); got shape {tuple(x0.shape)}")
        if not x0.is_floating_point():
            raise ValueError(f"x0 must have a floating dtype (float64 recommended); got {x0.dtype}")
        if not bool(torch.isfinite(x0).all()):
            raise ValueError("x0 must be finite; it contains NaN or inf")
        self._fn = fn
        self._x0 = x0.detach()
        self.dtype: torch.dtype = x0.dtype
        self.device: torch.device = x0.device
        self.matvecs = 0
        self.rmatvecs = 0
        try:
            with torch.no_grad():
                y0, self._pullback = torch.func.vjp(fn, self._x0)
            self.backend = "torch.func"
            self._forward_mode: str | None = None  # decided at the first matvec
            self._pullback2 = None
        except RuntimeError:
            self.backend = "autograd"
            self._forward_mode = "double-vjp"
            x = self._x0.clone().requires_grad_(True)
            with torch.enable_grad():
                y0 = fn(x)
            self._x_graph, self._y_graph = x, y0
            self._u_dummy: torch.Tensor | None = None
            self._g_graph: torch.Tensor | None = None
        if not isinstance(y0, torch.Tensor) or y0.ndim != 1 or y0.numel() == 0:
            shape = tuple(y0.shape) if isinstance(y0, torch.Tensor) else type(y0).__name__
            raise ValueError(f"fn(x0) must be a non-empty flat tensor of shape (n_out,); got {shape}")
        if y0.dtype != self.dtype:
            raise ValueError(f"fn(x0) must have the dtype of x0 ({self.dtype}); got {y0.dtype}")
        if not bool(torch.isfinite(y0).all()):
            raise ValueError("fn(x0) contains NaN or inf")
        self.output = y0.detach()
        self.shape: tuple[int, int] = (int(y0.numel()), int(x0.numel()))

    @property
    def forward_mode(self) -> str | None:
        """How ``matvec`` computes ``J V``: ``"vmap-jvp"``, ``"jvp-loop"`` or ``"double-vjp"`` (None before the
        first ``matvec`` with the ``torch.func`` backend)."""
        return self._forward_mode

    # -- input checks ---------------------------------------------------------------------------------------
    def _check_block(self, name: str, V: object, rows: int, side: str) -> tuple[torch.Tensor, bool]:
        if isinstance(V, np.ndarray):
            V = torch.from_numpy(V)
        if not isinstance(V, torch.Tensor):
            raise ValueError(f"{name} must be a tensor of shape ({side}, m) or ({side},); got {type(V).__name__}")
        if V.ndim not in (1, 2) or V.shape[0] != rows or (V.ndim == 2 and V.shape[1] == 0):
            raise ValueError(
                f"{name} must have shape ({side}, m) or ({side},) with {side} = {rows}; got {tuple(V.shape)}"
            )
        if not (V.is_floating_point()):
            raise ValueError(f"{name} must have a floating dtype; got {V.dtype}")
        V = V.detach().to(device=self.device, dtype=self.dtype)
        if not bool(torch.isfinite(V).all()):
            raise ValueError(f"{name} must be finite; it contains NaN or inf")
        single = V.ndim == 1
        return (V[:, None] if single else V), single

    # -- J V ------------------------------------------------------------------------------------------------
    def matvec(self, V: torch.Tensor) -> torch.Tensor:
        """``J V`` for ``V`` of shape ``(n_in, m)`` (or ``(n_in,)``), by forward mode; shape ``(n_out, m)``."""
        V, single = self._check_block("V", V, self.shape[1], "n_in")
        with torch.no_grad():
            out = self._matvec(V).detach()
        self.matvecs += V.shape[1]
        return out[:, 0] if single else out

    def _jvp_col(self, v: torch.Tensor) -> torch.Tensor:
        return torch.func.jvp(self._fn, (self._x0,), (v,))[1]

    def _matvec(self, V: torch.Tensor) -> torch.Tensor:
        if self.backend == "autograd":
            return self._autograd_double_vjp(V)
        if self._forward_mode is None:
            errors = []
            use_jvp = self._forward == "jvp" or (self._forward == "auto" and self.device.type != "cpu")
            for mode in ("vmap-jvp", "jvp-loop", "double-vjp") if use_jvp else ("double-vjp",):
                try:
                    out = self._matvec_mode(mode, V)
                except (RuntimeError, NotImplementedError, ValueError) as exc:  # try the next mode
                    errors.append(f"{mode}: {exc}")
                    continue
                self._forward_mode = mode
                return out
            raise RuntimeError("no way to compute J V for this fn: " + " | ".join(errors))
        return self._matvec_mode(self._forward_mode, V)

    def _matvec_mode(self, mode: str, V: torch.Tensor) -> torch.Tensor:
        if mode == "vmap-jvp":
            return torch.func.vmap(self._jvp_col, in_dims=1, out_dims=1)(V)
        if mode == "jvp-loop":
            return torch.stack([self._jvp_col(V[:, j]) for j in range(V.shape[1])], dim=1)
        # double-vjp: g(u) = Jᵀu is linear in u; the vjp of g with cotangent v is J v (g's vjp built once)
        if self._pullback2 is None:
            pull = self._pullback
            u0 = torch.zeros(self.shape[0], dtype=self.dtype, device=self.device)
            self._pullback2 = torch.func.vjp(lambda u: pull(u)[0], u0)[1]
        pull2 = self._pullback2
        try:
            return torch.func.vmap(lambda v: pull2(v)[0], in_dims=1, out_dims=1)(V)
        except (RuntimeError, NotImplementedError, ValueError):
            return torch.stack([pull2(V[:, j])[0] for j in range(V.shape[1])], dim=1)

    def _autograd_double_vjp(self, V: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            if self._g_graph is None:
                self._u_dummy = torch.zeros_like(self._y_graph, requires_grad=True)
                (self._g_graph,) = torch.autograd.grad(
                    self._y_graph, self._x_graph, self._u_dummy, create_graph=True, allow_unused=False
                )
            return self._autograd_grad(self._g_graph, self._u_dummy, V)

    @staticmethod
    def _autograd_grad(out: torch.Tensor, inp: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        try:
            (res,) = torch.autograd.grad(out, inp, W.T.contiguous(), retain_graph=True, is_grads_batched=True)
            return res.T
        except (RuntimeError, NotImplementedError):
            cols = [torch.autograd.grad(out, inp, W[:, j], retain_graph=True)[0] for j in range(W.shape[1])]
            return torch.stack(cols, dim=1)

    # -- Jᵀ U -----------------------------------------------------------------------------------------------
    def rmatvec(self, U: torch.Tensor) -> torch.Tensor:
        """``Jᵀ U`` for ``U`` of shape ``(n_out, m)`` (or ``(n_out,)``), by reverse mode; shape ``(n_in, m)``."""
        U, single = self._check_block("U", U, self.shape[0], "n_out")
        with torch.no_grad():
            if self.backend == "autograd":
                with torch.enable_grad():
                    out = self._autograd_grad(self._y_graph, self._x_graph, U)
            else:
                pull = self._pullback
                try:
                    out = torch.func.vmap(lambda u: pull(u)[0], in_dims=1, out_dims=1)(U)
                except (RuntimeError, NotImplementedError, ValueError):
                    out = torch.stack([pull(U[:, j])[0] for j in range(U.shape[1])], dim=1)
        out = out.detach()
        self.rmatvecs += U.shape[1]
        return out[:, 0] if single else out

    def __repr__(self) -> str:
        return (
            f"JacobianOperator(shape={self.shape}, dtype={self.dtype}, device={self.device}, "
            f"backend={self.backend!r}, matvecs={self.matvecs}, rmatvecs={self.rmatvecs})"
        )


def _check_operator(op: object) -> JacobianOperator:
    if not isinstance(op, JacobianOperator):
        raise ValueError(f"op must be a JacobianOperator; got {type(op).__name__}")
    return op


def _torch_generator(generator: object, device: torch.device) -> torch.Generator | None:
    """None, an integer seed or a ``torch.Generator``; a CPU generator is used for all random vectors."""
    if generator is None or isinstance(generator, torch.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool) and int(generator) >= 0:
        return torch.Generator().manual_seed(int(generator))
    raise ValueError(f"generator must be None, a nonnegative integer seed or a torch.Generator; got {generator!r}")


def _randn(n: int, gen: torch.Generator | None, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    device_gen = gen is not None and gen.device.type != "cpu"
    if device_gen:
        return torch.randn(n, generator=gen, dtype=dtype, device=gen.device).to(device)
    return torch.randn(n, generator=gen, dtype=dtype).to(device)


# --------------------------------------------------------------------------------------------------------------
# Golub–Kahan–Lanczos bidiagonalization
# --------------------------------------------------------------------------------------------------------------


def _orthogonalize(w: torch.Tensor, Q: torch.Tensor) -> torch.Tensor:
    """Classical Gram–Schmidt against the orthonormal columns of ``Q``, twice ("twice is enough": Giraud,
    Langou & Rozložník 2005, Comput. Math. Appl. 50)."""
    if Q.shape[1] == 0:
        return w
    for _ in range(2):
        w = w - Q @ (Q.T @ w)
    return w


def _random_orthogonal_unit(Q: torch.Tensor, gen, dtype, device) -> torch.Tensor:
    """A random unit vector orthogonal to the columns of ``Q`` (which must not span the space)."""
    for _ in range(5):
        w = _orthogonalize(_randn(Q.shape[0], gen, dtype, device), Q)
        nrm = float(torch.linalg.vector_norm(w))
        if nrm > 1e-8:
            return w / nrm
    raise RuntimeError("could not draw a vector orthogonal to the Krylov basis")  # pragma: no cover


def lanczos_squared_singular_values(
    op: JacobianOperator,
    k: int,
    *,
    which: str = "largest",
    generator: torch.Generator | int | None = None,
    tol: float = 1e-10,
    max_iter: int | None = None,
) -> np.ndarray:
    """The ``k`` largest (``which="largest"``) or smallest (``"smallest"``) squared singular values of ``J``,
    ascending, by Golub–Kahan–Lanczos (GKL) bidiagonalization with full reorthogonalization.

    Squared singular values are the ``p = min(n_out, n_in)`` eigenvalues of the smaller Gram matrix (module
    docstring), so ``1 ≤ k ≤ p``. GKL runs on ``M = J`` when ``n_in ≤ n_out`` and on ``M = Jᵀ`` otherwise, so
    that its right Krylov vectors ``v_j`` live in the smaller space ``R^p``: from a random unit ``v_1``,

        α_j u_j = M v_j − β_{j−1} u_{j−1},     β_j v_{j+1} = Mᵀ u_j − α_j v_j,

    each new vector reorthogonalized against all previous ones (classical Gram–Schmidt twice), giving
    ``M V_j = U_j B_j`` and ``Mᵀ U_j = V_j B_jᵀ + β_j v_{j+1} e_jᵀ`` with ``B_j`` upper bidiagonal (Golub & Van
    Loan §10.4). With ``B_j = P Σ Qᵀ`` the Ritz values ``θ_i = σ_i²`` of ``MᵀM`` have eigen-residuals
    ``‖MᵀM x_i − θ_i x_i‖ = σ_i β_j |P_{j,i}|`` (``x_i = V_j q_i``), so some eigenvalue lies within that distance
    of ``θ_i`` (and within its square over the gap to the rest of the spectrum). The wanted ``k`` values are
    converged when every residual is ``≤ max(tol · θ_i, 64 ε θ_max)`` (relative, floored at the rounding level
    ``ε θ_max``, which bounds what any method can resolve for tiny ``θ_i``). The Krylov space grows (no restart)
    until then, or until ``max_iter`` steps (default ``min(p, max(20 k, 300))`` for the largest, ``p`` for the
    smallest), or until it is the whole ``R^p``, where ``B_p`` is exact and all its values are returned exactly (up
    to rounding). A breakdown (``α_j`` or ``β_j`` at rounding level: an invariant subspace, e.g. a repeated
    singular value) continues with a random vector orthogonal to the basis, so multiplicities are found.

    Cost: ``j`` products with ``J`` and ``j`` with ``Jᵀ`` for ``j`` steps, ``O(j² (n_in + n_out))`` for the
    reorthogonalization and ``j (n_in + n_out)`` numbers of memory. The largest values converge in a few tens
    of steps when they are separated. The smallest converge slowly — at a rate set by their gaps relative to
    the whole spread of the spectrum (Kaniel–Paige–Saad theory, Golub & Van Loan §10.1.5) — so the default for
    ``which="smallest"`` lets the space grow to all of ``R^p``: up to ``p`` products each way and
    ``p (n_in + n_out)`` memory, exact at the end; cap it with ``max_iter`` for large ``p`` (a
    ``RuntimeWarning`` then reports the unconverged residuals). Like every single-vector Krylov method, a
    cluster of nearly equal values can converge one copy before the others appear; exact repeats are handled by
    the breakdown restarts.

    ``generator``: None, an integer seed or a ``torch.Generator`` (the start vector and breakdown vectors).
    Raises ``ValueError`` for ``k`` outside ``[1, p]``, an unknown ``which``, ``tol`` not in ``(0, 1)`` or
    ``max_iter < k``.
    """
    op = _check_operator(op)
    n_out, n_in = op.shape
    p, q = min(n_out, n_in), max(n_out, n_in)
    k = check_int("k", k, minimum=1)
    if k > p:
        raise ValueError(
            f"k must be an integer in [1, {p}] (min(n_out, n_in) = min({n_out}, {n_in}) squared singular values); got {k}"
        )
    which = check_choice("which", which, ("largest", "smallest"))
    tol = check_real("tol", tol, low=0.0, high=1.0, low_inclusive=False, high_inclusive=False)
    if max_iter is None:
        max_iter = min(p, max(20 * k, 300)) if which == "largest" else p
    else:
        max_iter = min(check_int("max_iter", max_iter, minimum=k), p)
    gen = _torch_generator(generator, op.device)
    dtype, device = op.dtype, op.device
    if n_in <= n_out:
        M, Mt = op.matvec, op.rmatvec
    else:
        M, Mt = op.rmatvec, op.matvec

    V = torch.zeros(p, max_iter + 1, dtype=dtype, device=device)
    U = torch.zeros(q, max_iter, dtype=dtype, device=device)
    alphas = np.zeros(max_iter)
    betas = np.zeros(max_iter)
    v = _randn(p, gen, dtype, device)
    V[:, 0] = v / torch.linalg.vector_norm(v)
    scale = 0.0  # running estimate of ‖M‖ (largest α, β or pre-orthogonalization norm seen)
    thresh_factor = 10.0 * math.sqrt(q) * _EPS
    next_check = k
    j = 0
    result = None
    while j < max_iter:
        # α_j u_j = M v_j − β_{j−1} u_{j−1}
        w = M(V[:, j])
        if j > 0:
            w = w - betas[j - 1] * U[:, j - 1]
        scale = max(scale, float(torch.linalg.vector_norm(w)))
        w = _orthogonalize(w, U[:, :j])
        alpha = float(torch.linalg.vector_norm(w))
        if alpha <= thresh_factor * scale:
            alphas[j] = 0.0
            U[:, j] = _random_orthogonal_unit(U[:, :j], gen, dtype, device)
        else:
            alphas[j] = alpha
            U[:, j] = w / alpha
        # β_j v_{j+1} = Mᵀ u_j − α_j v_j
        w = Mt(U[:, j]) - alphas[j] * V[:, j]
        scale = max(scale, float(torch.linalg.vector_norm(w)))
        w = _orthogonalize(w, V[:, : j + 1])
        beta = float(torch.linalg.vector_norm(w))
        j += 1
        if j == p:  # the whole space: B_p is exact (β_p = 0 in exact arithmetic)
            betas[j - 1] = 0.0
            break
        if beta <= thresh_factor * scale:
            betas[j - 1] = 0.0
            V[:, j] = _random_orthogonal_unit(V[:, :j], gen, dtype, device)
        else:
            betas[j - 1] = beta
            V[:, j] = w / beta
        if j >= next_check and betas[j - 1] > 0.0:  # not right at a breakdown (copies may still be missing)
            result = _ritz(alphas[:j], betas[:j], k, which, tol)
            if result[1]:
                return result[0]
            next_check = j + max(1, j // 10)
    theta, converged, worst = _ritz(alphas[:j], betas[:j], k, which, tol)
    if not converged and j < p:
        warnings.warn(
            f"lanczos_squared_singular_values: {k} {which} values not converged to tol={tol:g} after max_iter={j} "
            f"steps (largest relative residual {worst:.2e}); raise max_iter",
            RuntimeWarning,
            stacklevel=2,
        )
    return theta


def _ritz(alphas: np.ndarray, betas: np.ndarray, k: int, which: str, tol: float) -> tuple[np.ndarray, bool, float]:
    """Ritz values of the bidiagonal ``B_j``, the ``k`` wanted ones (ascending), whether they converged, and the
    largest residual relative to its threshold's ``tol`` scale."""
    j = len(alphas)
    B = np.diag(alphas) + np.diag(betas[: j - 1], 1)
    P, s, _ = np.linalg.svd(B)  # s descending
    theta = s**2
    resid = s * betas[j - 1] * np.abs(P[j - 1, :])
    idx = np.arange(min(k, j)) if which == "largest" else np.arange(j - 1, j - 1 - min(k, j), -1)
    if j < k:
        return np.sort(theta[idx]), False, float("inf")
    floor = 64.0 * _EPS * theta[0]
    bound = np.maximum(tol * theta[idx], floor)
    ok = resid[idx] <= bound
    worst = float(np.max(resid[idx] / np.maximum(theta[idx], floor)))
    return np.sort(theta[idx]), bool(np.all(ok)), worst


# --------------------------------------------------------------------------------------------------------------
# Stochastic Lanczos quadrature
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SLQEstimate:
    """Stochastic Lanczos quadrature of the spectral measure of ``A = JᵀJ`` (dimension ``n_in``).

    ``nodes[p, i]``, ``weights[p, i]`` (shape ``(probes, steps)``): for probe ``v_p`` (unit norm), the Gauss
    quadrature of its spectral measure ``μ_p = Σ_l (v_pᵀ e_l)² δ_{λ_l}`` (``e_l`` the unit eigenvectors of ``A``):
    nodes are the eigenvalues ``θ_i`` of the Lanczos tridiagonal ``T_m`` and weights the squared first
    components ``τ_i`` of its unit eigenvectors (Golub & Meurant, *Matrices, Moments and Quadrature*, 2010, §6).
    Each row's weights sum to 1; rows of probes whose Lanczos run broke down early (an invariant Krylov
    space: the quadrature is then exact) are padded with node 0 and weight 0. ``steps_used[p]`` is each run's
    length. ``dimension = n_in``. Nodes are clipped at 0 (``JᵀJ`` is positive semidefinite; negative nodes
    are rounding, of size ``ε ‖JᵀJ‖``).

    Meaning of the weights: a node does not stand for one eigenvalue. Nearly equal eigenvalues (a cluster, or
    the ``n_in − n_out`` structural zeros of ``JᵀJ`` when ``n_out < n_in``) are resolved by one node carrying
    their summed weight ``Σ (v_pᵀ e_l)²``. Only the probe average is the density: for Rademacher probes
    ``v = z/√n`` (``z ∈ {±1}^n``), ``E (vᵀ e_l)² = 1/n`` for every unit ``e_l``, so ``E μ_p`` is the empirical
    spectral measure ``(1/n) Σ_l δ_{λ_l}`` (mass 1, atoms included).
    """

    nodes: np.ndarray
    weights: np.ndarray
    steps_used: np.ndarray
    dimension: int

    @property
    def probes(self) -> int:
        return int(self.nodes.shape[0])

    def moment(self, k: int) -> tuple[float, float]:
        """``(estimate, standard error)`` of ``(1/n_in) tr (JᵀJ)^k``.

        Per probe ``Σ_i τ_i θ_i^k``, which equals ``v_pᵀ A^k v_p`` exactly for ``k ≤ 2 m − 1`` (``m`` =
        ``steps_used[p]``; Gauss quadrature), and for every ``k`` when the run broke down; for Rademacher probes
        ``v_pᵀ A^k v_p`` is an unbiased estimator of ``(1/n) tr A^k`` (Hutchinson 1989, Commun. Stat. Simul.
        Comput. 18(3)). Estimate: mean over probes; standard error: sample standard deviation / √probes (NaN for
        a single probe).
        """
        k = check_int("k", k, minimum=0)
        per_probe = np.sum(self.weights * self.nodes.astype(np.float64) ** k, axis=1)
        est = float(np.mean(per_probe))
        se = float(np.std(per_probe, ddof=1) / math.sqrt(self.probes)) if self.probes > 1 else float("nan")
        return est, se

    def _pooled(self) -> tuple[np.ndarray, np.ndarray]:
        nodes = self.nodes.ravel()
        w = self.weights.ravel() / self.probes
        keep = w > 0
        order = np.argsort(nodes[keep], kind="stable")
        return nodes[keep][order], w[keep][order]

    def density(self, x: np.ndarray | float, width: float) -> np.ndarray:
        """Gaussian-smoothed density ``(1/probes) Σ_p Σ_i τ_{p,i} N(x; θ_{p,i}, width²)`` (as PyHessian)."""
        w_ = check_real("width", width, low=0.0, low_inclusive=False)
        x = np.asarray(x, dtype=np.float64)
        nodes, w = self._pooled()
        z = (x[..., None] - nodes) / w_
        return np.sum(w * np.exp(-0.5 * z**2), axis=-1) / (w_ * math.sqrt(2.0 * math.pi))

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """Distribution function of the probe-averaged discrete measure ``(1/probes) Σ_p Σ_i τ_{p,i} δ_{θ_{p,i}}``."""
        x = np.asarray(x, dtype=np.float64)
        nodes, w = self._pooled()
        cum = np.concatenate([[0.0], np.cumsum(w)])
        return np.minimum(cum[np.searchsorted(nodes, x, side="right")], 1.0)

    def quantiles(self, n: int) -> np.ndarray:
        """``n`` points: the quantiles at levels ``(i + ½)/n`` of the probe-averaged discrete measure.

        A deterministic ``n``-point representation whose empirical distribution function differs from
        :meth:`cdf` by at most ``1/(2n)`` everywhere (so a KS test can take it as a sample).
        """
        n = check_int("n", n, minimum=1)
        nodes, w = self._pooled()
        cum = np.cumsum(w)
        cum = cum / cum[-1]  # total mass is 1 up to rounding
        levels = (np.arange(n) + 0.5) / n
        return nodes[np.minimum(np.searchsorted(cum, levels, side="left"), len(nodes) - 1)]

    def max_weight(self) -> float:
        """Mean over probes of the largest quadrature weight: by the Chebyshev–Markov–Stieltjes inequalities
        (Akhiezer, *The Classical Moment Problem*, 1965, §2.5) each probe's Gauss-quadrature distribution function
        is within its largest weight of the probe's spectral distribution function, everywhere; so :meth:`cdf` is
        within this amount of the probe-averaged spectral distribution function."""
        return float(np.mean(np.max(self.weights, axis=1)))


def stochastic_lanczos_quadrature(
    op: JacobianOperator,
    *,
    probes: int | torch.Tensor | np.ndarray = 10,
    steps: int = 80,
    generator: torch.Generator | int | None = None,
) -> SLQEstimate:
    """Spectral density of ``A = JᵀJ`` (``n_in × n_in``) by stochastic Lanczos quadrature.

    For each probe ``v`` (Rademacher, normalised to unit length; or the rows of ``probes`` when it is an array of
    shape ``(m, n_in)``, each normalised), ``min(steps, n_in)`` steps of Lanczos on ``A`` (applied as
    ``rmatvec(matvec(·))``, never formed) with full reorthogonalization build the tridiagonal ``T``; its
    eigenpairs ``T s_i = θ_i s_i`` give the Gauss quadrature nodes ``θ_i`` and weights ``τ_i = s_{i,1}²`` of the
    probe's spectral measure (Ubaru, Chen & Saad 2017, Alg. 1; Golub & Meurant 2010). A run stops early when
    ``β_j`` falls to rounding level (an invariant Krylov space, where the quadrature is exact). All probes are run
    together, as the columns of one block, so each step costs one batched ``matvec`` and ``rmatvec``.
    Cost: ``probes · steps`` products each way, memory ``probes · steps · n_in`` numbers. With
    ``steps ≥ n_in`` the quadrature is exact (nodes are the eigenvalues the probe sees).

    ``generator``: None, an integer seed or a ``torch.Generator``. Raises ``ValueError`` for ``probes`` or
    ``steps`` below 1, probe arrays of the wrong shape, zero or non-finite probes.
    """
    op = _check_operator(op)
    n = op.shape[1]
    dtype, device = op.dtype, op.device
    steps = min(check_int("steps", steps, minimum=1), n)
    if isinstance(probes, (torch.Tensor, np.ndarray)):
        Z = torch.as_tensor(probes).detach()
        if Z.ndim != 2 or Z.shape[1] != n or Z.shape[0] == 0:
            raise ValueError(f"probes given as an array must have shape (m, n_in) with n_in = {n}; got {tuple(Z.shape)}")
        Z = Z.to(dtype=dtype, device=device).T.contiguous()
        if not bool(torch.isfinite(Z).all()):
            raise ValueError("probes must be finite; they contain NaN or inf")
        norms = torch.linalg.vector_norm(Z, dim=0)
        if bool((norms == 0).any()):
            raise ValueError("probes must be nonzero vectors")
        Z = Z / norms
    else:
        m = check_int("probes", probes, minimum=1)
        gen = _torch_generator(generator, device)
        if gen is not None and gen.device.type != "cpu":
            bits = torch.randint(0, 2, (n, m), generator=gen, device=gen.device).to(device)
        else:
            bits = torch.randint(0, 2, (n, m), generator=gen).to(device)
        Z = (2.0 * bits.to(dtype) - 1.0) / math.sqrt(n)
    m = Z.shape[1]

    Q = torch.zeros(m, steps, n, dtype=dtype, device=device)  # Lanczos vectors per probe
    alphas = np.zeros((m, steps))
    betas = np.zeros((m, steps))
    used = np.full(m, steps)
    active = np.ones(m, dtype=bool)
    scale = np.zeros(m)
    Q[:, 0, :] = Z.T
    thresh_factor = 10.0 * math.sqrt(n) * _EPS
    for j in range(steps):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        it = torch.as_tensor(idx, device=device)
        Vj = Q[it, j, :].T  # (n, a)
        W = op.rmatvec(op.matvec(Vj))  # A V_j
        a = torch.sum(W * Vj, dim=0)
        W = W - Vj * a
        if j > 0:
            W = W - Q[it, j - 1, :].T * torch.as_tensor(betas[idx, j - 1], dtype=dtype, device=device)
        pre = torch.linalg.vector_norm(W, dim=0)
        basis = Q[it, : j + 1, :]  # (a, j+1, n)
        for _ in range(2):  # full reorthogonalization, classical Gram–Schmidt twice
            coef = torch.einsum("asn,na->as", basis, W)
            W = W - torch.einsum("asn,as->na", basis, coef)
        b = torch.linalg.vector_norm(W, dim=0)
        a_np, b_np, pre_np = (t.cpu().numpy() for t in (a, b, pre))
        alphas[idx, j] = a_np
        scale[idx] = np.maximum(scale[idx], np.maximum(np.abs(a_np), pre_np))
        if j == steps - 1:
            break
        stop = b_np <= thresh_factor * np.maximum(scale[idx], _EPS)
        for pos, probe in enumerate(idx):
            if stop[pos]:
                active[probe] = False
                used[probe] = j + 1
            else:
                betas[probe, j] = b_np[pos]
                Q[probe, j + 1, :] = W[:, pos] / b[pos]

    nodes = np.zeros((m, steps))
    weights = np.zeros((m, steps))
    for i in range(m):
        s = used[i]
        T = np.diag(alphas[i, :s]) + np.diag(betas[i, : s - 1], 1) + np.diag(betas[i, : s - 1], -1)
        theta, S = np.linalg.eigh(T)
        nodes[i, :s] = np.maximum(theta, 0.0)  # A = JᵀJ ⪰ 0: negative nodes are rounding (|θ| ~ ε‖A‖)
        weights[i, :s] = S[0, :] ** 2
    return SLQEstimate(nodes=nodes, weights=weights, steps_used=used, dimension=n)
