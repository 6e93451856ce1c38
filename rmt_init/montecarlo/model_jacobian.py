"""``model_jacobian_spectrum``: squared singular values of the Jacobian of any ``torch.nn.Module``.

The map differentiated is the model (or the part between two named points, see
:mod:`~rmt_init.montecarlo._model_function`) at a given input batch. Dense Jacobians come from
``torch.func`` (``vmap`` of ``jacrev``/``jacfwd`` over a per-example function; PyTorch docs, "torch.func":
https://pytorch.org/docs/stable/func.html) or, when the slice is a plain ``nn.Sequential`` of
:data:`~rmt_init.montecarlo.jacobians.SUPPORTED_MODULES`, from the chained layer Jacobians of
:func:`~rmt_init.montecarlo.jacobians.chained_jacobian`; the matrix-free methods use only
Jacobian-vector and vector-Jacobian products (:mod:`rmt_init.montecarlo.matrix_free`).

Train-mode BatchNorm. ``torch.func`` transforms refuse BatchNorm modules that update their running
statistics in place (PyTorch issue 85533, https://github.com/pytorch/pytorch/issues/85533; "Patching
Batch Norm" in the torch.func docs). The engine therefore works on a private deep copy of the model in
which every train-mode BatchNorm stops tracking running statistics (``track_running_stats=False``,
running buffers ``None``: what ``torch.func.replace_all_batch_norm_modules_`` does, applied only to the
train-mode ones, since an eval-mode BatchNorm without running statistics would switch to batch
statistics). Its forward pass is unchanged (batch statistics, biased variance); the user's model —
parameters, buffers, running statistics, hooks, train/eval flags — is never modified.
"""
from __future__ import annotations

import copy
import math
import types
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from rmt_init._validate import check_choice, check_int

from ._device import (
    check_progress,
    chunk_from_budget,
    limit_threads,
    linalg_threads,
    progress_bar,
    resolve_device,
    resolve_dtype,
    resolve_seed,
    run_chunked,
    threads_for,
    trial_generator,
)
from ._model_function import ModelFunction, Point, parse_point
from .jacobians import chained_jacobian
from .results import ModelSpectrumResult

__all__ = ["model_jacobian_spectrum", "MODEL_JACOBIAN_METHODS"]

#: Methods of :func:`model_jacobian_spectrum` (``"auto"`` picks one of the others).
MODEL_JACOBIAN_METHODS: tuple[str, ...] = ("auto", "dense", "lanczos", "slq")
_WHICH = ("largest", "smallest")
_DEFAULT_BUDGET = 1 << 30
_DEFAULT_POINTS = 1000
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.FeatureAlphaDropout)


# -- model preparation -------------------------------------------------------------------------------------
def _train_batchnorms(model: nn.Module) -> list[str]:
    return [name or "<model>" for name, m in model.named_modules() if isinstance(m, _BatchNorm) and m.training]


def _stop_tracking(model: nn.Module) -> None:
    """Train-mode BatchNorm modules of ``model`` (a private copy) stop tracking running statistics."""
    for m in model.modules():
        if isinstance(m, _BatchNorm) and m.training:
            m.track_running_stats = False
            m.running_mean = None
            m.running_var = None
            m.num_batches_tracked = None


def _model_device(model: nn.Module, inputs: torch.Tensor) -> torch.device:
    for t in list(model.parameters()) + list(model.buffers()):
        return t.device
    return inputs.device


Reinit = Callable[[nn.Module, torch.Generator], None] | str | tuple[str, dict[str, Any]]


