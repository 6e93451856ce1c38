"""The command line: options on either side of the subcommand, refusals before any work, file permissions,
a closed pipe (issue 11, item 4), the top-level help (issue 14).

The ``spectrum`` subcommand (Fuss–Catalan by default) is used where any job would do: it is the fastest.
The main job itself runs once, in tests/test_readme.py; tests/test_cli_main.py runs it on small sizes."""
from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pytest

from rmt_init import cli

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, out: str, err: str, *words: str) -> None:
    """Exit status 2, nothing on stdout, one line on stderr in argparse's form, naming ``words``."""
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rmt-init"), err
    assert "error:" in lines[0] and "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


@pytest.mark.parametrize(
    "argv, depth",
    [
        (["spectrum", "--depth", "5", "--no-plot"], 5),
        (["spectrum", "--depth", "4", "--depth", "6", "--no-plot"], 6),  # the later one wins
        (["--no-plot", "spectrum"], 3),  # the job's output options may come before the subcommand
        (["spectrum", "--no-plot"], 3),
        (["law", "--law", "fuss-catalan", "--depth", "5", "--no-plot"], 5),
    ],
)
def test_options_before_and_after_the_subcommand(capsys, argv, depth):
    status, out, err = run(capsys, *argv)
    assert status == 0 and err == ""
    assert out.startswith(f"Fuss–Catalan law of depth {depth}:")


def test_marchenko_pastur_through_spectrum(capsys):
    status, out, _ = run(capsys, "spectrum", "--law", "marchenko-pastur", "--ratio", "4", "--no-plot")
    assert status == 0 and out.startswith("Marchenko–Pastur law, ratio 4,")


@pytest.mark.parametrize(
    "argv, words",
    [
        (["spectrum", "--ratio", "2", "--no-plot"], ["--ratio", "marchenko-pastur", "fuss-catalan"]),
        (["spectrum", "--variance", "2", "--no-plot"], ["--variance", "marchenko-pastur"]),
        (["spectrum", "--law", "marchenko-pastur", "--depth", "5", "--no-plot"], ["--depth", "fuss-catalan"]),
        (["law", "--law", "fuss-catalan", "--activation", "tanh", "--no-plot"], ["--activation", "jacobian"]),
        (["spectrum", "--no-plot", "--out", "figure.png"], ["--out", "--no-plot"]),
        (["--no-plot", "spectrum", "--scale", "log"], ["--scale", "--no-plot"]),
        (["--no-plot", "--out", "figure.png"], ["--out", "--no-plot"]),  # the main job
    ],
)
def test_options_that_do_not_apply_are_refused(capsys, argv, words):
    assert_one_line_error(*run(capsys, *argv), *words)


@pytest.mark.parametrize(
    "argv, words",
    [
        (["spectrum", "--depth", "x"], ["--depth", "'x'"]),
        (["spectrum", "--depth", "0"], ["depth", "0"]),
        (["spectrum", "--law", "gaussian"], ["--law", "gaussian", "fuss-catalan"]),
        (["spectrum", "--law", "marchenko-pastur", "--ratio", "-1"], ["ratio", "-1"]),
        (["spectrum", "--scale", "cubic"], ["--scale", "cubic"]),
        (["--depth", "5"], ["'5'", "law"]),  # law options belong to law/spectrum, not to the main job
        (["--bogus"], ["--bogus"]),
        (["spectrum", "--bogus"], ["--bogus"]),
        (["nonsense"], ["nonsense"]),
    ],
)
def test_bad_arguments_are_one_line_errors(capsys, argv, words):
    assert_one_line_error(*run(capsys, *argv), *words)


def test_out_into_a_missing_directory_is_refused_before_any_work(tmp_path, capsys):
    target = tmp_path / "missing" / "figure.png"
    assert_one_line_error(*run(capsys, "spectrum", "--out", str(target)), "--out", "does not exist")
    assert list(tmp_path.iterdir()) == []  # nothing created, not even the directory


