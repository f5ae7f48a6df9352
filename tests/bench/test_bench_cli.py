"""``python -m bench`` checks what it needs before measuring anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# matplotlib made unimportable, then the benchmark's entry point called as `-m bench` calls it.
WITHOUT_MATPLOTLIB = (
    "import sys; sys.modules['matplotlib'] = None; "
    "from bench.__main__ import main; sys.exit(main(sys.argv[1:]))"
)


def test_without_matplotlib_the_run_stops_at_once_and_says_why() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_MATPLOTLIB],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "matplotlib is not installed" in done.stderr
    assert "--no-plot" in done.stderr
    assert done.stdout == ""  # no benchmark ran (each prints a JSON line)


def test_help_names_the_no_plot_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0
    assert "--no-plot" in done.stdout


def test_without_postgresql_the_run_stops_at_once_and_says_why() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--no-plot"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NOTIFYKIT_TEST_POSTGRES_URL": "postgresql://postgres@127.0.0.1:1/x"},
    )
    assert done.returncode == 2
    assert "many-instances comparisons cannot run" in done.stderr
    assert "--no-postgres" in done.stderr
    assert done.stdout == ""  # no benchmark ran (each prints a JSON line)


def test_help_names_the_no_postgres_option() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0 and "--no-postgres" in done.stdout
