"""Engine plumbing shared by the Monte Carlo entry points: device, dtype, seeds, chunking, progress.

Reproducibility design: every trial ``t`` owns a ``torch.Generator`` seeded from ``(seed, t)`` through
numpy's ``SeedSequence`` (independent, well-mixed streams). A trial's random numbers therefore do not
depend on which other trials share its chunk, so splitting a run into chunks — by ``max_chunk`` or after an
out-of-memory error — never changes the result. Same seed, same device, same dtype ⇒ same numbers.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch

from rmt_init._validate import check_choice, check_int

__all__ = [
    "DEVICES",
    "DTYPES",
    "resolve_device",
    "resolve_dtype",
    "resolve_seed",
    "trial_generator",
    "run_chunked",
    "progress_bar",
    "memory_capacity",
    "check_memory",
]

DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")
DTYPES: tuple[str, ...] = ("float64", "float32")
_DTYPE_ALIASES = {"double": "float64", "single": "float32", "float": "float32"}

T = TypeVar("T")


def resolve_device(device: object) -> torch.device:
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``/``"cuda:k"`` or a ``torch.device``.

    Raises ``ValueError`` naming the value for anything else, and for CUDA when none is available.
    """
    if isinstance(device, torch.device):
        kind = device.type
        dev = device
    elif isinstance(device, str) and device.strip().lower().startswith("cuda:"):
        try:
            dev = torch.device(device.strip().lower())
        except RuntimeError as exc:
            raise ValueError(f"unknown device {device!r}; valid choices are 'auto', 'cpu', 'cuda', 'cuda:<k>'") from exc
        kind = "cuda"
    else:
        kind = check_choice("device", device, DEVICES)
        if kind == "auto":
            kind = "cuda" if torch.cuda.is_available() else "cpu"
        dev = torch.device(kind)
    if kind not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; valid choices are 'auto', 'cpu', 'cuda'")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if kind == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r} does not exist ({torch.cuda.device_count()} CUDA device(s))")
    return dev


def resolve_dtype(dtype: object, argument: str = "dtype") -> torch.dtype:
    """``torch.float64``/``torch.float32`` or their names (``"float64"``, ``"double"``, ``"float32"``, ``"single"``);
    ``argument`` names the parameter in the error message."""
    if dtype is torch.float64 or dtype is torch.float32:
        return dtype
    if isinstance(dtype, torch.dtype):
        raise ValueError(f"unsupported {argument} {dtype!r}; valid choices are 'float64', 'float32'")
    name = check_choice(argument, dtype, DTYPES, _DTYPE_ALIASES)
    return torch.float64 if name == "float64" else torch.float32


def resolve_seed(seed: object) -> int:
    """A non-negative integer seed; ``None`` draws fresh OS entropy (recorded in the result's config)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    return check_int("seed", seed, minimum=0)


def trial_generator(seed: int, trial: int, device: torch.device) -> torch.Generator:
    """The generator of trial ``trial``: seeded with 64 bits of ``SeedSequence(seed, spawn_key=(trial,))``."""
    state = np.random.SeedSequence(seed, spawn_key=(int(trial),)).generate_state(2, dtype=np.uint32)
    gen = torch.Generator(device=device)
    gen.manual_seed(int(state[0]) | (int(state[1]) << 32))
    return gen


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and (
        "out of memory" in str(exc).lower() or "can't allocate memory" in str(exc).lower()
    )


def run_chunked(
    fn: Callable[[Sequence[int]], T],
    items: Sequence[int],
    chunk: int,
    *,
    progress: object = False,
    description: str = "",
) -> list[T]:
    """Apply ``fn`` to consecutive chunks of ``items`` (at most ``chunk`` each); return the list of results.

    On an out-of-memory error (``torch.OutOfMemoryError`` — CUDA — or a CPU allocator failure) the chunk
    is halved (CUDA cache emptied) and retried; only a failing chunk of size 1 re-raises. Because every
    trial has its own generator, results do not depend on the chunk sizes actually used.
    """
    chunk = max(1, int(chunk))
    out: list[T] = []
    pos = 0
    bar = progress_bar(len(items), progress, description)
    try:
        while pos < len(items):
            part = items[pos : pos + chunk]
            try:
                res = fn(part)
            except (torch.OutOfMemoryError, RuntimeError) as exc:
                if not _is_oom(exc) or chunk == 1:
                    raise
                chunk = max(1, chunk // 2)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            out.append(res)
            pos += len(part)
            if bar is not None:
                bar.update(len(part))
    finally:
        if bar is not None:
            bar.close()
    return out


def memory_capacity(device: torch.device) -> int | None:
    """Bytes of memory of ``device``: the GPU's total memory, or the machine's physical memory (None if unknown)."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return int(torch.cuda.get_device_properties(index).total_memory)
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n:.3g} bytes ({n / size:.3g} {unit})"
    return f"{n:.3g} bytes"


