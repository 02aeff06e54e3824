"""Run every code example of the docs site (docs/snippets/*.py) in a fresh process.

The pages include these files with ``--8<--`` (pymdownx.snippets), so what the docs
show is what runs here. A snippet may declare optional dependencies on a line
``# requires: name, name``; it is skipped when one of them cannot be imported.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNIPPETS = sorted((ROOT / "docs" / "snippets").glob("*.py"))
TIMEOUT_S = 120  # generous: a fresh CI environment compiles the numba kernels once
_REQUIRES = re.compile(r"^# requires: (.+)$", re.MULTILINE)


def _missing(path: Path) -> list[str]:
    found = _REQUIRES.search(path.read_text(encoding="utf-8"))
    names = [] if found is None else [n.strip() for n in found.group(1).split(",")]
    return [n for n in names if importlib.util.find_spec(n) is None]


def test_snippets_exist():
    assert SNIPPETS, "no docs/snippets/*.py found"


@pytest.mark.parametrize("path", SNIPPETS, ids=[p.stem for p in SNIPPETS])
def test_snippet_runs(path: Path, tmp_path: Path):
    missing = _missing(path)
    if missing:
        pytest.skip(f"needs {', '.join(missing)}")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])])
    env["MPLBACKEND"] = "Agg"
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,  # snippets may write files
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    elapsed = time.perf_counter() - t0
    assert done.returncode == 0, (
        f"{path.name} failed (exit {done.returncode}) after {elapsed:.1f} s\n"
        f"--- stdout ---\n{done.stdout}\n--- stderr ---\n{done.stderr}"
    )


@pytest.mark.parametrize("path", SNIPPETS, ids=[p.stem for p in SNIPPETS])
def test_snippet_is_used_by_a_page(path: Path):
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md"))
    assert f'--8<-- "{path.name}' in pages, f"no docs page includes {path.name}"
