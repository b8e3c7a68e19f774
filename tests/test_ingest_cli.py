"""`werk ingest` runs the ingest stage alone and prints one JSON summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_werk_ingest_json_with_ad_hoc_source(werk_home, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "a.jsonl").write_text("\n".join(json.dumps({"text": t}) for t in [
        "Please write to anna@example.eu about the meeting.", "Please write to anna@example.eu about the meeting.",
        "   ", "Call +49 30 1234567 for details."]) + "\n")
    werk = str(Path(sys.executable).parent / "werk")
    done = subprocess.run([werk, "ingest", "--recipe", "debug", "--source", str(d), "--set", "ingest.quality.enabled=false",
                           "--set", "ingest.language.enabled=false", "--json"],
                          env={**os.environ, "WERK_HOME": str(werk_home)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["docs_in"] == 4 and out["kept"] == 2
    assert out["rejected"] == {"duplicate_exact": 1, "empty": 1}
    assert out["redactions"] == {"email": 1, "phone": 1}
    assert set(out["outputs"]) >= {"manifest", "quarantine", "documents", "stats"}
    assert Path(out["outputs"]["manifest"]).is_dir() and list(Path(out["outputs"]["manifest"]).glob("part-*.parquet"))
    assert out["bytes_out"] < out["bytes_in"]


def test_werk_tokenize_json(werk_home):
    werk = str(Path(sys.executable).parent / "werk")
    done = subprocess.run([werk, "tokenize", "--recipe", "debug", "--json"],
                          env={**os.environ, "WERK_HOME": str(werk_home)}, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["vocab_size"] == 1024 and out["dtype"] == "uint16"
    assert Path(out["tokenizer"]).is_file() and list(Path(out["shards"]).glob("train-*.bin"))
    assert out["fertility"] and set(out["fertility"]) <= {"en", "de", "es", "nl"}  # the kept languages
    assert out["splits"]["train"]["tokens"] > 0
    assert out["cached"] == {"ingest": False, "tokenizer": False, "encode": False}
