"""The compute budget stops pretraining cleanly, with a checkpoint that a larger budget resumes."""

from __future__ import annotations

import pytest
from helpers.encoded import encoded_corpus

pytestmark = pytest.mark.slow


def test_a_spent_budget_stops_with_a_checkpoint_and_a_larger_one_resumes(tmp_path, corpus_dir):
    from infra.ray_cluster import ray_session
    from tasks.artifacts import StageOutput
    from tasks.training import launch
    from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig
    from tasks.training.errors import BudgetSpent
    from tasks.training.job import PretrainJob
    from tasks.training.record import PretrainRecord

    summary = encoded_corpus(tmp_path, corpus_dir)
    root = str(tmp_path / "runs")

    def job(budget: float | None) -> PretrainJob:
        return PretrainJob(
            model=ModelConfig(block_size=32, n_layer=1, n_head=2, n_embd=32),
            train=TrainConfig(max_steps=8, batch_size=4, lr=3e-3, warmup_steps=0, steps_per_checkpoint=4, val_batches=1),
            compute=ComputeConfig(num_workers=2, budget_device_hours=budget), vocab_size=summary["vocab_size"],
            train_shards=summary["splits"]["train"]["shards"], val_shards=summary["splits"]["val"]["shards"])

    tiny = 1e-6  # 3.6 ms of two workers: spent within the first step
    out = StageOutput.at(root, "pretrain", 1, {"x": 1}, {})
    with ray_session(min_cpus=2):
        with pytest.raises(BudgetSpent, match=r"compute budget \(1e-06 device-hours.*at step (\d+) of 8") as first:
            launch.run_pretrain(job(tiny), out, root)
        stopped_at = int(first.value.args[0].split(" at step ")[1].split()[0])
        assert 1 <= stopped_at < 8 and not out.is_complete()
        # The same budget again: spent already, so not one more step.
        with pytest.raises(BudgetSpent, match=f"at step {stopped_at} of 8"):
            launch.run_pretrain(job(tiny), out, root)
        # A larger budget resumes from the checkpoint and finishes, counting every attempt.
        record = launch.run_pretrain(job(10.0), out, root)
    assert isinstance(record, PretrainRecord) and record.summary.global_step == 8
    assert record.summary.device_hours > tiny and record.compute.device == "cpu-worker"
    assert record.compute.device_s == pytest.approx(record.summary.device_hours * 3600)
    assert record.summary.flops and record.compute.flops == record.summary.flops
    assert record.data.steps == 8 and record.data.tokens_trained == 8 * 4 * 2 * 32
