"""Every command works the first time: the environment is prepared before Prefect, Ray or MLflow
load; temporary folders fit Unix socket paths; `werk doctor` names each problem; the team stack's
programs come with its documented install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from infra import environment
from infra.environment import (MP_SOCKET_SUFFIX, RAY_SOCKET_SUFFIX, UNIX_SOCKET_PATH_MAX, EnvironmentProblem,
                               prepare, socket_path_length)
from infra.services import free_port
from tests.helpers.user_shell import user_env

REPO = Path(__file__).resolve().parents[1]
WERK = str(Path(sys.executable).parent / "werk")
HEAVY = ("prefect", "ray", "mlflow", "lightning", "torch")


def _run(args: list[str], env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def test_the_cli_module_imports_no_heavy_library():
    code = "import sys, flows.cli; print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    done = _run([sys.executable, "-c", code, *HEAVY], env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_deploying_imports_no_mlflow():
    # `prefect deploy` imports the flow modules in the user's own shell, where Werk has prepared
    # nothing: importing MLflow there wrote ~/.config/mlflow (found by the stack test's bare HOME).
    code = "import sys, flows.pipeline; print('mlflow' in sys.modules)"
    done = _run([sys.executable, "-c", code], env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_prepare_sets_defaults_and_keeps_what_the_user_set(tmp_path):
    env = {"WERK_HOME": str(tmp_path / "w"), "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300", "TMPDIR": "/tmp"}
    prepared = prepare(env)
    assert env["PREFECT_HOME"] == str(tmp_path / "w" / "prefect")
    assert env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == "300"  # the user's value wins
    assert env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0"
    token = Path(env["RAY_AUTH_TOKEN_PATH"])  # Ray's token in WERK_HOME, private, not in ~/.ray
    assert token.parent == tmp_path / "w" / "ray" and oct(token.stat().st_mode & 0o777) == "0o600"
    assert prepared.notes == ()
    assert prepare(dict(env)).home == prepared.home  # idempotent


def test_joining_a_cluster_leaves_rays_loopback_switch_and_token_alone(tmp_path):
    env = {"WERK_HOME": str(tmp_path), "RAY_ADDRESS": "10.0.0.1:6379", "TMPDIR": "/tmp"}
    prepare(env)
    assert "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in env and "RAY_AUTH_TOKEN_PATH" not in env


def test_a_long_tmpdir_is_replaced_by_a_short_private_folder(tmp_path):
    long = tmp_path / ("x" * 80)
    env = {"WERK_HOME": str(tmp_path / "w"), "TMPDIR": str(long)}
    prepared = prepare(env)
    short = f"/tmp/werk-{os.getuid()}"
    assert env["TMPDIR"] == short and prepared.temp.ray == short == environment.ray_temp_root(env)
    assert socket_path_length(short, RAY_SOCKET_SUFFIX) <= UNIX_SOCKET_PATH_MAX
    assert any(short in n and str(long) in n for n in prepared.notes)
    assert oct(os.stat(short).st_mode & 0o777) == "0o700"


def test_a_tmpdir_too_long_for_ray_only_keeps_tmpdir(tmp_path):
    root = "/tmp/" + "y" * (UNIX_SOCKET_PATH_MAX - MP_SOCKET_SUFFIX - 10)
    assert socket_path_length(root, MP_SOCKET_SUFFIX) <= UNIX_SOCKET_PATH_MAX < socket_path_length(root)
    env = {"WERK_HOME": str(tmp_path), "TMPDIR": root}
    prepare(env)
    assert env["TMPDIR"] == root and env["RAY_TMPDIR"] == f"/tmp/werk-{os.getuid()}"


def test_a_long_ray_tmpdir_is_refused_naming_the_variable(tmp_path):
    env = {"WERK_HOME": str(tmp_path), "TMPDIR": "/tmp", "RAY_TMPDIR": str(tmp_path / ("z" * 60))}
    with pytest.raises(EnvironmentProblem, match="RAY_TMPDIR"):
        prepare(env)


def test_a_folder_someone_else_could_write_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(environment.os, "getuid", lambda: 987654)  # a name no one has used
    folder = Path("/tmp/werk-987654")
    folder.mkdir(mode=0o777, exist_ok=True)
    folder.chmod(0o777)
    try:
        with pytest.raises(EnvironmentProblem, match="not a private folder"):
            prepare({"WERK_HOME": str(tmp_path), "TMPDIR": str(tmp_path / ("x" * 90))})
    finally:
        folder.rmdir()


def test_a_long_ray_tmpdir_fails_the_cli_before_any_work(tmp_path):
    env = user_env(tmp_path / "home", tmp_path / "werk", RAY_TMPDIR=str(tmp_path / ("z" * 70)))
    done = _run([WERK, "ingest", "--recipe", "debug", "--json"], env)
    assert done.returncode == 1 and "RAY_TMPDIR" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "werk" / "store").exists()


# werk doctor ------------------------------------------------------------------------------------

def _doctor(env: dict[str, str]) -> tuple[int, dict, str]:
    done = _run([WERK, "doctor", "--json"], env, timeout=120)
    return done.returncode, json.loads(done.stdout), done.stderr


def test_doctor_passes_on_a_healthy_embedded_setup(tmp_path):
    code, report, _ = _doctor(user_env(tmp_path / "home", tmp_path / "werk"))
    assert code == 0 and report["ok"]
    by_name = {c["name"]: c for c in report["checks"]}
    assert {"python", "torch", "prefect", "ray", "lightning", "mlflow", "s3fs", "WERK_HOME", "Prefect API",
            "MLflow tracking", "Ray", "temp dirs", "storage root", "GPUs"} <= set(by_name)
    assert str(tmp_path / "werk" / "prefect") in by_name["Prefect API"]["value"]
    assert "120 s" in by_name["Prefect API"]["value"]  # Werk's start-up time-out is the one in effect
    assert not list((tmp_path / "home").iterdir())  # nothing written outside WERK_HOME


def test_doctor_names_an_unreachable_tracking_server(tmp_path):
    env = user_env(tmp_path / "home", tmp_path / "werk", MLFLOW_TRACKING_URI=f"http://127.0.0.1:{free_port()}")
    code, report, stderr = _doctor(env)
    assert code == 1 and not report["ok"]
    (bad,) = [c for c in report["checks"] if c["status"] == "fail"]
    assert bad["name"] == "MLflow tracking" and "MLFLOW_TRACKING_URI" in bad["detail"]


def test_doctor_names_an_unwritable_storage_root(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")  # a folder cannot be made inside a file, not even by root
    env = user_env(tmp_path / "home", tmp_path / "werk", WERK_STORAGE_ROOT=str(blocker / "store"))
    code, report, _ = _doctor(env)
    assert code == 1
    (bad,) = [c for c in report["checks"] if c["status"] == "fail"]
    assert bad["name"] == "storage root" and "not writable" in bad["detail"]


def test_doctor_names_missing_s3_credentials_and_prints_none(tmp_path):
    env = user_env(tmp_path / "home", tmp_path / "werk", WERK_STORAGE_ROOT="s3://werk/store",
                   AWS_ENDPOINT_URL=f"http://127.0.0.1:{free_port()}", AWS_CONFIG_FILE=str(tmp_path / "none"),
                   AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), AWS_EC2_METADATA_DISABLED="true")
    done = _run([WERK, "doctor"], env, timeout=120)
    assert done.returncode == 1
    assert "S3" in done.stderr and "no S3 credentials found" in done.stderr


# the team stack's install -----------------------------------------------------------------------

def _requirement_closure(name: str, extras: set[str]) -> set[str]:
    """Distributions a `pip install name[extras]` brings, from the installed metadata."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(name, frozenset(extras))]
    while todo:
        dist, ex = todo.pop()
        key = canonicalize_name(dist)
        if key in seen and not ex:
            continue
        seen.add(key)
        for line in metadata.requires(dist) or []:
            req = Requirement(line)
            if req.marker and not any(req.marker.evaluate({"extra": e}) for e in (ex or {""})):
                continue
            todo.append((req.name, frozenset(req.extras)))
    return seen


