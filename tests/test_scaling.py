"""The global batch, and so the training trajectory, stays the same with 1 and 2 Ray workers:
with `global_batch_tokens` fixed, one worker accumulates the gradients two workers average."""

from __future__ import annotations

import pytest
import torch
from helpers.encoded import encoded_corpus

pytestmark = pytest.mark.slow


def test_one_and_two_workers_follow_the_same_trajectory(tmp_path, corpus_dir):
    from infra.ray_cluster import ray_session
    from tasks.artifacts import StageOutput
    from tasks.training import launch
    from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig
    from tasks.training.job import PretrainJob

    summary = encoded_corpus(tmp_path, corpus_dir)
    block, batch = 32, 4
    results = {}
    with ray_session(min_cpus=2):
        for workers in (1, 2):
            job = PretrainJob(
                model=ModelConfig(block_size=block, n_layer=1, n_head=2, n_embd=32),
                train=TrainConfig(max_steps=6, batch_size=batch, global_batch_tokens=2 * batch * block, lr=3e-3,
                                  warmup_steps=0, steps_per_checkpoint=3, val_batches=2, grad_clip=0.0),
                compute=ComputeConfig(num_workers=workers), vocab_size=summary["vocab_size"],
                train_shards=summary["splits"]["train"]["shards"], val_shards=summary["splits"]["val"]["shards"],
            )
            out = StageOutput.at(str(tmp_path / "runs"), "pretrain", 1, {"workers": workers}, {})
            results[workers] = launch.run_pretrain(job, out, str(tmp_path / "runs")).summary.model_dump(by_alias=True)
            results[workers]["weights"] = torch.load(out.path("model.pt"), weights_only=True)
    one, two = results[1], results[2]
    assert one["global_step"] == two["global_step"] == 6
    assert one["metrics"]["val/loss"] == pytest.approx(two["metrics"]["val/loss"], rel=1e-4)
    for name, w in one["weights"].items():
        torch.testing.assert_close(w, two["weights"][name], rtol=1e-3, atol=1e-4)