def _resolve_reinit(reinit: object) -> tuple[Callable[[nn.Module, torch.Generator], None] | None, str | None]:
    """``reinit`` as a callable ``f(model, generator)`` and its description for ``config`` (both None for None).

    A scheme name (``"kaiming_normal_"``) or ``(name, kwargs)`` becomes
    ``initialize_(model, name, generator=generator, **kwargs)``; the name and keyword arguments are checked
    here, before any trial (a ``ValueError`` names the valid schemes or arguments).
    """
    if reinit is None:
        return None, None
    if callable(reinit):
        return reinit, getattr(reinit, "__qualname__", repr(reinit))
    if isinstance(reinit, str):
        scheme, kwargs = reinit, {}
    elif (
        isinstance(reinit, tuple) and len(reinit) == 2 and isinstance(reinit[0], str) and isinstance(reinit[1], dict)
    ):
        scheme, kwargs = reinit[0], dict(reinit[1])
    else:
        raise ValueError(
            "reinit must be None, a callable reinit(model, generator), a scheme name of initialize_ (e.g. "
            f"'kaiming_normal_') or a pair (scheme, kwargs) such as ('kaiming_normal_', {{'nonlinearity': 'relu'}}); "
            f"got {reinit!r}"
        )
    if "generator" in kwargs:
        raise ValueError("reinit kwargs must not contain 'generator': each trial passes its own")
    from .initialize import initialize_

    initialize_(nn.Linear(2, 2), scheme, **kwargs)  # validates the scheme and its keyword arguments

    def apply(m: nn.Module, gen: torch.Generator) -> None:
        initialize_(m, scheme, generator=gen, **kwargs)

    desc = scheme if not kwargs else f"{scheme}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
    return apply, desc


def _trial_model(
    model: nn.Module,
    device: torch.device,
    dtype: torch.dtype,
    reinit: Callable[[nn.Module, torch.Generator], None] | None,
    gen: torch.Generator,
) -> nn.Module:
    """A private copy of ``model`` on ``device``/``dtype``, re-initialised by ``reinit`` (if given)."""
    m = copy.deepcopy(model).to(device=device, dtype=dtype)
    if reinit is not None:
        with torch.no_grad():
            reinit(m, gen)
    _stop_tracking(m)
    return m


# -- dense Jacobians -----------------------------------------------------------------------------------------
def _sequential_slice(model: nn.Module, start: Point | None, end: Point | None) -> nn.Sequential | None:
    """The children of a plain ``nn.Sequential`` between ``start`` and ``end`` (None if not such a slice)."""
    if not (isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward):
        return None
    names = [n for n, _ in model.named_children()]

    def index(point: Point | None, default: int) -> int | None:
        if point is None:
            return default
        if point.name not in names:
            return None
        i = names.index(point.name)
        return i + 1 if point.kind == "output" else i

    a, b = index(start, 0), index(end, len(names))
    if a is None or b is None or a > b:
        return None
    return nn.Sequential(*[m for _, m in list(model.named_children())[a:b]])


def _func_jacobian(fn: Callable, forward: bool, **kwargs: Any) -> Callable:
    return (torch.func.jacfwd if forward else torch.func.jacrev)(fn, **kwargs)


def _generic_jacobian(mf: ModelFunction, batch: bool, budget: int) -> torch.Tensor:
    """``(B·n_out, B·n_in)`` (batch) or ``(B, n_out, n_in)`` (per example) by ``torch.func``.

    Forward mode (``jacfwd``, one pass per input coordinate) when ``n_in < n_out``, else reverse mode
    (``jacrev``, one pass per output coordinate); should forward mode be unsupported by an operation, reverse
    mode is used.
    """
    z0 = mf.start_value
    b = z0.shape[0]
    n_in = z0[0].numel()
    n_out = math.prod(mf.end_shape[1:])

    def compute(forward: bool) -> torch.Tensor:
        if batch:
            jac = _func_jacobian(mf.batch, forward)(z0)
            return jac.reshape(math.prod(mf.end_shape), z0.numel())
        per = torch.func.vmap(_func_jacobian(mf.example, forward, argnums=1), in_dims=(0, 0), randomness="error")

        def run(idx: list[int]) -> torch.Tensor:
            sel = torch.as_tensor(idx, device=z0.device)
            return per(mf.inputs[sel], z0[sel]).reshape(len(idx), n_out, n_in)

        per_example = 8.0 * n_out * n_in * z0.element_size()
        chunk = chunk_from_budget(per_example, budget, None, b)
        return torch.cat(run_chunked(run, list(range(b)), chunk), dim=0)

    if n_in < n_out:
        try:
            return compute(True)
        except (RuntimeError, NotImplementedError):  # an operation without forward-mode AD
            pass
    return compute(False)


