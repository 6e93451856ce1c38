"""The example notebooks run top to bottom without error.

Each notebook checks theory against Monte Carlo or exact values with ``assert`` cells whose tolerances
are derived in comments, so executing it is a test of the package, not a smoke run. The notebooks are
executed in memory (the files are not modified; ``python notebooks/execute.py`` refreshes their stored
outputs) in a temporary working directory, by a kernel of this very interpreter (checked in a cell
prepended to the in-memory copy), with ``MPLBACKEND=Agg``.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
#: seconds per cell; the slowest cell takes a few seconds on a 2-core machine
CELL_TIMEOUT = 240


def _runner():
    spec = importlib.util.spec_from_file_location("rmt_init_notebook_runner", NOTEBOOK_DIR / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_notebooks_are_found():
    assert len(NOTEBOOKS) >= 3, NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_without_error(path: Path, tmp_path: Path) -> None:
    runner = _runner()
    nb = nbformat.read(path, as_version=4)
    # the kernel must be this interpreter (same environment, hence the same rmt_init and torch)
    check = nbformat.v4.new_code_cell(
        f"import sys\nassert sys.prefix == {sys.prefix!r}, (sys.prefix, sys.executable)"
    )
    nb.cells.insert(0, check)
    before = path.read_bytes()
    runner.execute(nb, cwd=tmp_path, timeout=CELL_TIMEOUT)  # raises CellExecutionError on any failure
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert path.read_bytes() == before  # executed in memory only
    assert list(tmp_path.iterdir()) == []  # notebooks write no files
