"""The home: the folder of the embedded backend (database, internal storage, reports)."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def default_home() -> Path:
    """Where the embedded backend lives: ``$TIERCEL_HOME``; else the ``.tiercel`` folder of the project
    you stand in (this folder or the nearest parent that has one, as `tiercel init` makes); else the
    user's data folder. So a command finds the same executions wherever in a project it runs."""
    if os.environ.get("TIERCEL_HOME"):
        return Path(os.environ["TIERCEL_HOME"]).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".tiercel").is_dir():
            return folder / ".tiercel"
    if sys.platform.startswith("linux"):  # what platformdirs answers there, without importing it (~15 ms)
        data = os.environ.get("XDG_DATA_HOME", "").strip()
        return Path(data if data else Path.home() / ".local" / "share") / "tiercel"
    import platformdirs

    return Path(platformdirs.user_data_dir("tiercel", appauthor=False))