def _dense_jacobian(mf: ModelFunction, batch: bool, chained: bool | None, budget: int) -> tuple[torch.Tensor, str]:
    """The dense Jacobian and the path that computed it (``"chained"`` or ``"torch.func"``)."""
    if chained is not False:
        part = _sequential_slice(mf.model, mf.start, mf.end)
        reason = "the model is not a plain nn.Sequential split at its children" if part is None else ""
        if part is not None:
            try:
                jac = chained_jacobian(
                    part, mf.start_value, "batch" if batch else "per_example", memory_budget=budget
                )
                return jac, "chained"
            except ValueError as exc:
                reason = str(exc)
        if chained:
            raise ValueError(f"chained=True but the chained layer Jacobians do not apply: {reason}")
    return _generic_jacobian(mf, batch, budget), "torch.func"


def _bn_batch_forward(self: _BatchNorm, h: torch.Tensor, frozen: bool, eps: float) -> torch.Tensor:
    """Train-mode BatchNorm (batch mean, biased batch variance) with its own ``eps``, the statistics held
    constant (``frozen``: then an affine map of ``h``) or not."""
    dims = [0] + list(range(2, h.dim()))
    shape = (1, -1) + (1,) * (h.dim() - 2)
    mean = h.mean(dim=dims, keepdim=True)
    var = h.var(dim=dims, unbiased=False, keepdim=True)
    if frozen:
        mean, var = mean.detach(), var.detach()
    y = (h - mean) / torch.sqrt(var + eps)
    if self.affine:
        y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
    return y


def _rank(jac: torch.Tensor) -> int:
    """Numerical rank: singular values above ``max(shape)·eps·σ_max`` (numpy's ``matrix_rank`` rule)."""
    with torch.no_grad(), linalg_threads(jac.device):
        sv = torch.linalg.svdvals(jac)
    if sv.numel() == 0 or float(sv[0]) == 0.0:
        return 0
    tol = max(jac.shape) * torch.finfo(jac.dtype).eps * float(sv[0])
    return int((sv > tol).sum())


def _structural_zero_count_by_rank(mf: ModelFunction, budget: int) -> int:
    """Structural zeros that train-mode BatchNorm forces on the batch Jacobian, by two numerical ranks.

    A train-mode BN layer is invariant to shifting and rescaling each channel's batch of values, which
    removes ``2`` directions per channel (Yang et al. 2019, arXiv 1902.08129, Sec. 3; the count of
    :func:`~rmt_init.montecarlo.engine.structural_zero_count` for chains). For any architecture the
    number that survive in the whole map is ``rank(J_frozen) − rank(J_0)``: ``J_frozen`` is the batch
    Jacobian with every train-mode BN's batch mean and variance held constant (no coupling, same activation
    patterns, hence the same non-structural zeros, e.g. of relu), ``J_0`` the batch Jacobian with BN
    ``eps = 0`` (so the rescaling directions are exactly null too, not merely ``≈ eps/(σ² + eps)`` small).
    Both ranks are numerical (numpy's rule), exact for these structural zeros, which sit at rounding level.
    Both Jacobians use the engine's own batch-statistics BN forward (torch refuses ``eps = 0`` in training
    mode). Should a channel have zero batch variance (``J_0`` not finite), the count is not determined:
    a ``RuntimeWarning`` says so and ``0`` is returned (nothing is removed).
    """
    bns = [m for m in mf.model.modules() if isinstance(m, _BatchNorm) and m.training]

    def rank_with(frozen: bool, eps: float | None) -> int:
        try:
            for m in bns:
                e = m.eps if eps is None else eps
                m.forward = types.MethodType(
                    lambda self, h, frozen=frozen, e=e: _bn_batch_forward(self, h, frozen, e), m
                )
            jac = _generic_jacobian(mf, True, budget)
            return _rank(jac) if bool(torch.isfinite(jac).all()) else -1
        finally:
            for m in bns:
                del m.forward

    r0 = rank_with(False, 0.0)
    if r0 < 0:
        warnings.warn(
            "a train-mode BatchNorm channel has zero batch variance: the number of structural zeros is not "
            "determined and none are removed",
            RuntimeWarning,
            stacklevel=3,
        )
        return 0
    r_frozen = rank_with(True, None)
    return max(0, r_frozen - r0)