def test_out_onto_a_directory_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    assert_one_line_error(*run(capsys, "spectrum", "--out", str(tmp_path / "d")), "--out", "is a directory")
    assert [p.name for p in tmp_path.iterdir()] == ["d"] and list((tmp_path / "d").iterdir()) == []


def test_out_with_an_unknown_format_is_refused(tmp_path, capsys):
    assert_one_line_error(*run(capsys, "spectrum", "--out", str(tmp_path / "figure.xyz")), "--out", "'xyz'", "png")
    assert list(tmp_path.iterdir()) == []


def test_out_below_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    assert_one_line_error(*run(capsys, "spectrum", "--out", str(tmp_path / "file" / "f.png")), "--out", "not a directory")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_figure_has_the_permissions_of_a_new_file(tmp_path, capsys, umask, mode):
    """0o666 less the umask, as for any file a program creates (was 0o600 whatever the umask: the mode of a
    tempfile.NamedTemporaryFile renamed onto the path)."""
    out = tmp_path / "figure.png"
    previous = os.umask(umask)
    try:
        status, stdout, _ = run(capsys, "spectrum", "--out", str(out))
    finally:
        os.umask(previous)
    assert status == 0 and stdout.rstrip().endswith(f"wrote {out}")
    assert stat.S_IMODE(out.stat().st_mode) == mode
    assert [p.name for p in tmp_path.iterdir()] == ["figure.png"]  # no temporary file left


def test_figure_replaces_an_existing_file_and_takes_the_format_of_its_extension(tmp_path, capsys):
    out = tmp_path / "figure.svg"
    out.write_text("old")
    status, _, _ = run(capsys, "spectrum", "--law", "marchenko-pastur", "--out", str(out))
    assert status == 0 and out.read_text().lstrip().startswith("<?xml")
    no_extension = tmp_path / "figure"
    assert run(capsys, "spectrum", "--out", str(no_extension))[0] == 0
    assert no_extension.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # png, written at the path given
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure", "figure.svg"]


def test_help_and_version_exit_0(capsys):
    assert cli.main(["--version"]) == 0
    assert "rmt_init" in capsys.readouterr().out
    assert cli.main(["spectrum", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--scale" in text and "fuss-catalan only" in text


def test_top_level_help_says_what_each_job_is_for_in_one_screen(capsys):
    assert cli.main(["--help"]) == 0
    text = capsys.readouterr().out
    assert len(text.splitlines()) <= 50  # one terminal screen
    assert "main job" in text and "batch norm" in text
    for command, purpose in [("law", "jacobian_spectrum"), ("compare", "against the theory"),
                             ("audit", "which init should I use"), ("spectrum", "Fuss–Catalan")]:
        line = next(line for line in text.splitlines() if line.strip().startswith(command + " "))
        assert purpose in text[text.index(line):], command


@pytest.mark.parametrize("command, words", [("law", ["--activation", "--init-arg", "--widths", "--json"]),
                                            ("compare", ["--trials", "--seed", "--json", "--out"]),
                                            ("audit", ["--csv", "--markdown", "--edges", "--json"])])
def test_each_subcommand_has_help(capsys, command, words):
    assert cli.main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: rmt-init {command}")
    for word in words:
        assert word in text, word


def test_a_closed_pipe_ends_quietly():
    """``rmt-init | head -2``: the reader is gone before the summary is written. The read end is closed before
    the child prints anything, so every write fails (EPIPE), deterministically."""
    read_end, write_end = os.pipe()
    code = "import sys; from rmt_init.cli import main; sys.exit(main(['spectrum', '--no-plot']))"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    os.close(read_end)
    try:
        done = subprocess.run([sys.executable, "-c", code], stdout=write_end, stderr=subprocess.PIPE, cwd=REPO,
                              env=env, timeout=120)
    finally:
        os.close(write_end)
    assert done.stderr.decode() == ""  # was a BrokenPipeError traceback
    assert done.returncode == 1
