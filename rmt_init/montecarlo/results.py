"""Result containers of the Monte Carlo engine (numpy arrays plus the run's configuration)."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = ["SpectrumResult", "ModelSpectrumResult", "LayerStatsResult", "GrowthEstimate"]


class GrowthEstimate(NamedTuple):
    """A per-layer growth factor measured by Monte Carlo, with its standard error."""

    value: float
    stderr: float


def _attr_value(value: object) -> object:
    """Config values as netCDF-friendly attributes (numbers, strings, lists of numbers)."""
    if value is None:
        return "None"
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, float, str, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, np.integer, np.floating)) for v in value):
        return list(value)
    return str(value)


#: Configuration entries shown by the results' ``repr`` (all of them are in ``.config``).
_SHOWN_CONFIG = (
    "kind", "architecture", "depth", "widths", "activation", "init", "weights", "sigma_w2", "batchnorm",
    "batch_size", "trials", "seed", "device", "dtype", "method", "jacobian",
)


def _short(value: object) -> str:
    """A config value in a few characters: long lists as ``[4]×10001`` or ``[a, b, c, …, z] (n)``."""
    if isinstance(value, (list, tuple)) and len(value) > 6:
        if all(v == value[0] for v in value):
            return f"[{value[0]!r}]×{len(value)}"
        return "[" + ", ".join(repr(v) for v in value[:3]) + ", …, " + repr(value[-1]) + f"] ({len(value)})"
    return repr(value)


def _config_line(name: str, config: dict[str, object]) -> str:
    shown = [f"{k}={_short(config[k])}" for k in _SHOWN_CONFIG if k in config]
    more = len(config) - len(shown)
    tail = f", … ({more} more in .config)" if more > 0 else ""
    return f"{name}(" + ", ".join(shown) + tail + ")"


def _array_summary(a: np.ndarray, valid: np.ndarray | None = None) -> str:
    """Shape, dtype, and mean/min/max over the finite entries (and over ``valid`` ones only, if given)."""
    a = np.asarray(a)
    head = f"{a.shape} {a.dtype}"
    keep = np.isfinite(a) if valid is None else np.isfinite(a) & valid
    finite = a[keep]
    if finite.size == 0:
        return head + ": no finite values"
    return head + f": mean {finite.mean():.4g}, min {finite.min():.4g}, max {finite.max():.4g}"


def _stats_summary(layer_stats: dict[str, np.ndarray] | None) -> str:
    if not layer_stats:
        return "None"
    shape = next(iter(layer_stats.values())).shape
    line = f"{len(layer_stats)} statistics, each {shape} (trial, layer): {', '.join(layer_stats)}"
    if "grad_sq_norm" in layer_stats:
        g = np.asarray(layer_stats["grad_sq_norm"], dtype=np.float64).mean(axis=0)
        line += f"; trial-mean grad_sq_norm {g[0]:.4g} (layer 0) … {g[-1]:.4g} (layer {g.size - 1})"
    return line


class SpectrumResult:
    """Squared singular values of sampled Jacobians / matrix products, one row per trial.

    Attributes:
        squared_singular_values: ``(trials, k)`` float64, each row in decreasing order: the eigenvalues of
            ``J Jᵀ`` (structural zeros of a train-mode BN batch Jacobian removed, see ``structural_zeros``).
            For a deep product ``σ² = exp(2 ln σ)`` can fall outside the float64 range and saturate to 0 or
            inf: reading this attribute (or :attr:`samples`) then warns (``RuntimeWarning``) and says to use
            ``log_singular_values`` / :attr:`growth_rates`, which stay exact and finite (:attr:`saturated`
            counts the saturated values; reading only the log values or growth rates does not warn).
        log_singular_values: ``(trials, k)`` float64 ``ln σ_i`` in decreasing order, or ``None``. For the
            QR-stabilised products this is the exact quantity, and ``−inf`` marks an exact zero (a width
            bottleneck).
        structural_zeros: ``(trials,)`` int, number of structural zero singular values removed per trial
            (0 without train-mode BN).
        config: the run's configuration (depth, widths, init, seed, device, dtype, …).
        layer_stats: per-layer activation / gradient statistics, each ``(trials, depth + 1)`` (layer 0 is
            the input), or ``None``.

    ``repr``/``str`` is a short summary (configuration, shapes, a few numbers), never the arrays.
    """

    def __init__(
        self,
        squared_singular_values: np.ndarray,
        log_singular_values: np.ndarray | None,
        structural_zeros: np.ndarray,
        config: dict[str, object],
        layer_stats: dict[str, np.ndarray] | None = None,
    ) -> None:
        self._squared = np.asarray(squared_singular_values)
        self.log_singular_values = None if log_singular_values is None else np.asarray(log_singular_values)
        self.structural_zeros = np.asarray(structural_zeros)
        self.config = config
        self.layer_stats = layer_stats
        bad = ~np.isfinite(self._squared)
        if self.log_singular_values is not None and self.log_singular_values.shape == self._squared.shape:
            bad |= (self._squared == 0) & np.isfinite(self.log_singular_values)
        self._bad = bad
        #: Number of squared singular values saturated to 0 or inf (or not finite) in float64.
        self.saturated = int(bad.sum())

    @property
    def squared_singular_values(self) -> np.ndarray:
        """``(trials, k)`` squared singular values; warns if some are saturated (class docstring)."""
        if self.saturated:
            hint = (
                "use log_singular_values (exact ln σ) or growth_rates (ln σ / depth), which are finite"
                if self.log_singular_values is not None
                else "they are not finite"
            )
            warnings.warn(
                f"{self.saturated} of {self._squared.size} squared singular values are outside the float64 range "
                f"(saturated to 0 or inf); {hint}",
                RuntimeWarning,
                stacklevel=2,
            )
        return self._squared

    @property
    def samples(self) -> np.ndarray:
        """All squared singular values of all trials as one flat float64 array (for histograms / KS tests)."""
        return np.asarray(self.squared_singular_values, dtype=np.float64).ravel()

    @property
    def trials(self) -> int:
        """Number of trials (rows)."""
        return int(self._squared.shape[0])

    @property
    def growth_rates(self) -> np.ndarray | None:
        """Finite-depth Lyapunov estimates ``(1/L) ln σ_i`` per trial (``None`` without log values).

        As ``L → ∞`` they converge almost surely to the Lyapunov exponents (Oseledets 1968); for
        i.i.d. Gaussian factors the limits are Newman's (1986) ``½[ψ((N − i + 1)/2) + ln(2σ_w²/N)]``.
        """
        if self.log_singular_values is None:
            return None
        return self.log_singular_values / float(self.config["depth"])

    def __repr__(self) -> str:
        if self.saturated == self._squared.size:
            sq = f"{self._squared.shape} {self._squared.dtype}: all saturated to 0/inf"
            sq += " (use log_singular_values, growth_rates)"
        else:
            sq = _array_summary(self._squared, ~self._bad)
            if self.saturated:
                sq += f" (unsaturated); {self.saturated} saturated to 0/inf (use log_singular_values, growth_rates)"
        lines = [_config_line("SpectrumResult", self.config), f"  squared_singular_values  {sq}"]
        if self.log_singular_values is None:
            lines.append("  log_singular_values      None")
        else:
            lines.append(f"  log_singular_values      {_array_summary(self.log_singular_values)}")
            rates = self.growth_rates.mean(axis=0)
            shown = ", ".join(f"{r:.4g}" for r in rates[:4]) + (", …" if rates.size > 4 else "")
            lines.append(f"  growth_rates             ln σ / depth, trial mean per index: [{shown}]")
        z = np.unique(self.structural_zeros)
        lines.append(f"  structural_zeros         {', '.join(str(v) for v in z[:4])} per trial")
        lines.append(f"  layer_stats              {_stats_summary(self.layer_stats)}")
        return "\n".join(lines)

    __str__ = __repr__

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``(trial, index)`` (and ``layer`` for ``layer_stats``).

        Data variables: ``squared_singular_values``, ``log_singular_values`` (if present),
        ``structural_zeros``, and one ``(trial, layer)`` variable per layer statistic; the configuration is
        stored in ``.attrs`` (``None`` as the string ``"None"``, booleans as 0/1, other objects as strings),
        with ``saturated`` (number of squared singular values saturated to 0/inf) added when it is not 0.
        """
        import xarray as xr

        data = {"squared_singular_values": (("trial", "index"), self._squared)}
        if self.log_singular_values is not None:
            data["log_singular_values"] = (("trial", "index"), self.log_singular_values)
        data["structural_zeros"] = (("trial",), np.asarray(self.structural_zeros))
        coords = {
            "trial": np.arange(self.trials),
            "index": np.arange(self._squared.shape[1]),
        }
        if self.layer_stats:
            for name, arr in self.layer_stats.items():
                data[name] = (("trial", "layer"), arr)
            coords["layer"] = np.arange(next(iter(self.layer_stats.values())).shape[1])
        attrs = {k: _attr_value(v) for k, v in self.config.items()}
        if self.saturated:
            attrs["saturated"] = self.saturated
        return xr.Dataset(data, coords=coords, attrs=attrs)


