"""The corpus-wide ingest steps run as partitioned tasks over files: groups that span units and
partitions keep their first member, the partition count changes nothing but the index layout, a
document is found in two reads, and a killed ingest resumes from the steps it finished."""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tasks.ingest import stage
from tasks.ingest.config import DedupConfig, IngestConfig, SourceConfig
from tasks.ingest.lookup import locate

HELPER = Path(__file__).parent / "helpers" / "ingest_killed.py"
FILES = 12


def _text(rng: random.Random, words: int = 60) -> list[str]:
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(words)]


def _edit(words: list[str], at: list[int]) -> list[str]:
    return [w + "x" if i in at else w for i, w in enumerate(words)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """12 files (one unit each) of unique documents, with duplicate groups spread across them:
    an exact copy, an id reused with new text, a near-duplicate chain X ~ Y ~ Z where Z is
    not near X (estimated similarities 0.82, 0.79 and 0.64 against the threshold 0.7), and a
    near pair W ~ V whose first member W reuses an id (so V, the only one left, is kept)."""
    rng = random.Random(7)
    files: list[list[tuple[str, str]]] = [[(f"u{f}-{i}", " ".join(_text(rng))) for i in range(3)] for f in range(FILES)]
    x = _text(rng)
    files[1].append(("x", " ".join(x)))
    files[6].append(("y", " ".join(_edit(x, [20, 22]))))  # Jaccard of shingles to x: 0.78
    files[10].append(("z", " ".join(_edit(x, [20, 22, 40, 42]))))  # to y: 0.78, to x: 0.60
    files[9].append(("copy", files[2][1][1]))
    files[4].append(("u0-0", "a different text under an id the first file already used"))
    w = _text(rng)
    files[3].append(("u0-1", " ".join(w)))  # reuses an id: a duplicate_id loser
    files[8].append(("v", " ".join(_edit(w, [20, 22]))))  # near W only
    d = tmp_path_factory.mktemp("scale") / "corpus"
    d.mkdir()
    for f, docs in enumerate(files):
        (d / f"part-{f:02d}.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in docs))
    return d


def _cfg(corpus: Path, partitions: int) -> IngestConfig:
    return IngestConfig(sources=[SourceConfig(name="s", uri=str(corpus), license="x", id_field="id")],
                        dedup=DedupConfig(near=True, threshold=0.7, num_perm=256), unit_bytes=1, val_fraction=0.2,
                        partitions=partitions)


def _digest(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "_SUCCESS.json" and not str(p.relative_to(root)).startswith(skip)}


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory) -> dict[int, tuple[str, dict]]:
    root = tmp_path_factory.mktemp("stores")
    found = {}
    for partitions in (1, 5):
        cfg = _cfg(corpus, partitions)
        out, files = stage.plan(cfg, str(root / f"p{partitions}"))
        found[partitions] = out.uri, stage.run_ingest(cfg, out, files).stats.model_dump()
    return found


def test_groups_across_units_and_partitions_keep_their_first_member(runs):
    uri, stats = runs[5]
    assert stats["units"] == FILES and stats["docs_in"] == 3 * FILES + 7
    assert stats["rejected"] == {"duplicate_exact": 1, "duplicate_id": 2, "duplicate_near": 2}
    assert stats["docs_in"] == stats["kept"] + sum(stats["rejected"].values())
    quarantine = {Path(q["location"]).name: (q["reason"], q["detail"]) for q in pq.read_table(Path(uri, "quarantine")).to_pylist()}
    assert quarantine == {
        "part-09.jsonl#4": ("duplicate_exact", "same text as s/u2-1"),
        "part-04.jsonl#4": ("duplicate_id", "s/u0-0"),
        "part-03.jsonl#4": ("duplicate_id", "s/u0-1"),  # W; V, its near copy, is kept
        "part-06.jsonl#4": ("duplicate_near", "near duplicate of s/x"),
        # Z is near Y only; the group (X, Y, Z) keeps X, its first member.
        "part-10.jsonl#4": ("duplicate_near", "near duplicate of s/x"),
    }
    kept = {r["doc_id"] for r in pq.read_table(Path(uri, "manifest")).to_pylist()}
    assert {"s/x", "s/u2-1", "s/u0-0", "s/v"} <= kept and not {"s/y", "s/z", "s/copy"} & kept
    # Three groups: the chain; the exact copy (also a near one) and its original; W and V. Only
    # Y and Z lose to a near duplicate; the copy and W had already lost.
    assert stats["near_dedup"]["groups"] == 3 and stats["near_dedup"]["duplicates"] == 2


def test_partition_count_changes_only_the_index(runs):
    one, five = (Path(runs[p][0]) for p in (1, 5))
    assert _digest(one, ("index", "stats.json")) == _digest(five, ("index", "stats.json"))
    assert {**runs[1][1], "partitions": 5} == runs[5][1]
    assert len(list((one / "index").iterdir())) == 1 and len(list((five / "index").iterdir())) == 5
    assert not (five / "_work").exists()


def test_a_document_is_found_in_two_reads(runs):
    uri, stats = runs[5]
    manifest = pq.read_table(Path(uri, "manifest")).to_pylist()
    assert len(manifest) == stats["kept"]
    for row in manifest:
        found = locate(uri, row["doc_id"])
        assert found == row
        shard = pq.read_table(Path(uri, found["shard"])).to_pylist()
        text = shard[found["row"]]["text"]
        assert shard[found["row"]]["doc_id"] == row["doc_id"]
        assert hashlib.sha256(text.encode()).hexdigest() == row["sha256"]
    assert locate(uri, "s/y") is None and locate(uri, "s/copy") is None and locate(uri, "s/nothing") is None


@pytest.mark.parametrize("phase,after", [("scan_unit", 5), ("write_unit", 3)])
def test_a_killed_ingest_resumes_from_the_steps_it_finished(corpus, runs, tmp_path, phase, after):
    cfg = _cfg(corpus, 5)
    out, _ = stage.plan(cfg, str(tmp_path / "store"))
    killed = subprocess.run([sys.executable, str(HELPER), cfg.model_dump_json(), str(tmp_path / "store"), phase, str(after)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr[-3000:]
    done = Path(out.uri, "_work", "done")
    finished = {p: p.stat().st_mtime_ns for p in done.rglob("*.json")}
    step = {"scan_unit": "scan", "write_unit": "write"}[phase]
    assert len(list((done / step).glob("*.json"))) == after
    assert not out.is_complete()

    calls: list[str] = []
    rewritten: list[Path] = []

    def counting(fn, args):
        results = [fn(*a) for a in args]
        calls.extend([fn.__name__] * len(args))
        # Checked while _work/ exists: no step finished before the kill was done again.
        rewritten.extend(p for p, t in finished.items() if p.stat().st_mtime_ns != t)
        return results

    _, files = stage.plan(cfg, str(tmp_path / "store"))
    stats = stage.run_ingest(cfg, out, files, counting).stats.model_dump()
    assert stats == runs[5][1]
    assert _digest(Path(out.uri)) == _digest(Path(runs[5][0]))
    assert finished and not rewritten
    assert calls.count(phase) == FILES  # every unit asked again; the finished ones answered from markers


def test_groups_joined_in_partitions_equal_groups_joined_in_one_task(corpus, runs, tmp_path):
    cfg = _cfg(corpus, 5).model_copy(update={"dedup": DedupConfig(near=True, threshold=0.7, num_perm=256,
                                                                  components_in_memory=0)})
    out, files = stage.plan(cfg, str(tmp_path / "store"))
    assert out.key == stage.plan(_cfg(corpus, 5), str(tmp_path / "store"))[0].key  # not part of the address
    assert stage.run_ingest(cfg, out, files).stats.model_dump() == runs[5][1]
    assert _digest(Path(out.uri)) == _digest(Path(runs[5][0]))


def test_label_rounds_find_the_first_member_of_long_chains_and_stars(tmp_path):
    """Pairs as LSH buckets produce them (each member to its bucket's first), here a 40-long chain
    crossing units and partitions and stars, joined both ways: the same losers, named alike.
    The chain's first member and some stars' centres already lost (exact or id): the next member
    survives, and a member that already lost is never a near loser."""
    import pyarrow as pa

    from tasks.ingest.components import CONFIRMED_SCHEMA, components, confirmed_dir, partitioned_components
    from tasks.ingest.work import Work, position, read_table, write_table

    rng = random.Random(3)
    chain = sorted(rng.sample(range(10_000), 40))
    pairs = [(a, b) for a, b in zip(chain, chain[1:])]
    for _ in range(30):
        star = sorted(rng.sample(range(10_000, 20_000), rng.randint(2, 6)))
        pairs += [(star[0], m) for m in star[1:]]
    rng.shuffle(pairs)
    lost = {chain[0], chain[5]} | {a for a, _ in pairs if a >= 10_000 and rng.random() < 0.3}
    ranges = 4
    for r in range(ranges):
        mine = pairs[r::ranges]
        write_table(Path(confirmed_dir(Work(str(tmp_path / "w"), 20, 4)), f"r-{r:04d}.parquet").as_posix(),
                    pa.table({"first": [position(a // 1000, a % 1000) for a, _ in mine],
                              "other": [position(b // 1000, b % 1000) for _, b in mine],
                              "first_id": [f"doc-{a}" for a, _ in mine], "other_id": [f"doc-{b}" for _, b in mine],
                              "first_out": [a in lost for a, _ in mine], "other_out": [b in lost for _, b in mine]},
                             schema=CONFIRMED_SCHEMA))
    results = {}
    for how in ("one task", "partitions"):
        work = Work(str(tmp_path / "w"), 20, 4)
        local = lambda fn, args: [fn(*a) for a in args]  # noqa: E731
        results[how] = components(work, 0) if how == "one task" else partitioned_components(work, local)
        losers = read_table(sorted(str(p) for p in (tmp_path / "w" / "near").glob("*.parquet")))
        results[how]["table"] = sorted(zip(losers.column("position").to_pylist(), losers.column("detail").to_pylist()))
        for p in (tmp_path / "w" / "near").glob("*.parquet"):
            p.unlink()
    assert results["one task"]["table"] == results["partitions"]["table"]
    assert results["partitions"]["groups"] == results["one task"]["groups"]
    assert results["partitions"]["rounds"] > 3  # the chain's label travelled over several rounds
    chain_losers = {pos: d for pos, d in results["partitions"]["table"] if pos < position(10, 0)}
    assert set(chain_losers.values()) == {f"near duplicate of doc-{chain[1]}"} and len(chain_losers) == 37
    lost_positions = {position(a // 1000, a % 1000) for a in lost}
    assert not lost_positions & {pos for pos, _ in results["partitions"]["table"]}


def test_a_crash_after_holding_out_a_document_resumes(tmp_path, monkeypatch):
    """A corpus too small to hash any document into validation holds one out by rewriting its
    unit; a crash before publishing, then a rerun, gives the clean run's output."""
    from tasks.artifacts import StageOutput

    d = tmp_path / "tiny"
    d.mkdir()
    for i, text in enumerate(["the first little document", "the second little document"]):
        (d / f"{i}.jsonl").write_text(json.dumps({"id": f"t{i}", "text": text}) + "\n")
    cfg = IngestConfig(sources=[SourceConfig(name="t", uri=str(d), license="x", id_field="id")], unit_bytes=1,
                       val_fraction=0.01)
    clean, files = stage.plan(cfg, str(tmp_path / "clean"))
    expected = stage.run_ingest(cfg, clean, files).stats.model_dump()
    assert expected["splits"] == {"train": 1, "val": 1}

    out, files = stage.plan(cfg, str(tmp_path / "crashed"))
    publish = StageOutput.publish

    def crash(self, record_type, **fields):
        raise RuntimeError("killed before publishing")

    monkeypatch.setattr(StageOutput, "publish", crash)
    with pytest.raises(RuntimeError):
        stage.run_ingest(cfg, out, files)
    monkeypatch.setattr(StageOutput, "publish", publish)
    assert stage.run_ingest(cfg, out, files).stats.model_dump() == expected
    assert _digest(Path(out.uri)) == _digest(Path(clean.uri))


def test_ids_are_compared_among_exact_survivors(tmp_path):
    """s/b's first text is an exact copy of s/a's: it is rejected as such, and s/b's second,
    different text is then the first holder of its id, so it is kept, not lost as a duplicate id."""
    d = tmp_path / "ids"
    d.mkdir()
    (d / "a.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in [
        ("a", "hello world, the first text"), ("b", "hello world, the first text"), ("b", "other words entirely")]))
    cfg = IngestConfig(sources=[SourceConfig(name="s", uri=str(d), license="x", id_field="id")], partitions=3)
    out, files = stage.plan(cfg, str(tmp_path / "store"))
    stats = stage.run_ingest(cfg, out, files).stats.model_dump()
    assert stats["rejected"] == {"duplicate_exact": 1} and stats["kept"] == 2
    kept = {r["doc_id"]: r["location"] for r in pq.read_table(Path(out.uri, "manifest")).to_pylist()}
    assert kept.keys() == {"s/a", "s/b"} and kept["s/b"].endswith("#3")
    assert locate(out.uri, "s/b")["location"].endswith("#3")
