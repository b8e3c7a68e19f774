"""GDPR erasure end to end, from the user's shell: run, trace a document, erase it, run again.

The debug recipe on a copy of the test corpus with a planted sentence in three documents of two
sources. Slow (two pipeline runs, about four minutes)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
WERK = str(Path(sys.executable).parent / "werk")
PLANTED = "Erika Mustermann of Musterstadt"


def _werk(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([WERK, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _json(env: dict[str, str], *args: str, timeout: float = 600) -> dict:
    done = _werk(env, *args, "--json", timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A corpus with the planted sentence, a recipe reading it, and a first run."""
    base = tmp_path_factory.mktemp("governance")
    corpus = base / "corpus"
    shutil.copytree(REPO / "tests" / "assets" / "corpus", corpus)
    (corpus / "shakespeare" / "planted_gut.txt").write_text(
        f"A letter found among the papers of the company says that {PLANTED} kept the accounts of the theatre for "
        "many years, and that every actor owed her money by the end of the season.\n")
    (corpus / "parlspeech" / "planted.jsonl").write_text("".join(json.dumps(d) + "\n" for d in [
        {"id": "planted-1", "text": f"The member for the northern district asked the minister whether {PLANTED} had "
                                    "been consulted before the new road was planned across her farm and the fields."},
        {"id": "planted-2", "text": f"In her written answer the secretary of state confirmed that a complaint from "
                                    f"{PLANTED} had reached the ministry in March, with a reply promised within weeks."},
    ]))
    recipe = (REPO / "recipes" / "debug.yaml").read_text().replace("${WERK_REPO}/tests/assets/corpus", str(corpus))
    (base / "gov.yaml").write_text(recipe.replace("name: debug", "name: gov") + "\n")
    env = {**os.environ, "WERK_HOME": str(base / "home")}
    env.pop("PREFECT_API_URL", None)
    env.pop("WERK_STORAGE_ROOT", None)
    run = ["run", "--recipe", str(base / "gov.yaml"), "--set", "ingest.unit_bytes=40000"]
    first = _json(env, *run, timeout=900)
    return {"base": base, "env": env, "run": run, "first": first, "root": base / "home" / "store"}


def _manifest(uri: str) -> list[dict]:
    return pq.read_table(uri).to_pylist()


