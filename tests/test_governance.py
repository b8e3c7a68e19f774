"""Opt-outs and erasure tombstones, applied at ingest: never stored, always counted."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tasks.governance import register
from tasks.governance.optout import OptOutError, load, parse
from tasks.ingest import stage
from tasks.ingest.config import IngestConfig, OptOutConfig, SourceConfig

SPEECH = ("The regional parliament debated the new water law for three hours on Thursday, and most speakers "
          "agreed that farmers and towns must share the burden of the dry summers.")
DOCS = [
    {"id": "w1", "url": "https://blog.example.org/post/1", "text": "A blog post about gardening and the first tomatoes."},
    {"id": "w2", "url": "https://news.example.com/a/2", "text": "A news item about a new bridge over the river."},
    {"id": "w3", "url": "https://other.net/x", "text": SPEECH},
    {"id": "w4", "url": "https://other.net/y", "text": "Short."},
    {"id": "w5", "url": "https://other.net/z", "text": SPEECH},  # an exact copy of w3
    {"id": "w6", "url": "https://keep.eu/ok", "text": "A text about trains, timetables and the price of tickets."},
]


def _corpus(d: Path) -> Path:
    d.mkdir(parents=True)
    with open(d / "web.jsonl", "w") as fh:
        for doc in DOCS:
            fh.write(json.dumps(doc) + "\n")
    return d


def _cfg(corpus: Path, lists: list[str] = ()) -> IngestConfig:
    src = SourceConfig(name="web", uri=str(corpus), license="CC-BY-4.0", id_field="id", metadata_fields=["url"])
    return IngestConfig(sources=[src], val_fraction=0.2, opt_out=OptOutConfig(lists=list(lists)),
                        length={"min_chars": 10})


def _quarantine(out) -> dict[str, dict]:
    return {r["location"].rsplit(":", 1)[-1]: r for r in pq.read_table(out.path("quarantine")).to_pylist()}


def test_opt_out_lists_parse_and_refuse_what_they_do_not_understand(tmp_path):
    found = parse("# a team's list\ndomain:Example.ORG\nurl:https://news.example.com/a/\nid:web/w6\n\n"
                  f"sha256:{'a' * 64}  # a hash\n")
    assert found == {"domain": {"example.org"}, "url": {"https://news.example.com/a/"}, "id": {"web/w6"},
                     "sha256": {"a" * 64}}
    with pytest.raises(OptOutError, match=r"list.txt:2: 'example.org' is not an opt-out entry"):
        parse("domain:a.org\nexample.org\n", "list.txt")
    with pytest.raises(OptOutError, match="not a sha256"):
        parse("sha256:abc\n")
    lists = tmp_path / "optout.txt"
    lists.write_text("domain:example.org\n")
    opt = load([str(lists)])
    assert opt.by_url("https://blog.example.org/post/1") == "domain:example.org"  # subdomains too
    assert opt.by_url("https://example.org.evil.com/") is None and opt.by_url("https://notexample.org/") is None
    with pytest.raises(OptOutError, match="not found"):
        load([str(tmp_path / "missing.txt")])


def test_opted_out_documents_are_rejected_counted_and_never_stored(tmp_path):
    corpus = _corpus(tmp_path / "c")
    lists = tmp_path / "optout.txt"
    sha_w6 = None
    plain, files = stage.plan(_cfg(corpus), str(tmp_path / "store"))
    stage.run_ingest(_cfg(corpus), plain, files)
    for row in pq.read_table(plain.path("manifest")).to_pylist():
        if row["doc_id"] == "web/w6":
            sha_w6 = row["sha256"]
    lists.write_text(f"domain:example.org\nurl:https://news.example.com/a/\nsha256:{sha_w6}\n")
    cfg = _cfg(corpus, [str(lists)])
    out, files = stage.plan(cfg, str(tmp_path / "store"))
    assert out.key != plain.key  # the lists are part of the address
    stats = stage.run_ingest(cfg, out, files).stats
    assert stats.rejected["opted_out"] == 3 and stats.docs_in == stats.kept + sum(stats.rejected.values())
    q = _quarantine(out)
    for doc, entry in (("w1", "domain:example.org"), ("w2", "url:https://news.example.com/a/"),
                       ("w6", f"sha256:{sha_w6}")):
        row = next(r for r in q.values() if r["doc_id"] == f"web/{doc}")
        assert row["reason"] == "opted_out" and row["detail"] == entry and row["text"] is None
    kept = {r["doc_id"] for r in pq.read_table(out.path("manifest")).to_pylist()}
    assert kept.isdisjoint({"web/w1", "web/w2", "web/w6"})
    texts = [t for split in ("train", "val") for u in stage.split_shards(out, split)
             for t in pq.read_table(u).column("text").to_pylist()]
    assert not any("gardening" in t or "bridge" in t or "trains" in t for t in texts)
    # A changed list is a changed address.
    lists.write_text("domain:example.org\n")
    assert stage.plan(cfg, str(tmp_path / "store"))[0].key != out.key


def test_tombstones_apply_at_ingest_to_the_document_its_copies_and_its_quarantined_text(tmp_path):
    corpus = _corpus(tmp_path / "c")
    root = str(tmp_path / "store")
    cfg = _cfg(corpus)
    before, files = stage.plan(cfg, root)
    stage.run_ingest(cfg, before, files)
    manifest = {r["doc_id"]: r for r in pq.read_table(before.path("manifest")).to_pylist()}
    q_before = _quarantine(before)
    short = next(r for r in q_before.values() if r["reason"] == "too_short")
    assert short["text"] == "Short." and "web/w5" not in manifest  # w5 lost to w3 as an exact copy
    w3 = manifest["web/w3"]
    stones = [register.Tombstone(request_id="", doc_id="web/w3", sha256=w3["sha256"], source="web", source_uri=cfg.sources[0].uri,
                                 location=w3["location"]),
              register.Tombstone(request_id="", source="web", source_uri=cfg.sources[0].uri, location=short["location"])]
    request = register.new_request("Art. 17 request 2026-17", register.Query(doc_ids=["web/w3"]), stones, by="dpo")
    register.append(root, request)

    after, files = stage.plan(cfg, root)
    assert after.key != before.key and after.address.inputs["tombstones"]
    stats = stage.run_ingest(cfg, after, files).stats
    assert stats.docs_in == stats.kept + sum(stats.rejected.values())
    # w3 and its exact copy w5 leave as erased; the short record keeps its reason but loses its text.
    assert stats.rejected["erased"] == 2 and "duplicate_exact" not in stats.rejected
    q = _quarantine(after)
    erased = sorted(r["doc_id"] for r in q.values() if r["reason"] == "erased")
    assert erased == ["web/w3", "web/w5"]
    assert all(r["text"] is None and r["detail"] == request.id for r in q.values() if r["reason"] == "erased")
    purged = next(r for r in q.values() if r["reason"] == "too_short")
    assert purged["text"] is None and request.id in purged["detail"]
    kept = {r["doc_id"] for r in pq.read_table(after.path("manifest")).to_pylist()}
    assert kept == set(manifest) - {"web/w3"}
    # The register keeps no text, and a reader with a fresh home sees it on the same root.
    stored = Path(root, "governance", "erasure", "requests").glob("*.json")
    assert not any(SPEECH[:40] in p.read_text() for p in stored)
    (again,) = register.requests(root)
    assert again == request and [a.action for a in register.audit_log(root)] == ["request"]
    with pytest.raises(FileExistsError):
        register.append(root, request)


def _digests(root: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "_SUCCESS.json" and "_prefect" not in p.parts}


def test_an_erasure_rebuild_rewrites_only_the_parts_that_held_the_text_and_equals_a_fresh_ingest(tmp_path):
    """Units and token shards without erased text are copied; the rebuilt outputs are, file for
    file, what a fresh ingest and encode with the same tombstones write."""
    import shutil

    from tasks.encode import stage as encode_stage
    from tasks.encode.config import EncodeConfig
    from tasks.governance.rebuild import rebuild_encode, rebuild_ingest
    from tasks.ingest.record import IngestRecord
    from tasks.tokenizer import train as tok_stage
    from tasks.tokenizer.config import TokenizerConfig

    corpus = tmp_path / "c"
    corpus.mkdir()
    more = [{"id": f"m{i}", "text": f"Document number {i} talks about the {topic} of the northern valley in spring."}
            for i, topic in enumerate(["rivers", "forests", "villages", "roads", "schools", "markets"])]
    for i, chunk in enumerate([DOCS[:2] + more[:2], DOCS[2:4] + more[2:4], DOCS[4:] + more[4:]]):
        (corpus / f"part-{i}.jsonl").write_text("".join(json.dumps(d) + "\n" for d in chunk))
    src = SourceConfig(name="web", uri=str(corpus), license="x", id_field="id", metadata_fields=["url"])
    cfg = IngestConfig(sources=[src], val_fraction=0.2, unit_bytes=1, partitions=3, length={"min_chars": 10})
    root = tmp_path / "one"
    old_ing, files = stage.plan(cfg, str(root))
    old = stage.run_ingest(cfg, old_ing, files)
    assert old.stats.units == 3
    tcfg, ecfg = TokenizerConfig(vocab_size=512), EncodeConfig(shard_tokens=1024)
    tok = tok_stage.plan(tcfg, str(root), old.base_key)
    tok_stage.run_tokenizer(tcfg, tok, old.shards.train)
    old_enc = encode_stage.run_encode(ecfg, encode_stage.plan(ecfg, str(root), old.key, tok.key), old.shards.model_dump(),
                                      tok.path("tokenizer.json"))
    m1 = next(r for r in pq.read_table(old.outputs.manifest).to_pylist() if r["doc_id"] == "web/m1")
    stone = register.Tombstone(request_id="", doc_id=m1["doc_id"], sha256=m1["sha256"], source="web", source_uri=src.uri,
                               location=m1["location"])
    register.append(str(root), register.new_request("test", register.Query(doc_ids=["web/m1"]), [stone]))

    new, ing_change, changed = rebuild_ingest(old, str(root))
    assert new.key == stage.plan(cfg, str(root))[0].key != old.key  # what a rerun of the recipe plans
    assert changed == {0} and new.rebuilt_from == old.key
    assert new.stats.kept == old.stats.kept - 1 and new.stats.rejected["erased"] == 1
    rewritten = {c.name for c in ing_change.changed}
    assert rewritten and all(name.endswith("part-00000.parquet") for name in rewritten)
    assert all(c.before == c.after for c in ing_change.files if not c.name.endswith("part-00000.parquet"))
    new_enc, enc_change = rebuild_encode(old_enc, old, new, changed, str(root))
    assert new_enc.key == encode_stage.plan(ecfg, str(root), new.key, tok.key).key
    assert {c.name for c in enc_change.changed} and all(c.name.startswith(("train-00000-", "val-00000-"))
                                                         for c in enc_change.changed)
    assert any(c.before == c.after for c in enc_change.files)  # unchanged parts' shards, copied

    # A fresh ingest and encode with the same tombstones, on another root.
    fresh = tmp_path / "two"
    shutil.copytree(root / "governance", fresh / "governance")
    shutil.copytree(root / "tokenizer", fresh / "tokenizer")  # the same vocabulary (its key names the base)
    out, files = stage.plan(cfg, str(fresh))
    assert out.key == new.key
    again = stage.run_ingest(cfg, out, files)
    assert again.stats == new.stats and again.manifest_sha256 == new.manifest_sha256
    assert again.part_sha256 == new.part_sha256 and len(new.part_sha256) >= 3 * 2
    assert _digests(fresh / "ingest" / out.key) == _digests(root / "ingest" / new.key)
    enc = encode_stage.run_encode(ecfg, encode_stage.plan(ecfg, str(fresh), out.key, tok.key), again.shards.model_dump(),
                                  str(fresh / "tokenizer" / tok.key / "tokenizer.json"))
    assert enc.key == new_enc.key and enc.summary.model_dump()["splits"]["train"]["sha256"] == \
        new_enc.summary.model_dump()["splits"]["train"]["sha256"]
    assert _digests(fresh / "encode" / enc.key) == _digests(root / "encode" / new_enc.key)
    assert IngestRecord.read(new.uri).rebuilt_from == old.key


def test_erasing_the_same_documents_again_finishes_and_undoes_nothing(tmp_path):
    """A rerun of an erasure (after an interruption) leaves the rebuilt outputs alone, finishes a
    half-done removal, and no erasure stays pending for the rebuilt data."""
    from tasks.governance.erase import erase, find_docs, find_matches
    from tasks.governance.flags import pending_for
    from tasks.ingest.record import IngestRecord

    corpus = _corpus(tmp_path / "c")
    root = str(tmp_path / "store")
    cfg = _cfg(corpus)
    out, files = stage.plan(cfg, root)
    old = stage.run_ingest(cfg, out, files)
    first = erase(root, find_docs(root, ["web/w2"]), "first", register.Query(doc_ids=["web/w2"]))
    (rebuilt,) = first.rebuilt
    new = IngestRecord.read(str(Path(root, "ingest", rebuilt.after)))
    assert first.removed == [old.uri] and pending_for(root, new) == []
    # Interrupted while deleting: the old output's erasure record and a leftover file.
    Path(old.uri, "train").mkdir()
    Path(old.uri, "train", "part-00000.parquet").write_bytes(b"left over")
    again = erase(root, find_docs(root, ["web/w2"]), "again", register.Query(doc_ids=["web/w2"]))
    assert [f.where for f in again.found] == ["quarantine"]  # only its erased record is left
    assert again.rebuilt == [] and again.removed == [old.uri]  # the leftover, not the rebuilt output
    assert [p.name for p in Path(old.uri).iterdir()] == ["_ERASED.json"]
    assert IngestRecord.read(new.uri) == new and pending_for(root, new) == []
    assert len(register.requests(root)) == 2
    # A text search finds nothing erased: erased records keep no text.
    assert find_matches(root, "bridge over the river") == []


def test_tombstones_know_a_document_by_id_and_hash_and_a_source_however_it_is_written(tmp_path):
    stone = register.Tombstone(request_id="r", doc_id="web/1", sha256="ab", source="web", source_uri=f"{tmp_path}/web/",
                               location="web.jsonl:3")
    assert stone.keys() == ["web/1", "ab"]  # not its place: another record may sit there later
    record_only = stone.model_copy(update={"doc_id": None, "sha256": None})
    assert record_only.keys() == ["web\tweb.jsonl:3"]
    root = str(tmp_path / "store")
    register.append(root, register.new_request("r", register.Query(), [stone]))
    for written in (f"{tmp_path}/web", f"{tmp_path}/web/", f"{tmp_path}/x/../web"):
        assert register.applicable(root, [written]).requests.keys() == {"web/1", "ab"}
    assert register.source_key("s3://b/p/") == register.source_key("s3://b/p") == "s3://b/p"
    assert register.applicable(root, [f"{tmp_path}/other"]).digest is None


def test_erasing_a_tiny_corpus_s_whole_validation_split_leaves_a_fresh_ingest_to_hold_one_out(tmp_path):
    """A rebuild cannot hold another document out without moving it from a train part, so it
    would differ from a fresh ingest: the output goes and the next run ingests again."""
    from tasks.governance.erase import erase, find_docs
    from tasks.lineage.published import published
    from tasks.ingest.record import IngestRecord

    corpus = _corpus(tmp_path / "c")
    root = str(tmp_path / "store")
    cfg = _cfg(corpus)
    out, files = stage.plan(cfg, root)
    old = stage.run_ingest(cfg, out, files)
    held_out = [r["doc_id"] for r in pq.read_table(old.outputs.manifest).to_pylist() if r["split"] == "val"]
    assert old.stats.kept >= 3 and len(held_out) == 1
    result = erase(root, find_docs(root, held_out), "Art. 17", register.Query(doc_ids=held_out))
    assert result.rebuilt == [] and result.removed == [old.uri]
    assert published(root, IngestRecord) == [] and not Path(root, "ingest", result.removed[0].rsplit("/", 1)[-1],
                                                                "manifest").exists()
    again_out, files = stage.plan(cfg, root)
    again = stage.run_ingest(cfg, again_out, files)
    assert again.stats.splits.val == 1 and again.stats.kept == old.stats.kept - 1
    assert again.stats.rejected["erased"] == 1
    assert held_out[0] not in {r["doc_id"] for r in pq.read_table(again.outputs.manifest).to_pylist()}
