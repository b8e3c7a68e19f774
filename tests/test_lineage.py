"""The first step that trained on a document, recomputed from the sample order, against the
sampler itself: every position the training stream reads, rank by rank, step by step."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.lineage.seen import first_step, sample_range, samples_per_shard
from tasks.training.record import SampleOrder
from helpers.replay import first_step_by_replay


@pytest.mark.parametrize("window", [None, 1, 2])
def test_first_step_matches_the_sampler(window):
    rng = np.random.default_rng(window or 0)
    checked = never = 0
    for _ in range(120):
        tokens = [int(t) for t in rng.integers(1, 160, size=rng.integers(1, 6))]  # some shards shorter than a sample
        order = SampleOrder(train_shards=[f"s{i}" for i in range(len(tokens))], shard_tokens=tokens, block_size=8,
                            seed=int(rng.integers(0, 1000)), samples_per_step=4, window=window,
                            steps=int(rng.integers(1, 25)))
        if samples_per_shard(order).sum() == 0:
            continue
        shard = int(rng.integers(0, len(tokens)))
        start = int(rng.integers(0, tokens[shard]))
        end = int(rng.integers(start + 1, tokens[shard] + 1))
        found = first_step(order, shard, start, end)
        assert found == first_step_by_replay(order, shard, start, end, world=2), (order, shard, start, end)
        checked += 1
        never += found is None
    assert checked > 80 and 0 < never < checked  # both answers were exercised


def test_tokens_past_the_last_whole_sample_are_never_read():
    order = SampleOrder(train_shards=["a"], shard_tokens=[20], block_size=8, seed=0, samples_per_step=1, steps=100)
    assert sample_range(order, 0, 0, 3) == (0, 0)
    assert sample_range(order, 0, 16, 17) == (1, 1)  # token 16 is sample 1's last target
    assert sample_range(order, 0, 17, 20) is None  # (20 - 1) // 8 = 2 samples: tokens 17.. are never read
    assert first_step(order, 0, 17, 20) is None and first_step(order, 0, 0, 3) is not None


def test_a_shard_shorter_than_one_sample_holds_none_and_shifts_nothing():
    short_first = SampleOrder(train_shards=["tiny", "a"], shard_tokens=[5, 40], block_size=8, seed=3, samples_per_step=2,
                              steps=10)
    alone = short_first.model_copy(update={"train_shards": ["a"], "shard_tokens": [40]})
    assert first_step(short_first, 0, 0, 5) is None
    assert sample_range(short_first, 1, 0, 40) == sample_range(alone, 0, 0, 40)
    assert first_step(short_first, 1, 10, 12) == first_step(alone, 0, 10, 12)


def test_openlineage_events_go_through_the_real_client_s_file_transport(tmp_path):
    """START and COMPLETE per stage, inputs and outputs named as OpenLineage names datasets, each
    with its digest as its version, and the pipeline run as parent."""
    import json
    from datetime import datetime, timezone

    from tasks.lineage import openlineage
    from tasks.lineage.config import LineageConfig
    from tasks.stage_record import ComputeUse
    from tasks.tokenizer.record import TokenizerOutputs, TokenizerRecord, TokenizerSummary
    from tasks.tracking.datasets import DatasetRef

    record = TokenizerRecord(stage="tokenizer", key="k1", uri="s3://bucket/store/tokenizer/k1",
                             completed_at=datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc),
                             summary=TokenizerSummary(vocab_size=512, eot_id=0, pad_id=1, source="trained", sha256="ab" * 32),
                             outputs=TokenizerOutputs(tokenizer="s3://bucket/store/tokenizer/k1/tokenizer.json"),
                             compute=ComputeUse(wall_s=90.0, cpu_s=80.0))
    source = DatasetRef("ingest:i1", str(tmp_path / "store" / "ingest" / "i1"), "d" * 32, "training")
    output = DatasetRef("tokenizer:k1", record.uri, "ab" * 16, "output")
    cfg = LineageConfig(openlineage=True, file=str(tmp_path / "events.jsonl"))
    flow_run = "0b6f5c3e-8f4e-4f7a-9c1d-2a3b4c5d6e7f"
    openlineage.emit(cfg, tmp_path, "demo.tokenizer", record, "mlflowrun1", [source], output, ("demo.pipeline", flow_run))
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    start, done = events
    assert done["eventTime"].startswith("2026-12-02T12:00:00") and start["eventTime"].startswith("2026-12-02T11:58:30")
    assert (done["job"]["namespace"], done["job"]["name"]) == ("werk", "demo.tokenizer")
    assert done["run"]["runId"] == openlineage.run_uuid("mlflowrun1") == start["run"]["runId"]
    assert done["run"]["facets"]["parent"]["run"]["runId"] == flow_run
    (inp,) = done["inputs"]
    (out,) = done["outputs"]
    assert (inp["namespace"], inp["name"]) == ("file", str((tmp_path / "store" / "ingest" / "i1").resolve()))
    assert (out["namespace"], out["name"]) == ("s3://bucket", "store/tokenizer/k1")
    assert out["facets"]["version"]["datasetVersion"] == "ab" * 16