# -- matrix-free --------------------------------------------------------------------------------------------
def _matrix_free_module(method: str):
    try:
        from . import matrix_free
    except ImportError as exc:
        if exc.name not in ("rmt_init.montecarlo.matrix_free",):
            raise
        raise ValueError(
            f"method {method!r} needs rmt_init.montecarlo.matrix_free, which this installation does not have; "
            "use method='dense'"
        ) from exc
    return matrix_free


# -- validation ---------------------------------------------------------------------------------------------
def _check_inputs(inputs: object) -> torch.Tensor:
    if not isinstance(inputs, torch.Tensor):
        raise ValueError(f"inputs must be a torch.Tensor with a leading batch dimension; got {type(inputs).__name__}")
    if inputs.dim() < 1 or inputs.shape[0] < 1:
        raise ValueError(
            f"inputs must have a leading batch dimension of size >= 1, shape (B, ...); got shape {tuple(inputs.shape)}"
        )
    if inputs.is_floating_point() or inputs.is_complex():
        if not bool(torch.isfinite(inputs).all()):
            raise ValueError("inputs contain NaN or inf")
    return inputs


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    random = [
        name or "<model>"
        for name, m in model.named_modules()
        if (isinstance(m, _DROPOUT) and m.training and m.p > 0) or (isinstance(m, nn.RReLU) and m.training)
    ]
    if random:
        raise ValueError(
            f"modules {random[:5]} are random in training mode (dropout, RReLU): the Jacobian of a random map is "
            "not defined; call model.eval() (or set their p=0)"
        )
    return model


