"""Pretraining throughput: Werk's path (Ray Train, 2 DDP workers running Lightning) against a plain
single-process torch loop using both cores, same model, same global batch, same data.

Tokens/s are steady-state: Werk's figure is the rate its rank 0 logs over the last logging window
(Ray and Lightning start-up excluded); the baseline skips its first steps likewise.

    python benchmarks/train.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report  # noqa: E402

from infra.ray_cluster import ray_session  # noqa: E402
from models.gpt import GPT, GPTConfig  # noqa: E402
from tasks.artifacts import StageOutput  # noqa: E402
from tasks.encode.shard_format import write_shard  # noqa: E402
from tasks.training import launch  # noqa: E402
from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig  # noqa: E402
from tasks.training.data import TokenSamples  # noqa: E402
from tasks.training.job import PretrainJob  # noqa: E402

VOCAB, WORKERS, BATCH = 4096, 2, 16


def _shard(tmp: Path, name: str, n: int) -> str:
    buf = io.BytesIO()
    write_shard(buf, np.random.default_rng(0).integers(0, VOCAB, n), 1, VOCAB)
    (tmp / name).write_bytes(buf.getvalue())
    return str(tmp / name)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    steps = 40 if args.quick else 120
    model_cfg = ModelConfig(block_size=128, n_layer=4, n_head=4, n_embd=256)
    with tempfile.TemporaryDirectory() as tmp_dir, ray_session(min_cpus=WORKERS):
        tmp = Path(tmp_dir)
        train, val = _shard(tmp, "train.bin", 2_000_000), _shard(tmp, "val.bin", 50_000)
        runs = iter(range(100))

        def werk() -> float:
            job = PretrainJob(
                model=model_cfg,
                train=TrainConfig(max_steps=steps, batch_size=BATCH, steps_per_checkpoint=steps,
                                  log_every_n_steps=steps // 2, val_batches=1, warmup_steps=5),
                compute=ComputeConfig(num_workers=WORKERS), vocab_size=VOCAB,
                train_shards=[train], val_shards=[val])
            out = StageOutput.at(str(tmp / "store"), "bench", 1, {"run": next(runs)}, {})
            return launch.run_pretrain(job, out, str(tmp / "store")).summary.model_dump(by_alias=True)["metrics"]["perf/tokens_per_sec"]

        def baseline() -> float:
            torch.set_num_threads(WORKERS)
            torch.manual_seed(0)
            model = GPT(GPTConfig(vocab_size=VOCAB, **model_cfg.gpt_kwargs()))
            opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
            ds = TokenSamples([train], model_cfg.block_size)
            rng = np.random.default_rng(0)
            warm, t0 = steps // 2, 0.0
            for step in range(steps):
                if step == warm:
                    t0 = time.perf_counter()
                x, y = ds[rng.integers(0, len(ds), BATCH * WORKERS)]
                loss = model.loss(x, y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
            return (steps - warm) * BATCH * WORKERS * model_cfg.block_size / (time.perf_counter() - t0)

        w, b = alternate(werk, baseline, rounds=2 if args.quick else 4)
    report("pretrain_throughput", "tokens/s", w, b, workers=WORKERS, global_batch=BATCH * WORKERS,
           block_size=model_cfg.block_size, parameters=sum(p.numel() for p in GPT(GPTConfig(vocab_size=VOCAB, **model_cfg.gpt_kwargs())).parameters()))


if __name__ == "__main__":
    main()
