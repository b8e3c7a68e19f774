"""`werk doctor`: what Werk will use on this machine, and whether it works.

Each check is a small function returning typed `Check` records: the value Werk will use and, where
something is wrong, what to do. A `fail` is a problem a run would hit (the command exits non-zero);
a `warn` is worth knowing but does not stop a run. Credentials are looked for, never printed: a
check reports where they come from (e.g. "env", "shared-credentials-file"), not what they are.
"""

from __future__ import annotations

import os
import shutil
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Literal

from infra.environment import UNIX_SOCKET_PATH_MAX, Prepared, socket_path_length
from infra.storage import filesystem, is_remote, s3_endpoint

Status = Literal["ok", "warn", "fail"]
PACKAGES = ("werk", "torch", "prefect", "ray", "lightning", "mlflow", "s3fs")
LOW_DISK_BYTES = 10 << 30  # below this, a demo-sized run may still fit, a real corpus will not
HTTP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    value: str  # what Werk will use
    detail: str = ""  # why it is not ok, and what to do

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def versions() -> list[Check]:
    import platform

    checks = [Check("python", "ok", platform.python_version())]
    for name in PACKAGES:
        try:
            checks.append(Check(name, "ok", metadata.version(name)))
        except metadata.PackageNotFoundError:
            checks.append(Check(name, "fail", "not installed", "pip install werk  (from a clone: make install)"))
    return checks


def _writable(folder: Path) -> str | None:
    """None if a file can be created and removed in `folder` (made if missing), else the reason."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".werk-doctor-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
        return None
    except OSError as exc:
        return f"{exc.strerror or exc} ({exc.filename or folder})"


def werk_home(home: Path) -> Check:
    problem = _writable(home)
    if problem:
        return Check("WERK_HOME", "fail", str(home), f"not writable: {problem}; set WERK_HOME to a folder you can write")
    free = shutil.disk_usage(home).free
    value = f"{home} ({free / 2**30:.1f} GiB free)"
    if free < LOW_DISK_BYTES:
        return Check("WERK_HOME", "warn", value, "less than 10 GiB free: a real corpus and its checkpoints need more")
    return Check("WERK_HOME", "ok", value)


def _http_ok(url: str, headers: dict[str, str] | None = None) -> str | None:
    """None when `url` answers below 500 (401/403 still prove a live server), else the reason."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=HTTP_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        return None if exc.code < 500 else f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def prefect() -> Check:
    """The Prefect API this process's settings point at (read the way every Werk command reads them)."""
    import base64

    from prefect.settings import get_current_settings

    settings = get_current_settings()
    url = settings.api.url
    if url:
        auth = settings.api.auth_string
        headers = {"Authorization": "Basic " + base64.b64encode(auth.get_secret_value().encode()).decode()} if auth else {}
        problem = _http_ok(url.rstrip("/") + "/health", headers)
        if problem:
            return Check("Prefect API", "fail", f"server {url}", f"unreachable: {problem}; start it or fix PREFECT_API_URL")
        return Check("Prefect API", "ok", f"server {url}")
    home = Path(settings.home)
    value = (f"embedded (a temporary server per command; database in {home}, "
             f"start-up time-out {settings.server.ephemeral.startup_timeout_seconds:.0f} s)")
    problem = _writable(home)
    if problem:
        return Check("Prefect API", "fail", value, f"PREFECT_HOME not writable: {problem}")
    return Check("Prefect API", "ok", value)


def mlflow(uri: str) -> Check:
    if uri.startswith(("http://", "https://")):
        problem = _http_ok(uri.rstrip("/") + "/health")
        if problem:
            return Check("MLflow tracking", "fail", uri, f"unreachable: {problem}; start the server or fix MLFLOW_TRACKING_URI")
        return Check("MLflow tracking", "ok", uri)
    if uri.startswith("sqlite:///"):
        problem = _writable(Path(uri.removeprefix("sqlite:///")).parent)
        if problem:
            return Check("MLflow tracking", "fail", uri, f"not writable: {problem}")
        return Check("MLflow tracking", "ok", uri)
    return Check("MLflow tracking", "warn", uri, "not checked: Werk checks http(s) servers and SQLite files")


def _tcp_ok(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=HTTP_TIMEOUT_S):
            return None
    except OSError as exc:
        return exc.strerror or str(exc)


