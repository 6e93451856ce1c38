"""Result containers of the Monte Carlo engine (numpy arrays plus the run's configuration)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

__all__ = ["SpectrumResult", "LayerStatsResult", "GrowthEstimate"]


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


@dataclass
class SpectrumResult:
    """Squared singular values of sampled Jacobians / matrix products, one row per trial.

    Attributes:
        squared_singular_values: ``(trials, k)`` float64, each row in decreasing order: the eigenvalues of
            ``J Jᵀ`` (structural zeros of a train-mode BN batch Jacobian removed, see ``structural_zeros``).
        log_singular_values: ``(trials, k)`` float64 ``ln σ_i`` in decreasing order, or ``None``. For the
            QR-stabilised products this is the exact quantity (``squared_singular_values = exp(2 ln σ)``
            can under/overflow float64 at large depth; a warning is then issued) and ``−inf`` marks an exact
            zero (a width bottleneck).
        structural_zeros: ``(trials,)`` int, number of structural zero singular values removed per trial
            (0 without train-mode BN).
        config: the run's configuration (depth, widths, init, seed, device, dtype, …).
        layer_stats: per-layer activation / gradient statistics, each ``(trials, depth + 1)`` (layer 0 is
            the input), or ``None``.
    """

    squared_singular_values: np.ndarray
    log_singular_values: np.ndarray | None
    structural_zeros: np.ndarray
    config: dict[str, object]
    layer_stats: dict[str, np.ndarray] | None = field(default=None)

    @property
    def samples(self) -> np.ndarray:
        """All squared singular values of all trials as one flat float64 array (for histograms / KS tests)."""
        return np.asarray(self.squared_singular_values, dtype=np.float64).ravel()

    @property
    def trials(self) -> int:
        """Number of trials (rows)."""
        return int(self.squared_singular_values.shape[0])

    @property
    def growth_rates(self) -> np.ndarray | None:
        """Finite-depth Lyapunov estimates ``(1/L) ln σ_i`` per trial (``None`` without log values).

        As ``L → ∞`` they converge almost surely to the Lyapunov exponents (Oseledets 1968); for
        i.i.d. Gaussian factors the limits are Newman's (1986) ``½[ψ((N − i + 1)/2) + ln(2σ_w²/N)]``.
        """
        if self.log_singular_values is None:
            return None
        return self.log_singular_values / float(self.config["depth"])

    def to_xarray(self):
        """An ``xarray.Dataset`` with dims ``(trial, index)`` (and ``layer`` for ``layer_stats``).

        Data variables: ``squared_singular_values``, ``log_singular_values`` (if present),
        ``structural_zeros``, and one ``(trial, layer)`` variable per layer statistic; the configuration is
        stored in ``.attrs`` (``None`` as the string ``"None"``, booleans as 0/1, other objects as strings).
        """
        import xarray as xr

        data = {"squared_singular_values": (("trial", "index"), self.squared_singular_values)}
        if self.log_singular_values is not None:
            data["log_singular_values"] = (("trial", "index"), self.log_singular_values)
        data["structural_zeros"] = (("trial",), np.asarray(self.structural_zeros))
        coords = {
            "trial": np.arange(self.trials),
            "index": np.arange(self.squared_singular_values.shape[1]),
        }
        if self.layer_stats:
            for name, arr in self.layer_stats.items():
                data[name] = (("trial", "layer"), arr)
            coords["layer"] = np.arange(next(iter(self.layer_stats.values())).shape[1])
        return xr.Dataset(data, coords=coords, attrs={k: _attr_value(v) for k, v in self.config.items()})


@dataclass
class LayerStatsResult:
    """Per-layer activation / gradient statistics of sampled networks, one row per trial.

    Attributes:
        layer_stats: ``{name: (trials, depth + 1) float64}`` for the names in
            :data:`rmt_init.montecarlo.LAYER_STATS` (layer 0 is the input).
        config: the run's configuration (depth, widths, init, batch norm, seed, device, dtype, …).
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
        low by ``O(1/N)`` (Jensen). Standard error: jackknife over the independent trials (needs ≥ 2).
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
        xc = np.arange(first, last + 1, dtype=np.float64)
        xc -= xc.mean()

        def log_growth(mean_g: np.ndarray) -> np.ndarray:
            y = np.log(mean_g)
            return -((y - y.mean(axis=-1, keepdims=True)) @ xc) / (xc @ xc)

        full = float(log_growth(g.mean(axis=0)))
        if t < 2:
            return GrowthEstimate(math.exp(full), math.nan)
        loo = log_growth((g.sum(axis=0, keepdims=True) - g) / (t - 1))  # leave-one-out means
        se_log = math.sqrt((t - 1) / t * float(((loo - loo.mean()) ** 2).sum()))
        return GrowthEstimate(math.exp(full), math.exp(full) * se_log)

    def to_xarray(self):
        """An ``xarray.Dataset`` with one ``(trial, layer)`` variable per statistic; config in ``.attrs``."""
        import xarray as xr

        data = {name: (("trial", "layer"), arr) for name, arr in self.layer_stats.items()}
        coords = {"trial": np.arange(self.trials), "layer": np.arange(self.depth + 1)}
        return xr.Dataset(data, coords=coords, attrs={k: _attr_value(v) for k, v in self.config.items()})