def check_memory(need_bytes: float, device: torch.device, what: str, hint: str) -> None:
    """Raise ``ValueError`` up front when one trial needs more than all of ``device``'s memory.

    ``need_bytes`` is a lower bound of what one trial must hold at once (the caller's estimate), so a
    refused run could never have run; ``what`` names the call and its sizes (``"product_spectrum(depth=2,
    width=1000000)"``), ``hint`` what to reduce.
    """
    cap = memory_capacity(device)
    if cap is not None and need_bytes > cap:
        raise ValueError(
            f"{what} needs at least {_bytes(need_bytes)} for one trial, more than the {device.type} memory "
            f"({_bytes(cap)}); {hint}"
        )


def progress_bar(total: int, progress: object, description: str = ""):
    """A ``tqdm`` bar: ``progress=True`` always, ``"auto"`` only on a terminal, ``False`` never (returns None)."""
    if progress is False or progress is None:
        return None
    if progress is True:
        disable: bool | None = False
    elif isinstance(progress, str) and progress.strip().lower() == "auto":
        disable = None  # tqdm: disable when not writing to a terminal
    else:
        raise ValueError(f"unknown progress {progress!r}; valid choices are True, False, 'auto'")
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, disable=disable, leave=False)


def check_progress(progress: object) -> object:
    """Validate ``progress`` (True, False, None or ``"auto"``) without creating a bar."""
    if progress is None or isinstance(progress, bool):
        return bool(progress)
    if isinstance(progress, str) and progress.strip().lower() == "auto":
        return "auto"
    raise ValueError(f"unknown progress {progress!r}; valid choices are True, False, 'auto'")


def chunk_from_budget(bytes_per_item: float, memory_budget: object, max_chunk: object, total: int) -> int:
    """Items per chunk: at most ``max_chunk`` and at most ``memory_budget // bytes_per_item`` (≥ 1)."""
    chunk = total
    if max_chunk is not None:
        chunk = min(chunk, check_int("max_chunk", max_chunk, minimum=1))
    if memory_budget is not None:
        budget = check_int("memory_budget", memory_budget, minimum=1)
        chunk = min(chunk, max(1, int(budget // max(1.0, bytes_per_item))))
    return max(1, chunk)


def chunks(n: int, size: int) -> Iterator[range]:
    """Consecutive ranges of length ``size`` covering ``range(n)``."""
    for start in range(0, n, size):
        yield range(start, min(n, start + size))


def log_dtype_range(dtype: torch.dtype) -> float:
    """``ln`` of the largest finite value of ``dtype`` (for overflow-safe rescaling)."""
    return math.log(torch.finfo(dtype).max)


class limit_threads:
    """Context manager: run with at most ``n`` intra-op CPU threads (restored on exit).

    Tiny matrices (the deep small-``N`` products) gain nothing from intra-op parallelism, and on a busy
    machine its synchronisation can cost 100× the work; the engine uses one thread for such sizes.
    """

    def __init__(self, n: int | None):
        self.n = n
        self.old: int | None = None

    def __enter__(self) -> "limit_threads":
        if self.n is not None:
            self.old = torch.get_num_threads()
            if self.n < self.old:
                torch.set_num_threads(self.n)
            else:
                self.old = None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.old is not None:
            torch.set_num_threads(self.old)


#: Largest matrix dimension for which the engine runs single-threaded on the CPU.
SMALL_MATRIX = 64


def threads_for(device: torch.device, largest_dim: int) -> int | None:
    """``1`` for small problems on the CPU (see :class:`limit_threads`), else ``None`` (leave as is)."""
    return 1 if device.type == "cpu" and largest_dim <= SMALL_MATRIX else None


def linalg_threads(device: torch.device) -> limit_threads:
    """Context for LAPACK decompositions (QR, SVD): one thread on the CPU.

    Measured on a 2-core machine with torch 2.13 (CPU build): batched ``linalg.qr``/``svdvals`` ran 10–60×
    slower with 2 intra-op threads than with 1 (nested parallelism over the batch and inside LAPACK);
    matrix products keep the default thread count.
    """
    return limit_threads(1 if device.type == "cpu" else None)
