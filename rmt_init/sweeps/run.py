"""``sweep``: every point of a grid, in-process, on a local process pool or on a Dask cluster, resumable."""
from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from .._validate import check_choice, check_int
from .grid import SCHEMA, expand, point_key, point_seed
from .point import run_point
from .store import assemble, check_format, parts_dir, read_part, write_dataset, write_part

__all__ = ["sweep"]

Callback = Callable[[dict[str, Any], dict[str, Any]], None]


def _progress(progress: bool | str, total: int, initial: int) -> Any:
    show = progress is True or (progress == "auto" and sys.stderr.isatty())
    if not show or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="sweep", unit="point", file=sys.stderr)


def sweep(
    grid: Mapping[str, Any],
    *,
    out: str | os.PathLike[str] | None = None,
    client: Any = None,
    scheduler: str | None = None,
    processes: bool | int = False,
    resume: bool = True,
    seed: int = 0,
    device: str = "cpu",
    threads: int | None = 1,
    distances: bool = True,
    report: bool = True,
    progress: bool | str = "auto",
    callback: Callback | None = None,
) -> Any:
    """Monte Carlo, theory and comparison numbers for every point of ``grid``, in one ``xarray.Dataset``.

    Args:
        grid: parameter → list of values (one dimension of the result per list, in this order) or → one
            value (the same for every point). Parameters (:data:`rmt_init.sweeps.grid.DEFAULTS`): ``depth``,
            ``width``, ``activation``, ``init`` (a ``torch.nn.init`` scheme), ``sigma_w2`` (``init="gaussian"``
            only; default critical), ``sigma_b2``, ``batchnorm`` (``"none"``, ``"train"``,
            ``"train_diagonal"``, ``"eval"``), ``batch_size``, ``trials``.
        out: a netCDF path (``.nc``; written with scipy) or a ``.zarr`` folder (needs zarr). Each finished point
            is first written to ``<out>.parts/<key>.json``; the dataset is assembled from the parts and
            written atomically. ``None``: nothing is written, nothing resumed.
        client: a ``dask.distributed.Client``: every point is a task (``pure=False, retries=2``); a worker that
            dies or a task that fails is retried, and a point is written when its result reaches this process.
        scheduler: a Dask scheduler address (``"tcp://host:8786"``): a client is opened on it and closed.
        processes: ``True`` (one worker per CPU) or a number of workers: a local process pool (spawn).
        resume: skip the points whose part already exists (``False``: recompute and overwrite them).
        seed: base seed; each point's seed is derived from it and the point's description
            (:func:`~rmt_init.sweeps.grid.point_seed`), so the numbers do not depend on the executor or order.
        device: torch device of the networks (part of every point's description).
        threads: torch intra-op threads while a point runs (default 1: fixed, so that every executor gives
            the same numbers; ``None`` leaves torch's setting).
        distances: compute KS and W₁ (default). They need the law's distribution-function table: ~1 s a point
            for ReLU/linear laws, minutes for smooth ones (tanh at q* > 0); ``False`` keeps the moment and edge
            errors only (the Monte Carlo samples, hence the seeds, are the same either way).
        report: with ``out``, also write ``<stem>.md`` and the self-contained ``<stem>.html`` next to it.
        progress: a progress bar on stderr (``"auto"``: only on a terminal).
        callback: called as ``callback(point, record)`` after each newly computed point is written.

    Returns the dataset: per point the variables of :mod:`rmt_init.sweeps.point` (``NaN`` where a number does
    not exist), ``note`` (text) and ``done`` (1 once computed); attrs: the fixed parameters, seed, device,
    seconds (wall time of this call), points computed now and resumed. A ``KeyboardInterrupt`` stops the
    sweep with the finished points kept in the parts folder: rerun to continue.
    """
    g = expand(grid)
    seed = check_int("seed", seed, minimum=0)
    device = check_choice("device", device, ("cpu", "cuda"))
    if threads is not None:
        threads = check_int("threads", threads, minimum=1)
    workers = 0
    if processes is not False and processes is not None:
        workers = (os.cpu_count() or 1) if processes is True else check_int("processes", processes, minimum=1)
    if sum([client is not None, scheduler is not None, workers > 0]) > 1:
        raise ValueError("give at most one of client=, scheduler= and processes=")
    if scheduler is not None and (not isinstance(scheduler, str) or "://" not in scheduler):
        raise ValueError(f"scheduler must be an address such as 'tcp://127.0.0.1:8786'; got {scheduler!r}")
    if out is not None:
        check_format(out)  # e.g. a .zarr path without zarr installed: refused before any work
    start = time.perf_counter()
    points = g.points()
    distances = bool(distances)
    keys = [point_key(p, seed, device, distances) for p in points]
    folder = parts_dir(out) if out is not None else None
    records: dict[str, dict[str, Any]] = {}
    if folder is not None and resume:
        for key, point in zip(keys, points):
            stored = read_part(folder, key, point)
            if stored is not None:
                records[key] = stored
    resumed = len(records)
    todo = [(k, p) for k, p in zip(keys, points) if k not in records]
    bar = _progress(progress, len(points), resumed)

    def finished(key: str, point: dict[str, Any], record: dict[str, Any]) -> None:
        records[key] = record
        if folder is not None:
            write_part(folder, key, point, record)
        if bar is not None:
            bar.update(1)
        if callback is not None:
            callback(point, record)

    try:
        if client is not None or scheduler is not None:
            _run_dask(todo, seed, device, threads, distances, client, scheduler, finished)
        elif workers > 0:
            _run_pool(todo, seed, device, threads, distances, workers, finished)
        else:
            for key, point in todo:
                finished(key, point, run_point(point, point_seed(point, seed, device), device, threads, distances))
    finally:
        if bar is not None:
            bar.close()
    attrs = {"title": "rmt_init sweep: Jacobian spectra of torch networks against the theory",
             "seed": seed, "device": device, "schema": SCHEMA, "distances": int(distances), "computed": len(todo), "resumed": resumed,
             "seconds": time.perf_counter() - start,
             "axes": ",".join(g.axes)}
    ds = assemble(g, ((p, records[k]) for k, p in zip(keys, points)), attrs)
    if out is not None:
        write_dataset(ds, out)
        if report:
            from .report import write_reports

            write_reports(ds, Path(out))
    return ds


def _run_pool(todo, seed, device, threads, distances, workers, finished) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's thread pools
    with ProcessPoolExecutor(max_workers=min(workers, max(len(todo), 1)), mp_context=context) as pool:
        futures = {pool.submit(run_point, p, point_seed(p, seed, device), device, threads, distances): (k, p)
                   for k, p in todo}
        try:
            for future in as_completed(futures):
                key, point = futures[future]
                finished(key, point, future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise


def _run_dask(todo, seed, device, threads, distances, client, scheduler, finished) -> None:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError as error:  # pragma: no cover - distributed is a dependency
        raise ValueError("client=/scheduler= need dask.distributed (pip install distributed)") from error
    own = client is None
    if own:
        client = Client(scheduler)
    try:
        futures = {}
        for key, point in todo:
            future = client.submit(run_point, point, point_seed(point, seed, device), device, threads, distances,
                                   pure=False, retries=2, key=f"rmt-init-sweep-{key}-{uuid.uuid4().hex}")
            futures[future] = (key, point)
        try:
            for future in dask_completed(list(futures)):
                key, point = futures[future]
                finished(key, point, future.result())
        except BaseException:
            client.cancel(list(futures))
            raise
    finally:
        if own:
            client.close()