def ray(prepared: Prepared) -> list[Check]:
    address = os.environ.get("RAY_ADDRESS")
    mode = os.environ.get("RAY_AUTH_MODE", "token")
    temp = prepared.temp
    chosen = bool(temp.notes)
    temp_value = (f"TMPDIR {temp.python}, Ray {temp.ray} (socket paths up to "
                  f"{socket_path_length(temp.ray)} of {UNIX_SOCKET_PATH_MAX} bytes)")
    temp_check = Check("temp dirs", "warn" if chosen else "ok", temp_value, " ".join(temp.notes))
    if not address:
        return [Check("Ray", "ok", f"local, started per run on 127.0.0.1 ({os.cpu_count()} CPUs), auth {mode}"), temp_check]
    hostport = address.removeprefix("ray://").rsplit(":", 1)
    value = f"cluster at {address}, auth {mode}"
    if len(hostport) != 2 or not hostport[1].isdigit():
        return [Check("Ray", "fail", value, "RAY_ADDRESS must be HOST:PORT"), temp_check]
    problem = _tcp_ok(hostport[0], int(hostport[1]))
    if problem:
        return [Check("Ray", "fail", value, f"unreachable: {problem}; start the cluster or fix RAY_ADDRESS"), temp_check]
    if mode == "token":
        token_file = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
        if not (os.environ.get("RAY_AUTH_TOKEN") or Path(token_file).is_file()):
            return [Check("Ray", "fail", value, "token authentication needs RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH "
                                                "(or RAY_AUTH_MODE=disabled on a trusted network)"), temp_check]
    return [Check("Ray", "ok", value), temp_check]


def _s3_credentials_source() -> str | None:
    """Where botocore finds credentials ("env", "shared-credentials-file", "iam-role", …), or None."""
    import botocore.session

    creds = botocore.session.get_session().get_credentials()
    return getattr(creds, "method", "found") if creds is not None else None


def storage(root: str) -> list[Check]:
    if not is_remote(root):
        problem = _writable(Path(root))
        if problem:
            return [Check("storage root", "fail", root, f"not writable: {problem}; fix the recipe's storage_root or WERK_STORAGE_ROOT")]
        return [Check("storage root", "ok", root)]
    checks = []
    if root.startswith("s3://"):
        endpoint = s3_endpoint() or "AWS (no AWS_ENDPOINT_URL)"
        source = _s3_credentials_source()
        if source is None:
            return [Check("S3", "fail", f"endpoint {endpoint}", "no S3 credentials found: set AWS_ACCESS_KEY_ID and "
                                                               "AWS_SECRET_ACCESS_KEY, or AWS_SHARED_CREDENTIALS_FILE / AWS_PROFILE"),
                    Check("storage root", "fail", root, "not checked without S3 credentials")]
        checks.append(Check("S3", "ok", f"endpoint {endpoint}, credentials from {source}"))
    probe = root.rstrip("/") + f"/.werk-doctor-{uuid.uuid4().hex}"
    try:
        fs, path = filesystem(probe)
        fs.pipe_file(path, b"")
        fs.rm_file(path)
    except Exception as exc:  # noqa: BLE001 - any storage error is the finding; its message names no secret
        return [*checks, Check("storage root", "fail", root, f"not writable: {type(exc).__name__}: {exc}")]
    return [*checks, Check("storage root", "ok", root)]


def gpus() -> Check:
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver, no library: no NVIDIA GPU to use
        return Check("GPUs", "ok", "none (no NVIDIA driver): training runs on CPU")
    try:
        names = [pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i)) for i in range(pynvml.nvmlDeviceGetCount())]
    finally:
        pynvml.nvmlShutdown()
    import torch

    value = f"{len(names)}: {', '.join(dict.fromkeys(names))}" if names else "none"
    if names and not torch.cuda.is_available():
        return Check("GPUs", "warn", value, f"torch {torch.__version__} cannot use them (a CPU build?)")
    return Check("GPUs", "ok", value)


def run_checks(prepared: Prepared, root: str, tracking_uri: str) -> list[Check]:
    """Every check, in the order a run meets them; a crashing check is reported, not raised."""
    steps: list[tuple[str, Callable[[], Check | list[Check]]]] = [
        ("versions", versions),
        ("WERK_HOME", lambda: werk_home(prepared.home)),
        ("Prefect API", prefect),
        ("MLflow tracking", lambda: mlflow(tracking_uri)),
        ("Ray", lambda: ray(prepared)),
        ("storage root", lambda: storage(root)),
        ("GPUs", gpus),
    ]
    checks: list[Check] = []
    for name, step in steps:
        try:
            found = step()
        except Exception as exc:  # noqa: BLE001 - a doctor reports what it cannot check
            found = Check(name, "fail", "?", f"check failed: {type(exc).__name__}: {exc}")
        checks.extend(found if isinstance(found, list) else [found])
    return checks
