"""The manifest a finished job writes last into its output directory, and the file names it
lists. Apart from the writer (`engine.jobs.output`), so readers (the reports API, in every API
replica) do not import pyarrow and matplotlib for it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
CHART = "daily_volume.png"


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write `manifest` into `out`: call it after every file it names is complete."""
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))


def read_manifest(out: Path) -> dict[str, Any] | None:
    """The manifest of a finished job in `out`, or None while (or if) it is not there."""
    try:
        return json.loads((out / MANIFEST).read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None
