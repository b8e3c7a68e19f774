"""The process environment Werk relies on, prepared once, before Prefect, Ray or MLflow load.

Prefect reads its settings when it is first imported, MLflow reads some of its own at import and
Ray reads `RAY_*` when it starts: a variable set after those moments is silently ignored (a fresh
`WERK_HOME` once timed out starting Prefect's temporary server because Prefect's 20 s default
applied). So `prepare()` runs at the entry of every process that can run Werk work, before
anything imports those libraries: the `werk` CLI (a callback ahead of every command) and
`werk worker` (whose environment the flow runs it starts inherit). A flow run also calls it first
thing, for workers started with plain `prefect worker start` (there only the Ray and MLflow parts
can still take effect), and `ray_session` calls `prepare_ray()` right before it starts Ray.

Every value is a default: a variable the user has set is kept. Nothing here imports Prefect, Ray,
MLflow or torch.
"""

from __future__ import annotations

import os
import secrets
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, MutableMapping

from infra.storage import WERK_HOME_ENV, werk_home, write_private_file

# AF_UNIX socket paths hold at most 107 bytes (108 with the terminating NUL) on Linux.
UNIX_SOCKET_PATH_MAX = 107
# What Ray appends to its temporary folder for its longest socket, measured on Ray 2.60:
# "/ray/session_2026-12-02_03-46-12_123456_4194304/sockets/plasma_store" (the PID part is at most
# 7 digits on Linux); a few bytes spare for socket names a later Ray may add.
RAY_SOCKET_SUFFIX = len("/ray/session_2026-12-02_03-46-12_123456_4194304/sockets/plasma_store") + 8
# What Python's multiprocessing appends to TMPDIR for its forkserver's socket (Ray's dashboard
# starts one): "/pymp-XXXXXXXX/listener-XXXXXXXX", with the same spare.
MP_SOCKET_SUFFIX = len("/pymp-XXXXXXXX/listener-XXXXXXXX") + 8
# Prefect's first start on a new database took 23 s on a busy 2-core machine; its default is 20 s.
PREFECT_STARTUP_TIMEOUT_S = "120"


class EnvironmentProblem(RuntimeError):
    """The environment cannot work and no default of Werk's would: the message says what to set."""


@dataclass(frozen=True)
class TempDirs:
    python: str  # TMPDIR as this process tree uses it
    ray: str  # the folder Ray makes `ray/session_*` in
    notes: tuple[str, ...] = ()  # what Werk changed, and why (printed by the CLI on stderr)


@dataclass(frozen=True)
class Prepared:
    home: Path
    temp: TempDirs

    @property
    def notes(self) -> tuple[str, ...]:
        return self.temp.notes


def ray_temp_root(environ: Mapping[str, str] = os.environ) -> str:
    """The folder Ray uses for its sessions, by Ray's own rule: RAY_TMPDIR, then TMPDIR, then /tmp."""
    return environ.get("RAY_TMPDIR") or environ.get("TMPDIR") or "/tmp"


def socket_path_length(root: str, suffix: int = RAY_SOCKET_SUFFIX) -> int:
    """Length in bytes of the longest socket path made under `root` (must stay ≤ 107)."""
    return len(os.fsencode(os.path.abspath(root))) + suffix


def max_root_length(suffix: int) -> int:
    return UNIX_SOCKET_PATH_MAX - suffix


def _private_short_folder(variable: str, suffix: int) -> str:
    """A short per-user folder for temporary files, private to this user (mode 0700).

    A predictable name in a shared /tmp could have been made by someone else first: it is used
    only if it is a real directory this user owns and no one else can write to.
    """
    path = f"/tmp/werk-{os.getuid()}"
    hint = f"set {variable} to a folder you own of at most {max_root_length(suffix)} characters"
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise EnvironmentProblem(f"cannot create {path} for temporary files ({exc.strerror}); {hint}") from exc
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
        raise EnvironmentProblem(f"{path} exists but is not a private folder of this user; {hint}")
    return path


