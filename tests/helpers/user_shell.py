"""The environment of a user's fresh shell: no Werk, Prefect, MLflow or Ray variables, an empty
HOME. Tests of what a user meets start commands with it, not with the test process's environment
(whose fixtures would hide what a real shell lacks)."""

from __future__ import annotations

import os
from pathlib import Path


def user_env(home: Path, werk_home: Path, **extra: str) -> dict[str, str]:
    home.mkdir(parents=True, exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "WERK_HOME": str(werk_home),
           "LANG": os.environ.get("LANG", "C.UTF-8"), "COLUMNS": "200"}
    env.update(extra)
    return env
