"""Sweeps: Monte Carlo and theory over a grid of network configurations, in one ``xarray.Dataset``.

``rmt_init.sweep(grid, out=..., client=...)`` (:func:`~rmt_init.sweeps.run.sweep`) runs every point of a grid
(:mod:`~rmt_init.sweeps.grid`) — torch networks' Jacobian spectra, the law, the comparison numbers
(:mod:`~rmt_init.sweeps.point`) — in-process, on a local process pool or as tasks on any Dask cluster, writes
each finished point to its own part file and assembles the parts into one dataset (:mod:`~rmt_init.sweeps.store`),
with a Markdown and a self-contained HTML report (:mod:`~rmt_init.sweeps.report`). Dask reaches HPC batch
systems through dask-jobqueue and Kubernetes through dask-kubernetes: pass their client.
"""
from .grid import DEFAULTS, PARAMETERS, expand, point_key, point_seed
from .point import run_point
from .run import sweep

__all__ = ["sweep", "run_point", "expand", "point_key", "point_seed", "DEFAULTS", "PARAMETERS"]
