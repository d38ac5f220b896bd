"""The `paygrid` console script run as an operator runs it: its own process, a given
environment, from the repository's root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the paygrid console script with exactly `env`."""
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "serve_app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
