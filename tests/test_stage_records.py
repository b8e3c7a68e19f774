"""Stage records: every stage's `_SUCCESS.json` has one typed, versioned layout.

The `*-v0.json` assets are records as Werk wrote them before records had a version (from a debug
run): they must still read, as version 1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from tasks.encode.record import EncodeRecord
from tasks.evaluate.record import EvaluateRecord
from tasks.ingest.record import IngestRecord, IngestStats
from tasks.stage_record import RecordError
from tasks.tokenizer.record import TokenizerOutputs, TokenizerRecord, TokenizerSummary
from tasks.training.record import PretrainRecord

ASSETS = Path(__file__).parent / "assets" / "records"
RECORDS = {"ingest": IngestRecord, "tokenizer": TokenizerRecord, "encode": EncodeRecord, "pretrain": PretrainRecord,
           "evaluate": EvaluateRecord}


def _old(stage: str) -> dict:
    return json.loads((ASSETS / f"{stage}-v0.json").read_text())


@pytest.mark.parametrize("stage", RECORDS)
def test_records_written_before_versions_still_read_and_round_trip(stage):
    data = _old(stage)
    assert "record_version" not in data
    record = RECORDS[stage].parse(data)
    assert record.record_version == 1 and record.stage == stage and record.key == data["key"]
    assert record.inputs == {} and record.address is None  # what version 2 added reads empty
    # Dumped as stored, the record holds everything the old file held, under the same names.
    dumped = record.model_dump(mode="json", by_alias=True, exclude_unset=True)  # without what later versions added
    for name, value in data.items():
        if name != "completed_at":
            assert dumped[name] == value, name
    assert RECORDS[stage].parse(dumped) == record


def test_typed_fields_read_what_the_stages_hand_on():
    ing = IngestRecord.parse(_old("ingest"))
    assert ing.stats.docs_in == ing.stats.kept + sum(ing.stats.rejected.values())
    assert ing.shards.train and ing.outputs.manifest.endswith("/manifest")
    enc = EncodeRecord.parse(_old("encode"))
    assert enc.summary.splits["train"].tokens == sum(enc.summary.splits["train"].shard_tokens)
    pre = PretrainRecord.parse(_old("pretrain"))
    assert pre.summary.best is not None and pre.summary.best.val_loss == _old("pretrain")["summary"]["best"]["val/loss"]
    ev = EvaluateRecord.parse(_old("evaluate"))
    assert ev.summary.tasks and all(0 <= t.acc <= 1 for t in ev.summary.tasks.values())


def test_a_newer_record_is_refused_naming_the_stage_and_versions():
    data = {**_old("encode"), "record_version": 7}
    with pytest.raises(RecordError, match=rf"encode record has version 7.*up to version {EncodeRecord.VERSION}"):
        EncodeRecord.parse(data, "/store/encode/x/_SUCCESS.json")


def test_a_record_of_another_stage_or_a_broken_layout_is_refused():
    with pytest.raises(RecordError, match="stage 'tokenizer', not 'encode'"):
        EncodeRecord.parse(_old("tokenizer"))
    broken = _old("encode")
    del broken["summary"]["splits"]["val"]
    with pytest.raises(RecordError, match="does not match its layout"):
        EncodeRecord.parse(broken)
    drift = {**_old("tokenizer"), "unknown_field": 1}  # a stage that writes what it never declared
    with pytest.raises(RecordError):
        TokenizerRecord.parse(drift)


def test_ingest_counts_that_do_not_reconcile_are_refused():
    stats = _old("ingest")["stats"]
    IngestStats.model_validate(stats)
    with pytest.raises(ValidationError, match="do not reconcile"):
        IngestStats.model_validate({**stats, "kept": stats["kept"] - 1})
    by_source = {**stats["by_source"], "parlspeech": {"docs_in": 100, "kept": 78, "rejected": 21}}
    with pytest.raises(ValidationError, match="source 'parlspeech'"):
        IngestStats.model_validate({**stats, "by_source": by_source})


def test_published_record_reads_back_typed_and_versioned(tmp_path):
    from tasks.artifacts import StageOutput

    out = StageOutput.at(str(tmp_path), "tokenizer", 1, {"x": 1}, {})
    summary = TokenizerSummary(vocab_size=300, eot_id=0, pad_id=1, source="trained", sha256="0" * 64)
    published = out.publish(TokenizerRecord, summary=summary, outputs=TokenizerOutputs(tokenizer=out.path("t.json")))
    stored = json.loads(Path(out.path("_SUCCESS.json")).read_text())
    assert stored["record_version"] == TokenizerRecord.VERSION and stored["stage"] == "tokenizer"
    assert out.read(TokenizerRecord) == published
    with pytest.raises(ValidationError):  # frozen: a record is what was published, never edited after
        published.summary.vocab_size = 1  # type: ignore[misc]


def test_stage_results_survive_prefects_json_result_persistence():
    """The flows pass records between Prefect tasks and persist them as JSON (`flows/caching.py`):
    a cached result must come back as the same typed record."""
    from prefect.serializers import JSONSerializer

    from flows.results import EncodeRun, IngestRun, RegisterRun, GateResult

    ran = IngestRun(record=IngestRecord.parse(_old("ingest")), cached=False, run_id="r1")
    enc = EncodeRun(record=EncodeRecord.parse(_old("encode")), cached=True, run_id="r2")
    reg = RegisterRun(run_id="r3", cached=False, model_uri="models:/m@candidate", name="m", version="2", promoted=True,
                      gate=GateResult(metric="eval/bpb", candidate=1.0, champion=None, champion_version=None, reason="first"))
    serializer = JSONSerializer()
    for result in (ran, enc, reg):
        back = serializer.loads(serializer.dumps(result))
        assert type(back) is type(result) and back == result
    assert back.stage == "register" and ran.stage == "ingest" and enc.key == enc.record.key