def _provider(program: str) -> str:
    from packaging.utils import canonicalize_name

    for dist in metadata.distributions():
        if any(Path(str(f)).name == program and "bin" in Path(str(f)).parts for f in dist.files or []):
            return canonicalize_name(dist.metadata["Name"])
    raise AssertionError(f"no installed distribution provides {program}")


def test_every_program_the_stack_starts_comes_with_the_documented_install():
    from infra import stack

    documented = _requirement_closure("werk", {"stack"})
    assert "pytest" not in documented  # the closure is the stack install's, not the dev one's
    for program in stack.PROGRAMS:
        assert _provider(program) in documented, program
    assert "make install-stack" in (REPO / "README.md").read_text()


def test_a_missing_program_is_a_one_line_error_naming_the_install(tmp_path):
    python = tmp_path / "bin" / "python"  # a Python whose folder holds none of the stack's programs
    python.parent.mkdir()
    code = ("import sys; sys.executable = sys.argv[1]\n"
            "from typer.testing import CliRunner\nfrom flows.cli import app\n"
            "r = CliRunner().invoke(app, ['stack', 'up'])\nprint(r.exit_code); print(r.output)")
    env = user_env(tmp_path / "home", tmp_path / "werk", PATH="/usr/bin:/bin")
    done = _run([sys.executable, "-c", code, str(python)], env)
    lines = done.stdout.strip().splitlines()
    assert lines[0] == "1", done.stdout + done.stderr
    assert "weed" in done.stdout and "werk[stack]" in done.stdout and "Traceback" not in done.stdout
    assert not (tmp_path / "werk" / "stack" / "state.json").exists()


