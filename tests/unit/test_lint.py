"""pyflakes over the code base: no unused imports, undefined names or shadowed definitions."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_pyflakes_is_clean():
    proc = subprocess.run([sys.executable, "-m", "pyflakes", "src", "tests"], cwd=ROOT, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
