"""On a GPU: bf16 with torch.compile on DDP, and FSDP with activation checkpointing, train to the
end and log MFU and GPU memory. Skipped where no CUDA device is present (CI)."""

from __future__ import annotations

import pytest
import torch
from helpers.encoded import encoded_corpus

pytestmark = [pytest.mark.slow, pytest.mark.gpu]


@pytest.mark.parametrize("strategy,compile_,checkpointing", [("ddp", True, False), ("fsdp", False, True)])
def test_gpu_training_runs_and_reports_mfu(tmp_path, corpus_dir, strategy, compile_, checkpointing):
    from mlflow import MlflowClient

    from infra.ray_cluster import ray_session
    from tasks.artifacts import StageOutput
    from tasks.training import launch
    from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig
    from tasks.training.job import PretrainJob

    corpus = encoded_corpus(tmp_path, corpus_dir)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    run_id = client.create_run(client.create_experiment("gpu", artifact_location=(tmp_path / "artifacts").as_uri())).info.run_id
    job = PretrainJob(
        model=ModelConfig(preset="debug", block_size=64),
        train=TrainConfig(max_steps=40, batch_size=8, lr=3e-3, warmup_steps=5, steps_per_checkpoint=20,
                          log_every_n_steps=10, precision="bf16-mixed", compile=compile_,
                          activation_checkpointing=checkpointing),
        compute=ComputeConfig(num_workers=1, use_gpu=True, strategy=strategy),
        vocab_size=corpus["vocab_size"], train_shards=corpus["splits"]["train"]["shards"],
        val_shards=corpus["splits"]["val"]["shards"], mlflow_tracking_uri=uri, mlflow_run_id=run_id,
    )
    out = StageOutput.at(str(tmp_path / "runs"), "pretrain", 1, {"s": strategy}, {})
    with ray_session(min_cpus=1):
        summary = launch.run_pretrain(job, out, str(tmp_path / "runs")).summary.model_dump(by_alias=True)
    assert summary["global_step"] == 40
    assert torch.isfinite(torch.tensor(summary["metrics"]["val/loss"]))
    metrics = client.get_run(run_id).data.metrics
    assert 0 < metrics["perf/mfu"] < 1
    assert metrics["perf/gpu_mem_peak_gib"] > 0
    weights = torch.load(out.path("model.pt"), weights_only=True)
    assert all(torch.isfinite(w).all() for w in weights.values())