# a user's first commands -------------------------------------------------------------------------

@pytest.mark.slow
def test_first_commands_in_a_fresh_shell_use_werks_settings_and_leave_home_alone(tmp_path):
    """`werk ingest`, `werk run` and `werk tokenize` on a fresh WERK_HOME, an empty HOME and a TMPDIR too long for
    Unix sockets (as on HPC job scratch): all succeed, Prefect's settings inside each are Werk's
    (seen from inside by a probe on PYTHONPATH), and nothing is written to HOME."""
    probe = tmp_path / "probe"
    probe.mkdir()
    long_tmp = tmp_path / ("scratch-" + "x" * 70)
    long_tmp.mkdir()
    werk_home = tmp_path / "werk"
    env = user_env(tmp_path / "home", werk_home, TMPDIR=str(long_tmp), WERK_PROBE_DIR=str(probe),
                   PYTHONPATH=str(REPO / "tests" / "helpers" / "probe"))
    ingest = _run([WERK, "ingest", "--source", str(REPO / "tests/assets/corpus/shakespeare"), "--json"], env, timeout=900)
    assert ingest.returncode == 0, ingest.stderr[-3000:]
    assert json.loads(ingest.stdout)["kept"] > 0
    run = _run([WERK, "run", "--recipe", "debug", "--set", "train.max_steps=10", "--json"], env, timeout=1500)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["model_version"]
    assert f"/tmp/werk-{os.getuid()}" in run.stderr  # where temporary files went instead, said once
    tokenize = _run([WERK, "tokenize", "--recipe", "debug", "--json"], env, timeout=900)  # reuses run's stages
    assert tokenize.returncode == 0, tokenize.stderr[-3000:]
    assert json.loads(tokenize.stdout)["cached"] == {"ingest": True, "tokenizer": True, "encode": True}

    records = [json.loads(p.read_text()) for p in probe.glob("*.json")]
    commands = [r for r in records if r["argv0"].endswith("/werk")]
    assert len(commands) == 3
    for r in commands:
        at_import = r["env_at_prefect_import"]
        assert at_import["PREFECT_HOME"] == str(werk_home / "prefect")
        assert at_import["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] == environment.PREFECT_STARTUP_TIMEOUT_S
        assert r["settings"] == {"home": str(werk_home / "prefect"),
                                 "startup_timeout": float(environment.PREFECT_STARTUP_TIMEOUT_S)}
    assert not list((tmp_path / "home").rglob("*"))


def test_seaweedfs_ports_and_their_grpc_twins_are_all_distinct():
    # SeaweedFS refuses a port equal to another server's gRPC twin (port + 10000); a chance
    # collision between the S3 port and the master's twin once failed `werk stack up`.
    from infra.services import _seaweedfs_ports

    for _ in range(50):
        ports = _seaweedfs_ports()
        every = {*ports, *(p + 10000 for p in ports)}
        assert len(every) == 8 and max(every) < 65536
