"""Result containers of the Monte Carlo engine (numpy arrays plus the run's configuration)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SpectrumResult"]


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