def model_jacobian_spectrum(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    method: str = "auto",
    k: int | None = None,
    which: str = "largest",
    start: str | None = None,
    end: str | None = None,
    per_example: bool | None = None,
    trials: int = 1,
    seed: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    progress: bool | str = False,
    reinit: Reinit | None = None,
    memory_budget: int = _DEFAULT_BUDGET,
    drop_structural_zeros: bool = True,
    chained: bool | None = None,
    moments: bool | None = None,
    probes: int | None = None,
    steps: int | None = None,
    points: int | None = None,
) -> ModelSpectrumResult:
    """Squared singular values of the Jacobian ``J = ∂ end / ∂ start`` of any ``nn.Module`` at ``inputs``.

    Args:
        model: any ``torch.nn.Module`` (never modified: the engine works on a private deep copy). Random
            modules in training mode (dropout with ``p > 0``, ``RReLU``) are refused.
        inputs: a tensor ``(B, ...)`` with a leading batch dimension (no NaN/inf). Integer inputs (token ids)
            are allowed when ``start`` names an internal floating tensor.
        method: ``"dense"`` (exact, all values), ``"lanczos"`` (the ``k`` largest or smallest, matrix-free),
            ``"slq"`` (estimated spectral density and moments, matrix-free), or ``"auto"``: dense when one
            trial's Jacobian(s) in float64 — ``B·n_out·n_in·8`` bytes per example, ``B²·n_out·n_in·8`` for the
            batch-coupled map — fit ``memory_budget``, else lanczos when ``k`` is given, else slq.
        k: keep the ``k`` largest (``which="largest"``) or smallest (``"smallest"``) values per row
            (required by lanczos); ``k`` > the dimension ``min(n_out, n_in)`` of a row's Jacobian raises.
        start, end: points of the forward pass by submodule name (``model.named_modules()``): ``"layer2"``
            is the output of ``layer2``, ``"layer2:input"`` its first positional input; ``None`` the model's
            input / output. ``J`` is the partial Jacobian: tensors computed before ``start`` that reach ``end``
            by another path (a skip connection around ``start``) are held fixed; a module's output is replaced
            in all its uses, ``"name:input"`` only as that module's argument (in ``h = h + block(h)``,
            ``start="block:input"`` differentiates through ``block`` alone, not through the skip).
        per_example: ``True``: one Jacobian per example (``n_out × n_in``, the model run on that example
            alone; the start and end tensors must have the batch dimension first); ``False``: the Jacobian
            of the whole batch map (``B·n_out × B·n_in``, rows and columns ordered example-major); ``None``
            (default): batch-coupled when some BatchNorm module is in training mode (batch statistics couple
            the examples), else per-example. ``True`` with a train-mode BatchNorm raises.
        trials: independently initialised networks. ``trials > 1`` needs ``reinit`` (identical copies
            would give identical rows, faking a standard error).
        seed: seeds trial ``t``'s ``torch.Generator`` (passed to ``reinit``, then to the matrix-free probes);
            ``None`` draws one (recorded in ``config``).
        device: where to compute (``"cpu"``, ``"cuda"``, ``"auto"``, a ``torch.device``); ``None``: the
            model's device (its first parameter or buffer), else the inputs'.
        dtype: ``float64`` (default) or ``float32``: the copy of the model and floating inputs are cast to it.
        progress: a progress bar over the Jacobians (``True``, ``False``, ``"auto"``).
        reinit: re-initialises the copy of each trial in place with the trial's generator: a callable
            ``reinit(model_copy, generator)`` (e.g. ``torch.nn.init`` functions with their ``generator=``
            argument); a scheme name that :func:`~rmt_init.montecarlo.initialize_` accepts
            (``"kaiming_normal_"``, ``"orthogonal_"``, ``"delta_orthogonal"``, …), or ``(scheme, kwargs)`` such
            as ``("kaiming_normal_", {"nonlinearity": "relu"})`` or ``("orthogonal_", {"gain": 2 ** 0.5,
            "bias": 0.0})``: then ``initialize_(model_copy, scheme, generator=generator, **kwargs)``;
            ``None``: the model's weights.
        memory_budget: bytes (default 1 GiB) for ``method="auto"`` and for chunking the dense Jacobians.
        drop_structural_zeros: remove the structural zeros of a train-mode BN batch Jacobian (dense only).
        chained: dense path: ``None`` uses the chained layer Jacobians when the slice is a plain
            ``nn.Sequential`` of supported modules (faster), else ``torch.func``; ``True`` requires the chained
            path; ``False`` always ``torch.func``.
        moments: whether :meth:`~ModelSpectrumResult.moment` is available: always for dense and slq; for
            lanczos only with ``moments=True`` (adds a stochastic Lanczos quadrature pass).
        probes, steps: SLQ probe vectors and Lanczos steps (``None``: matrix_free's defaults).
        points: values per row for slq (default ``min(n_out, n_in, 1000)`` of a row's Jacobian).

    Dense (exact): ``J`` by ``torch.func`` — ``vmap`` over the examples of ``jacfwd`` when ``n_in < n_out``,
    else ``jacrev``, of a per-example function — or by chained layer Jacobians; then ``torch.linalg.svdvals``.
    With a train-mode BatchNorm the batch Jacobian has structural zeros (``2N`` for a chain of width ``N``,
    :func:`~rmt_init.montecarlo.engine.structural_zero_count`; none when a skip connection carries the
    shift around the BN); their number, found by two numerical ranks
    for any architecture (see ``_structural_zero_count_by_rank``), is reported in ``structural_zeros`` and
    that many smallest values are removed unless ``drop_structural_zeros=False`` (the count costs two
    more batch Jacobians and SVDs per trial).

    Matrix-free (:mod:`rmt_init.montecarlo.matrix_free`, never forms ``J``): lanczos gives the ``k``
    extreme squared singular values by Golub–Kahan–Lanczos bidiagonalisation; slq the spectral
    distribution of ``JᵀJ`` by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017), whose input-side
    moments ``(1/n_in) tr (JᵀJ)^k`` are converted to ``(1/n_out) tr (JJᵀ)^k`` by the factor ``n_in/n_out``,
    and whose rows are ``points`` quantiles of the estimated distribution of the ``min(n_in, n_out)``
    squared singular values (when ``n_in > n_out`` the ``n_in − n_out`` zero eigenvalues of ``JᵀJ`` are
    removed as the lowest quantiles). Structural zeros are not removed there.

    Returns a :class:`~rmt_init.montecarlo.results.ModelSpectrumResult`: rows in decreasing order (as
    :class:`SpectrumResult`), one per example (``per_example``) or per trial (batch), ``moment(k)`` of
    ``(1/n) tr (JJᵀ)^k`` with ``n`` the rows of ``J``; ``config`` records the method and the path.
    """
    model = _check_model(model)
    inputs = _check_inputs(inputs)
    method = check_choice("method", method, MODEL_JACOBIAN_METHODS)
    which = check_choice("which", which, _WHICH)
    trials = check_int("trials", trials, minimum=1)
    if k is not None:
        k = check_int("k", k, minimum=1)
    reinit, reinit_desc = _resolve_reinit(reinit)
    if trials > 1 and reinit is None:
        raise ValueError(
            f"trials={trials} needs reinit=(a scheme name such as 'kaiming_normal_', or a function reinit(model, "
            "generator) re-initialising the model): without "
            "it every trial would be the same network, and identical rows would fake a standard error"
        )
    for name, flag in (("drop_structural_zeros", drop_structural_zeros),):
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False; got {flag!r}")
    for name, flag in (("per_example", per_example), ("chained", chained), ("moments", moments)):
        if flag is not None and not isinstance(flag, bool):
            raise ValueError(f"{name} must be None, True or False; got {flag!r}")
    memory_budget = check_int("memory_budget", memory_budget, minimum=1)
    for name, value in (("probes", probes), ("steps", steps), ("points", points)):
        if value is not None:
            check_int(name, value, minimum=1)
    progress = check_progress(progress)
    dev = _model_device(model, inputs) if device is None else resolve_device(device)
    dt = torch.float64 if dtype is None else resolve_dtype(dtype)
    seed = resolve_seed(seed)
    start_p = parse_point(model, "start", start)
    end_p = parse_point(model, "end", end)
    train_bn = _train_batchnorms(model)
    if per_example is True and train_bn:
        raise ValueError(
            f"per_example=True is undefined with BatchNorm in training mode ({train_bn[:5]}): batch statistics "
            "couple the examples; use per_example=False (the batch Jacobian) or model.eval()"
        )
    batch = bool(train_bn) if per_example is None else not per_example
    x = inputs.to(device=dev, dtype=dt) if inputs.is_floating_point() else inputs.to(device=dev)

    rows: list[np.ndarray] = []
    dense_values: list[np.ndarray] = []
    slq: list[list[tuple[Any, float]]] = []
    zeros: list[int] = []
    row_trial: list[int] = []
    row_example: list[int] = []
    info: dict[str, object] = {}
    bar = None
    try:
        for t in range(trials):
            gen = trial_generator(seed, t, dev)
            net = _trial_model(model, dev, dt, reinit, gen)
            mf = ModelFunction(net, x, start_p, end_p)
            b = mf.start_value.shape[0]
            if not batch and (b != x.shape[0] or mf.end_shape[:1] != (b,)):
                raise ValueError(
                    f"per-example Jacobians need the start and end tensors to keep the batch dimension "
                    f"{x.shape[0]} first; got shapes {tuple(mf.start_value.shape)} and {mf.end_shape}; use "
                    "per_example=False"
                )
            n_in = mf.start_value[0].numel()
            n_out = math.prod(mf.end_shape[1:])
            rows_j, cols_j = (math.prod(mf.end_shape), b * n_in) if batch else (n_out, n_in)
            dim = min(rows_j, cols_j)
            if t == 0:
                if k is not None and k > dim:
                    raise ValueError(
                        f"k={k} is larger than the dimension min(n_out, n_in) = min({rows_j}, {cols_j}) = {dim} of "
                        "each Jacobian"
                    )
                jac_bytes = 8.0 * rows_j * cols_j * (1 if batch else b)
                chosen = method
                if method == "auto":
                    chosen = "dense" if jac_bytes <= memory_budget else ("lanczos" if k is not None else "slq")
                if chosen == "lanczos" and k is None:
                    raise ValueError("method 'lanczos' needs k (how many extreme squared singular values)")
                if chosen != "dense":
                    mfree = _matrix_free_module(chosen)
                n_jac = trials * (1 if batch else b)
                bar = progress_bar(n_jac, progress, "jacobians")
                info.update(n_in=n_in, n_out=n_out, batch_size=b, rows_j=rows_j, cols_j=cols_j, jac_bytes=jac_bytes)
            if chosen == "dense":
                with limit_threads(threads_for(dev, max(rows_j, cols_j))):
                    jac, path = _dense_jacobian(mf, batch, chained, memory_budget)
                    with torch.no_grad(), linalg_threads(dev):
                        sv = torch.linalg.svdvals(jac.detach().to(torch.float64))
                sq = (sv**2).reshape(1 if batch else b, -1).cpu().numpy()
                sq = -np.sort(-sq, axis=1)  # decreasing
                n_zero = 0
                if batch and train_bn:
                    n_zero = _structural_zero_count_by_rank(mf, memory_budget)
                dense_values.append(sq.ravel().copy())
                keep = sq[:, : sq.shape[1] - n_zero] if (drop_structural_zeros and n_zero) else sq
                if k is not None:
                    if k > keep.shape[1]:
                        raise ValueError(
                            f"k={k} is larger than the {keep.shape[1]} values left after removing {n_zero} "
                            "structural zeros; use drop_structural_zeros=False or a smaller k"
                        )
                    keep = keep[:, :k] if which == "largest" else keep[:, keep.shape[1] - k :]
                for r in range(keep.shape[0]):
                    rows.append(keep[r])
                    zeros.append(n_zero if (drop_structural_zeros and batch) else 0)
                    row_trial.append(t)
                    row_example.append(-1 if batch else r)
                info["path"] = path
                if bar is not None:
                    bar.update(keep.shape[0])
                continue
            # matrix-free
            fns = [(mf.flat_batch(), mf.start_value.reshape(-1))] if batch else [
                (mf.flat_example(i), mf.start_value[i].reshape(-1)) for i in range(b)
            ]
            want_moments = chosen == "slq" or bool(moments)
            per_trial: list[tuple[Any, float]] = []
            for j, (fn, z0) in enumerate(fns):
                op = mfree.JacobianOperator(fn, z0.detach())
                kwargs = {key: v for key, v in (("probes", probes), ("steps", steps)) if v is not None}
                estimate = None
                if want_moments:
                    estimate = mfree.stochastic_lanczos_quadrature(op, generator=gen, **kwargs)
                    per_trial.append((estimate, cols_j / rows_j))
                if chosen == "lanczos":
                    vals = np.asarray(
                        mfree.lanczos_squared_singular_values(op, k, which=which, generator=gen), dtype=np.float64
                    )
                    row = np.sort(vals)[::-1]
                else:
                    q = points if points is not None else min(dim, max(_DEFAULT_POINTS, k or 0))
                    if k is not None and q < k:
                        raise ValueError(f"points={q} must be >= k={k} (the values kept from each row)")
                    total = q if cols_j <= rows_j else int(math.ceil(q * cols_j / rows_j))
                    quant = np.sort(np.asarray(estimate.quantiles(total), dtype=np.float64))
                    row = quant[total - q :][::-1]
                    if k is not None:
                        row = row[:k] if which == "largest" else row[row.size - k :]
                rows.append(np.ascontiguousarray(row))
                zeros.append(0)
                row_trial.append(t)
                row_example.append(-1 if batch else j)
                if bar is not None:
                    bar.update(1)
            if want_moments:
                slq.append(per_trial)
            info["path"] = "matrix_free"
    finally:
        if bar is not None:
            bar.close()

    config: dict[str, object] = {
        "kind": "model",
        "model": type(model).__name__,
        "start": start,
        "end": end,
        "input_shape": list(inputs.shape),
        "batch_size": info["batch_size"],
        "n_in": info["n_in"],
        "n_out": info["n_out"],
        "jacobian": "batch" if batch else "per_example",
        "jacobian_shape": [info["rows_j"], info["cols_j"]],
        "method": chosen,
        "method_requested": method,
        "path": info["path"],
        "k": k,
        "which": which,
        "rows": len(rows),
        "trials": trials,
        "seed": seed,
        "reinit": reinit_desc,
        "device": str(dev),
        "dtype": str(dt).replace("torch.", ""),
        "train_batchnorm": train_bn,
        "structural_zeros_dropped": bool(chosen == "dense" and batch and bool(train_bn) and drop_structural_zeros),
        "memory_budget": memory_budget,
    }
    width = max(r.size for r in rows)
    if any(r.size != width for r in rows):  # cannot happen: every row of one call has the same length
        raise RuntimeError("rows of different lengths")
    return ModelSpectrumResult(
        np.stack(rows),
        np.asarray(zeros, dtype=np.int64),
        config,
        row_trial=np.asarray(row_trial),
        row_example=np.asarray(row_example),
        dense_values=dense_values if chosen == "dense" else None,
        jacobian_rows=(info["rows_j"] * (1 if batch else info["batch_size"])) if chosen == "dense" else None,
        slq=slq if slq else None,
    )
