"""The tree passes the lint configuration in pyproject.toml (``[tool.ruff]``): pyflakes, pycodestyle, bugbear,
pyupgrade and numpy rules. ruff comes with the ``test`` extra."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_passes_on_the_tree():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", "."],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert "No module named ruff" not in res.stderr, "ruff is missing: pip install -e '.[test]'"
    assert res.returncode == 0, f"ruff check found problems:\n{res.stdout}{res.stderr}"
