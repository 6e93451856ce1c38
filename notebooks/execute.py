"""Re-execute the example notebooks in place, so that their stored outputs match the code.

    python notebooks/execute.py                 # every notebook in this folder
    python notebooks/execute.py 01_spectral_laws.ipynb

Each notebook runs top to bottom in a fresh kernel of *this* interpreter (a kernel spec written to a
temporary folder points at ``sys.executable``, so a ``python3`` kernel spec of another environment can
never be picked up), with ``MPLBACKEND=Agg``, the repository root first on ``PYTHONPATH`` (the notebooks
document this checkout of ``rmt_init``) and the notebook's folder as working directory. A cell that
raises stops the run and leaves the file untouched; otherwise the executed notebook replaces the file
atomically (written to a temporary file in the same folder, then ``os.replace``).

``tests/test_notebooks.py`` uses :func:`execute` too, in memory and in a temporary working directory.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KERNEL_NAME = "python3"
#: seconds one cell may run before the execution is abandoned
CELL_TIMEOUT = 300


def notebook_paths(folder: Path = HERE) -> list[Path]:
    """The notebooks of ``folder`` in name order (checkpoint copies excluded)."""
    return sorted(p for p in folder.glob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@contextmanager
def this_interpreter_kernel() -> Iterator[KernelManager]:
    """A kernel manager whose ``python3`` kernel runs ``sys.executable`` (spec in a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="rmt_init_kernel_") as tmp:
        spec = Path(tmp) / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "Python 3 (ipykernel)",
                    "language": "python",
                }
            )
        )
        specs = KernelSpecManager(kernel_dirs=[str(spec.parent)], ensure_native_kernel=False)
        yield KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


@contextmanager
def kernel_environment() -> Iterator[None]:
    """``MPLBACKEND=Agg`` and the repository root first on ``PYTHONPATH`` while the kernel starts."""
    old = {k: os.environ.get(k) for k in ("MPLBACKEND", "PYTHONPATH")}
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([old["PYTHONPATH"]] if old["PYTHONPATH"] else []))
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute(nb: nbformat.NotebookNode, cwd: Path | str, timeout: int = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """Run every cell of ``nb`` (modified in place and returned) in a fresh kernel of this interpreter.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first cell that raises and
    ``nbclient.exceptions.CellTimeoutError`` when a cell runs longer than ``timeout`` seconds.
    """
    with kernel_environment(), this_interpreter_kernel() as km:
        client = NotebookClient(
            nb,
            km=km,
            timeout=timeout,
            kernel_name=KERNEL_NAME,
            record_timing=False,
            resources={"metadata": {"path": str(cwd)}},
        )
        client.execute()
    nb.metadata["kernelspec"] = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": KERNEL_NAME}
    return nb


def execute_in_place(path: Path, timeout: int = CELL_TIMEOUT) -> float:
    """Execute the notebook at ``path`` and replace the file atomically; returns the seconds taken."""
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    execute(nb, path.parent, timeout)
    seconds = time.perf_counter() - start
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".ipynb.tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            nbformat.write(nb, fh)
        os.chmod(tmp, mode)  # mkstemp creates 0600; keep the notebook's permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: every notebook in this folder)")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = [Path(p).resolve() for p in args.notebooks] or notebook_paths()
    for path in paths:
        seconds = execute_in_place(path, args.timeout)
        size = path.stat().st_size / 1024
        print(f"{path.name}: executed in {seconds:.1f} s, {size:.0f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