def prepare_temp(environ: MutableMapping[str, str] | None = None) -> TempDirs:
    """Temporary folders short enough for the Unix sockets made in them.

    HPC job scratch paths are often long. Python's multiprocessing (Ray's dashboard, data loaders)
    puts sockets in TMPDIR, a local Ray puts its sockets under RAY_TMPDIR (else TMPDIR): a TMPDIR
    too long for either is replaced, for Werk's processes, by /tmp/werk-<uid>, and a note says so.
    A RAY_TMPDIR that is too long is the user's explicit choice: refused, naming the variable.
    """
    environ = os.environ if environ is None else environ
    notes = []
    python = environ.get("TMPDIR") or "/tmp"
    if (length := socket_path_length(python, MP_SOCKET_SUFFIX)) > UNIX_SOCKET_PATH_MAX:
        short = _private_short_folder("TMPDIR", MP_SOCKET_SUFFIX)
        notes.append(f"temporary files go to {short}: TMPDIR={python} is too long for Unix socket paths "
                     f"({length} > {UNIX_SOCKET_PATH_MAX} bytes). Set TMPDIR to choose another folder.")
        environ["TMPDIR"] = python = short
        tempfile.tempdir = None  # Python caches the folder it found first
    ray = ray_temp_root(environ)
    if not environ.get("RAY_ADDRESS") and (length := socket_path_length(ray)) > UNIX_SOCKET_PATH_MAX:
        # (Joining a cluster, the driver uses the sockets its node's `ray start` made.)
        if environ.get("RAY_TMPDIR"):
            raise EnvironmentProblem(
                f"RAY_TMPDIR={ray} is too long for Ray's socket paths ({length} > {UNIX_SOCKET_PATH_MAX} bytes); "
                f"set RAY_TMPDIR to a folder of at most {max_root_length(RAY_SOCKET_SUFFIX)} characters, e.g. /tmp/$USER")
        short = _private_short_folder("RAY_TMPDIR", RAY_SOCKET_SUFFIX)
        notes.append(f"Ray's temporary files go to {short}: TMPDIR={ray} is too long for Ray's socket paths "
                     f"({length} > {UNIX_SOCKET_PATH_MAX} bytes). Set RAY_TMPDIR to choose another folder.")
        environ["RAY_TMPDIR"] = ray = short
    return TempDirs(python, ray, tuple(notes))


def prepare_ray(environ: MutableMapping[str, str] | None = None) -> TempDirs:
    """Ray's part of `prepare()`, also run by `ray_session` right before a local Ray starts:
    loopback only, a token kept in WERK_HOME, and temporary folders short enough for its sockets."""
    environ = os.environ if environ is None else environ
    if not environ.get("RAY_ADDRESS"):
        # Read by Ray when it starts: without it a local Ray binds every interface. Not when
        # joining a cluster: the driver must register with its node's cluster address.
        environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        # Ray turns token authentication on for a local Ray and writes a new token to ~/.ray unless
        # one is given: keep it on (other users of a shared machine can reach loopback ports), with
        # the token in WERK_HOME.
        if environ.get("RAY_AUTH_MODE", "token") == "token" and not (
                environ.get("RAY_AUTH_TOKEN") or environ.get("RAY_AUTH_TOKEN_PATH")):
            token = werk_home(environ) / "ray" / "auth_token"
            if not token.is_file():
                write_private_file(token, secrets.token_hex(32))
            environ["RAY_AUTH_TOKEN_PATH"] = str(token)
    return prepare_temp(environ)


def defaults(home: Path) -> dict[str, str]:
    """The variables Werk sets when the user has not, for a process whose data lives in `home`."""
    return {
        # Prefect's database, profiles and local results under WERK_HOME, never ~/.prefect.
        "PREFECT_HOME": str(home / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Prefect's client sends usage events too (and prints a notice about it on a first run);
        # DO_NOT_TRACK is the common switch it honours.
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": PREFECT_STARTUP_TIMEOUT_S,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        # MLflow 3 sends usage telemetry off the machine and keeps an id in ~/.config/mlflow:
        # neither belongs in a pipeline that handles personal data.
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # Matplotlib (the evaluation plots) would cache its fonts in ~/.cache and ~/.config.
        "MPLCONFIGDIR": str(home / "cache" / "matplotlib"),
    }


def prepare(environ: MutableMapping[str, str] | None = None) -> Prepared:
    """Set Werk's defaults in `environ` (this process's environment by default); idempotent.

    Raises EnvironmentProblem, naming the variable to set, when no default can make it work.
    """
    environ = os.environ if environ is None else environ
    home = werk_home(environ)
    environ[WERK_HOME_ENV] = str(home)  # absolute: Ray workers and servers do not share our directory
    for key, value in defaults(home).items():
        environ.setdefault(key, value)
    for folder in (environ["PREFECT_HOME"], environ["MPLCONFIGDIR"]):
        Path(folder).mkdir(parents=True, exist_ok=True)
    return Prepared(home=home, temp=prepare_ray(environ))