#: Configuration entries shown by :class:`ModelSpectrumResult`'s ``repr``.
_SHOWN_MODEL_CONFIG = (
    "model", "start", "end", "input_shape", "jacobian", "jacobian_shape", "method", "path", "k", "which",
    "trials", "seed", "device", "dtype",
)


class ModelSpectrumResult(SpectrumResult):
    """Squared singular values of the Jacobian of a ``torch.nn.Module``, one row per Jacobian.

    Made by :func:`rmt_init.montecarlo.model_jacobian_spectrum`; shares the protocol of
    :class:`SpectrumResult` (``squared_singular_values``, ``samples``, ``config``, ``structural_zeros``,
    short ``repr``, ``to_xarray``), so :func:`rmt_init.compare` and :func:`rmt_init.plot.compare` take it.

    Rows: one per Jacobian — per example (``config["jacobian"] == "per_example"``: ``trials × B`` rows,
    ordered trial-major) or per trial (``"batch"``: the batch-coupled Jacobian, ``trials`` rows).
    :attr:`row_trial` and :attr:`row_example` say which trial/example a row is. Each row is in
    *decreasing* order, as in :class:`SpectrumResult`, whatever the method:

    * ``"dense"``: all squared singular values (or the ``k`` largest/smallest), structural zeros of a
      train-mode BatchNorm batch Jacobian removed (their number in ``structural_zeros``);
    * ``"lanczos"``: the ``k`` largest (or smallest) squared singular values;
    * ``"slq"``: a deterministic ``points``-value representation (quantiles) of the *estimated* spectral
      distribution of the row's Jacobian — a picture of the estimated density, not samples of it.

    :attr:`trials` is the number of independently initialised networks (``config["trials"]``), not the
    number of rows. :meth:`moment` gives ``(1/n) tr (J Jᵀ)^k`` with its standard error.
    """

    def __init__(
        self,
        squared_singular_values: np.ndarray,
        structural_zeros: np.ndarray,
        config: dict[str, object],
        *,
        row_trial: np.ndarray,
        row_example: np.ndarray,
        dense_values: list[np.ndarray] | None = None,
        jacobian_rows: int | None = None,
        slq: list[list[tuple[Any, float]]] | None = None,
    ) -> None:
        super().__init__(squared_singular_values, None, structural_zeros, config, None)
        self.row_trial = np.asarray(row_trial)
        self.row_example = np.asarray(row_example)
        self._dense_values = dense_values
        self._jacobian_rows = jacobian_rows
        self._slq = slq

    @property
    def trials(self) -> int:
        """Number of independently initialised networks (each may give several rows, one per example)."""
        return int(self.config["trials"])

    @property
    def has_moments(self) -> bool:
        """Whether :meth:`moment` can answer (always for dense and slq; lanczos only with ``moments=True``)."""
        return self._dense_values is not None or self._slq is not None

    def moment(self, k: int) -> tuple[float, float]:
        """``(estimate, standard_error)`` of the spectral moment ``m_k = (1/n) tr (J Jᵀ)^k``.

        ``n`` is the number of rows of ``J`` (outputs): ``n_out`` for a per-example Jacobian, averaged over
        the examples of a trial (so ``n = B·n_out``, the trace of the block-diagonal per-example map), and
        ``B·n_out`` for the batch-coupled Jacobian. Structural zeros do not change the trace. Per trial:

        * dense: the exact ``m_k`` of the trial's Jacobian(s) (``Σ σ_i^{2k} / n`` over all squared singular
          values, the removed structural zeros included);
        * slq: the stochastic Lanczos quadrature estimate (Ubaru, Chen & Saad 2017, SIAM J. Matrix Anal.
          Appl. 38(4), Eq. 3.3) of the input-side moment ``(1/n_in) tr (JᵀJ)^k`` times ``n_in/n_out`` (the
          two traces are equal, ``k ≥ 1``), its probe standard error scaled alike, averaged over the trial's
          Jacobians (standard errors combined as independent: ``√(Σ se²)/count``).

        Over trials: the mean of the per-trial values; standard error ``std(ddof=1)/√trials`` across the
        independently initialised trials (for slq this includes the probe noise). With one trial: dense
        gives ``nan`` as standard error (one exact value says nothing about the spread over
        initialisations); slq gives the probe standard error alone (the error of the estimate *for this
        network*, conditional on its weights).

        Raises ``ValueError`` for ``k`` not an integer ``>= 1`` and for a lanczos result made without
        ``moments=True``.
        """
        from rmt_init._validate import check_int

        k = check_int("k", k, minimum=1)
        if self._dense_values is not None:
            per = np.array([float(np.sum(v.astype(np.float64) ** k)) for v in self._dense_values]) / float(
                self._jacobian_rows
            )
            if per.size > 1:
                return float(per.mean()), float(per.std(ddof=1) / math.sqrt(per.size))
            return float(per[0]), math.nan
        if self._slq is None:
            raise ValueError(
                "this result has no moments: method 'lanczos' computes only the k extreme values; rerun with "
                "moments=True (adds a stochastic Lanczos quadrature pass) or method='slq'/'dense'"
            )
        est, err = [], []
        for jacobians in self._slq:
            pairs = [tuple(float(v) * factor for v in estimate.moment(k)) for estimate, factor in jacobians]
            e = np.array([p[0] for p in pairs])
            s = np.array([p[1] for p in pairs])
            est.append(float(e.mean()))
            err.append(float(math.sqrt(float(np.sum(s**2))) / e.size))
        est_a = np.array(est)
        if est_a.size > 1:
            return float(est_a.mean()), float(est_a.std(ddof=1) / math.sqrt(est_a.size))
        return float(est_a[0]), float(err[0])

    def __repr__(self) -> str:
        shown = [f"{key}={_short(self.config[key])}" for key in _SHOWN_MODEL_CONFIG if key in self.config]
        more = len(self.config) - len(shown)
        head = "ModelSpectrumResult(" + ", ".join(shown) + (f", … ({more} more in .config)" if more > 0 else "") + ")"
        sq = _array_summary(self._squared, ~self._bad)
        lines = [head, f"  squared_singular_values  {sq} (rows: {self.config.get('rows', '?')})"]
        z = np.unique(self.structural_zeros)
        lines.append(f"  structural_zeros         {', '.join(str(v) for v in z[:4])} per row")
        if self.has_moments:
            m1, s1 = self.moment(1)
            lines.append(f"  moment(1)                {m1:.6g} ± {s1:.3g}")
        return "\n".join(lines)

    __str__ = __repr__

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``(row, index)``; ``trial`` and ``example`` are per-row coordinates.

        Data variables: ``squared_singular_values`` and ``structural_zeros`` (per row); the configuration in
        ``.attrs`` as in :meth:`SpectrumResult.to_xarray`.
        """
        import xarray as xr

        data = {
            "squared_singular_values": (("row", "index"), self._squared),
            "structural_zeros": (("row",), np.asarray(self.structural_zeros)),
        }
        coords = {
            "row": np.arange(self._squared.shape[0]),
            "index": np.arange(self._squared.shape[1]),
            "trial": (("row",), self.row_trial),
            "example": (("row",), self.row_example),
        }
        attrs = {key: _attr_value(v) for key, v in self.config.items()}
        if self.saturated:
            attrs["saturated"] = self.saturated
        return xr.Dataset(data, coords=coords, attrs=attrs)


@dataclass
class LayerStatsResult:
    """Per-layer activation / gradient statistics of sampled networks, one row per trial.

    Attributes:
        layer_stats: ``{name: (trials, depth + 1) float64}`` for the names in
            :data:`rmt_init.montecarlo.LAYER_STATS` (layer 0 is the input).
        config: the run's configuration (depth, widths, init, batch norm, seed, device, dtype, …).

    ``repr``/``str`` is a short summary (configuration, shapes, trial-mean gradient norms), never the arrays.
    """

    layer_stats: dict[str, np.ndarray]
    config: dict[str, object]

    @property
    def trials(self) -> int:
        """Number of trials (rows)."""
        return int(next(iter(self.layer_stats.values())).shape[0])

    @property
    def depth(self) -> int:
        """Number of layers ``L`` (the statistics have ``L + 1`` columns)."""
        return int(next(iter(self.layer_stats.values())).shape[1]) - 1

    def gradient_growth(self, first: int = 1, last: int | None = None) -> GrowthEstimate:
        """Growth factor ``λ`` of the mean squared gradient norm per layer, going backward (output → input).

        ``λ̂ = exp(−s)`` where ``s`` is the least-squares slope of ``ln ḡ_l`` against ``l`` over layers
        ``first..last`` (default ``1..L−1``: input and output layers excluded), ``ḡ_l`` the mean of
        ``grad_sq_norm[:, l]`` over trials. Averaging over trials *before* the logarithm estimates the growth
        of ``E‖g_l‖²`` — the quantity mean-field theory predicts (χ₁ without BN; Yang et al. 2019 with BN,
        ``rmt_init.theory.bn_gradient_growth``); the mean of per-trial log-slopes would instead be biased
        low by ``O(1/N)`` (Jensen). Standard error: jackknife over the independent trials.

        Raises ``ValueError`` — rather than returning NaN — with fewer than 2 trials (no standard error),
        and when a trial mean ``ḡ_l`` in the window, or a leave-one-out mean of the jackknife, is 0 or not
        finite (every gradient vanished, e.g. a dead ReLU network, or overflowed): its logarithm is undefined.
        """
        depth = self.depth
        last = depth - 1 if last is None else last
        if not (isinstance(first, (int, np.integer)) and isinstance(last, (int, np.integer))) or not (
            0 <= first < last <= depth
        ):
            raise ValueError(
                f"need integers 0 <= first < last <= depth = {depth} (at least two layers); got first={first!r}, "
                f"last={last!r}"
            )
        g = np.asarray(self.layer_stats["grad_sq_norm"][:, first : last + 1], dtype=np.float64)
        t = g.shape[0]
        if t < 2:
            raise ValueError(
                f"gradient_growth needs >= 2 trials (its standard error is a jackknife over trials); this result "
                f"has {t} trial; rerun with trials >= 2"
            )
        means = g.mean(axis=0)
        with np.errstate(invalid="ignore", over="ignore"):  # inf/NaN entries are refused just below
            loo_means = (g.sum(axis=0, keepdims=True) - g) / (t - 1)  # leave-one-out means
        for name, m in (("trial mean", means[None, :]), ("leave-one-out trial mean", loo_means)):
            bad = ~(np.isfinite(m) & (m > 0))
            if bad.any():
                layer = first + int(np.flatnonzero(bad.any(axis=0))[0])
                raise ValueError(
                    f"gradient_growth: the {name} of grad_sq_norm at layer {layer} is {float(m[bad][0])!r} "
                    "(every gradient vanished or overflowed), so its logarithm is undefined; restrict first/last "
                    "to layers where gradients are positive and finite, or use wider networks / more trials"
                )
        xc = np.arange(first, last + 1, dtype=np.float64)
        xc -= xc.mean()

        def log_growth(mean_g: np.ndarray) -> np.ndarray:
            y = np.log(mean_g)
            return -((y - y.mean(axis=-1, keepdims=True)) @ xc) / (xc @ xc)

        full = float(log_growth(means))
        loo = log_growth(loo_means)
        se_log = math.sqrt((t - 1) / t * float(((loo - loo.mean()) ** 2).sum()))
        return GrowthEstimate(math.exp(full), math.exp(full) * se_log)

    def __repr__(self) -> str:
        return _config_line("LayerStatsResult", self.config) + f"\n  layer_stats  {_stats_summary(self.layer_stats)}"

    __str__ = __repr__

    def to_xarray(self):
        """An ``xarray.Dataset`` with one ``(trial, layer)`` variable per statistic; config in ``.attrs``."""
        import xarray as xr

        data = {name: (("trial", "layer"), arr) for name, arr in self.layer_stats.items()}
        coords = {"trial": np.arange(self.trials), "layer": np.arange(self.depth + 1)}
        return xr.Dataset(data, coords=coords, attrs={k: _attr_value(v) for k, v in self.config.items()})
