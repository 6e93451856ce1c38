"""The README shows what the package prints.

Its pycon blocks are doctests (collected from README.md, see ``[tool.pytest.ini_options]``); this file
checks the one block that is not Python: the main job's printed summary.
"""
from __future__ import annotations

import re
from pathlib import Path

from rmt_init.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _main_job_block() -> str:
    text = README.read_text(encoding="utf-8")
    after = text[text.index("The main job prints") :]
    match = re.search(r"```\n(.*?)```", after, re.S)
    assert match, "README: no output block after 'The main job prints'"
    return match.group(1)


def test_readme_shows_the_main_jobs_output(capsys) -> None:
    assert main(["--no-plot"]) in (0, None)
    printed = capsys.readouterr().out
    assert printed.strip() == _main_job_block().strip()