def test_erase_a_document_rebuild_only_what_held_it_flag_the_model_and_retrain(world):
    env, first, root = world["env"], world["first"], world["root"]
    assert first["model_version"] == "1" and first["promoted"]
    rows = _manifest(first["artifacts"]["manifest"])
    assert first["ingest"]["units"] > 3  # several units: most are untouched by the erasure
    doc = next(r for r in rows if r["source"] == "parlspeech" and r["split"] == "train" and "planted" not in r["doc_id"])

    # Lineage names its shard, token range and the model version that trained on it.
    (ing,) = _json(env, "lineage", "doc", doc["doc_id"])["found_in"]
    (enc,) = ing["encodings"]
    (trained,) = enc["trainings"]
    assert ing["shard"].endswith(doc["shard"]) and enc["length"] > 0
    assert [(v["name"], v["version"]) for v in trained["model_versions"]] == [("werk-gov", "1")]

    erased = _json(env, "erase", "--doc", doc["doc_id"], "--reason", "Art. 17 request #2026-041", "--local")
    request = erased["request_id"]
    assert [f["doc_id"] for f in erased["found"]] == [doc["doc_id"]]
    ingest_change, encode_change = erased["rebuilt"]
    assert ingest_change["before"] == first["stages"]["ingest"]["key"]
    unit = doc["shard"].rsplit("/", 1)[-1]  # part-NNNNN.parquet: the only unit that held it
    changed = {f["name"] for f in ingest_change["files"] if f["before"] != f["after"]}
    assert changed and {name.rsplit("/", 1)[-1] for name in changed} == {unit}
    kept_same = [f for f in ingest_change["files"] if f["before"] == f["after"] and f["before"]]
    assert len(kept_same) > len(changed)  # every other part copied, hashes equal
    enc_changed = [f for f in encode_change["files"] if f["before"] != f["after"]]
    assert enc_changed and len(enc_changed) < len(encode_change["files"])
    # The old outputs are gone, their records kept; the version that saw the document is flagged.
    old_ingest = root / "ingest" / first["stages"]["ingest"]["key"]
    assert [p.name for p in old_ingest.iterdir()] == ["_ERASED.json"]
    (flagged,) = erased["flagged"]
    assert (flagged["name"], flagged["version"], flagged["lost_champion"]) == ("werk-gov", "1", True)
    status = _json(env, "erase", "--status")
    assert [(r["id"], r["open"]) for r in status["requests"]] == [(request, True)]
    assert [(v["name"], v["version"]) for v in status["to_retrain"]] == [("werk-gov", "1")]

    # The rerun reuses the rebuilt ingest and encode outputs, retrains, and registers a clean version.
    second = _json(env, *world["run"], timeout=900)
    assert second["stages"]["ingest"]["cached"] and second["stages"]["encode"]["cached"]
    assert second["stages"]["ingest"]["key"] == ingest_change["after"]
    assert not second["stages"]["pretrain"]["cached"]
    assert (second["model_version"], second["promoted"]) == ("2", True)
    assert second["ingest"]["rejected"]["erased"] == 1  # the source still holds it: rejected as erased
    assert doc["doc_id"] not in {r["doc_id"] for r in _manifest(second["artifacts"]["manifest"])}
    quarantined = [r for r in _manifest(second["artifacts"]["quarantine"]) if r["doc_id"] == doc["doc_id"]]
    assert [(r["reason"], r["text"], r["detail"]) for r in quarantined] == [("erased", None, request)]
    assert _json(env, "erase", "--status")["to_retrain"] == []

    old, new = (_json(env, "lineage", "model", f"models:/werk-gov/{v}") for v in ("1", "2"))
    assert old["tags"]["gdpr.erasure_pending"] == request and "champion" not in old["aliases"]
    assert old["ingest"]["erased_by"] == request and old["ingest"]["rebuilt_as"] == new["ingest"]["key"]
    assert "gdpr.erasure_pending" not in new["tags"] and "champion" in new["aliases"]
    assert new["ingest"]["key"] == ingest_change["after"] and new["tokenizer_sha256"] == old["tokenizer_sha256"]
    gone = _werk(env, "lineage", "doc", doc["doc_id"])
    assert gone.returncode == 1 and "no kept document" in gone.stderr
    # Another document, in a unit the erasure copied: both versions trained on it, the first on the
    # encode output the erasure replaced, at the same tokens (so at a known step).
    other = next(r for r in rows if r["split"] == "train" and r["shard"] != doc["shard"])
    (ing,) = _json(env, "lineage", "doc", other["doc_id"])["found_in"]
    (enc,) = ing["encodings"]
    by_version = {v["version"]: t for t in enc["trainings"] for v in t["model_versions"]}
    assert set(by_version) == {"1", "2"}
    assert by_version["1"]["via_erased_encode"] == encode_change["before"] and not by_version["1"]["shard_rewritten"]
    assert by_version["2"]["via_erased_encode"] is None


def test_match_erases_a_planted_sentence_across_sources_and_the_register_outlives_the_home(world):
    env = {**world["env"], "WERK_HOME": str(world["base"] / "another-home"), "WERK_STORAGE_ROOT": str(world["root"])}
    erased = _json(env, "erase", "--match", PLANTED, "--reason", "Art. 17 request #2026-042")
    found = {(f["source"], f["where"]) for f in erased["found"]}
    assert len(erased["found"]) == 3 and found == {("shakespeare", "kept"), ("parlspeech", "kept")}
    # Searched and rebuilt as Ray tasks (the default): the ingest output and its token shards again.
    assert {r["stage"] for r in erased["rebuilt"]} == {"ingest", "encode"}
    stored = list((world["root"] / "governance" / "erasure" / "requests").glob("*.json"))
    assert stored and not any(PLANTED in p.read_text() for p in stored)  # the pattern is kept as a hash only
    # A third, fresh home on the same storage root sees both requests.
    fresh = {**env, "WERK_HOME": str(world["base"] / "third-home")}
    assert len(_json(fresh, "erase", "--status")["requests"]) == 2
    for f in erased["found"]:
        assert _werk(fresh, "lineage", "doc", f["doc_id"]).returncode == 1
    again = _werk(fresh, "erase", "--match", PLANTED, "--reason", "again", "--local")
    assert again.returncode == 1 and "nothing was erased" in again.stderr
