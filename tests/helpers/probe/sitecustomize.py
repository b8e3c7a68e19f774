"""Put on PYTHONPATH by tests: records, in every Python process, the Prefect-related environment
at the moment `prefect` is first imported and Prefect's settings in effect at exit, as JSON in
$WERK_PROBE_DIR/<pid>.json. It observes a command from inside without changing Werk's code."""

import atexit
import json
import os
import sys

_OUT = os.environ.get("WERK_PROBE_DIR")
_KEYS = ("PREFECT_HOME", "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "WERK_HOME")
_record = {"argv0": sys.argv[0] if sys.argv else "", "env_at_prefect_import": None}


class _Watch:
    def find_spec(self, name, path=None, target=None):
        if name == "prefect" and _record["env_at_prefect_import"] is None:
            _record["env_at_prefect_import"] = {k: os.environ.get(k) for k in _KEYS}
        return None


def _dump():
    mod = sys.modules.get("prefect.settings")
    if mod is not None:
        s = mod.get_current_settings()
        _record["settings"] = {"home": str(s.home),
                               "startup_timeout": s.server.ephemeral.startup_timeout_seconds}
    _record["argv0"] = sys.argv[0] if sys.argv else _record["argv0"]
    with open(os.path.join(_OUT, f"{os.getpid()}.json"), "w") as fh:
        json.dump(_record, fh)


if _OUT:
    sys.meta_path.insert(0, _Watch())
    atexit.register(_dump)
