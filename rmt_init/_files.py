"""Files the package writes: JSON-safe values and atomic writes (shared by the sweeps, the HTML reports, the CLI
and the validation suite).

An atomic write goes to a temporary file (``.tmp-…``) in the target's folder, is flushed and fsynced and is
renamed onto the target with ``os.replace`` (atomic on POSIX): an interruption leaves either the old file or the
new one, never half of one. The file gets mode 0o666 less the umask, the permissions of any file a program
creates (not the 0o600 of :func:`tempfile.mkstemp`).
"""
from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

TMP_PREFIX = ".tmp-"


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats (→ None) into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if value is None or isinstance(value, str):
        return value
    return str(value)


def _create_temporary(path: Path) -> tuple[int, str]:
    """Create (O_EXCL) and open a new file ``.tmp-<random><suffix>`` next to ``path`` with mode 0o666 less the
    umask; return its descriptor and name."""
    for _ in range(100):
        name = str(path.parent / f"{TMP_PREFIX}{secrets.token_hex(6)}{path.suffix}")
        try:
            return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), name
        except FileExistsError:
            continue
    raise OSError(f"could not create a temporary file next to {str(path)!r}")


def atomic_write(path: str | os.PathLike[str], writer: Callable[[Any], None], mode: str = "w") -> Path:
    """Call ``writer(handle)`` on a temporary file opened with ``mode`` (``"w"`` text as UTF-8, or ``"wb"``),
    then rename it onto ``path`` (see the module docstring); the folder is created if needed. On any error the
    temporary file is removed and ``path`` keeps its old content (or stays absent)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb'; got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as handle:
            writer(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    return atomic_write(path, lambda handle: handle.write(text), "w")
