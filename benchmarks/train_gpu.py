"""GPU pretraining throughput and MFU: Werk's full path (Ray Train + Lightning, one worker, bf16,
torch.compile) against a plain PyTorch loop of the same model, batch, precision and compile, for
the 124M and 350M presets on one GPU. One command, about 6 minutes on an H100/H200:

    python benchmarks/train_gpu.py            # on a GPU machine
    python benchmarks/train_gpu.py --smoke    # on CPU: the debug preset, no compile (checks the script)

Tokens/s are steady-state (the first logging window, which holds compilation, is left out); MFU
uses the PaLM/nanoGPT FLOPs per token (`tasks/training/mfu.py`) against the device's bf16 peak.
The last line is one JSON object; `value`/`baseline`/`ratio` are the 124M figures (or the smoke
run's), and `presets` holds every preset's tokens/s and MFU.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.ray_cluster import ray_session  # noqa: E402
from models.gpt import GPT, GPTConfig  # noqa: E402
from tasks.artifacts import StageOutput  # noqa: E402
from tasks.encode.shard_format import write_shard  # noqa: E402
from tasks.training import launch, mfu  # noqa: E402
from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig  # noqa: E402
from tasks.training.data import TokenSamples  # noqa: E402
from tasks.training.job import PretrainJob  # noqa: E402

VOCAB = 50304  # GPT-2's 50257 rounded up to a multiple of 128, as nanoGPT does for the matmuls
PLAN = {  # preset -> (micro-batch, steps)
    "124m": (32, 120),
    "350m": (16, 80),
}


def _shard(tmp: Path, name: str, tokens: int, vocab: int) -> str:
    buf = io.BytesIO()
    write_shard(buf, np.random.default_rng(0).integers(0, vocab, tokens), 1, vocab)
    (tmp / name).write_bytes(buf.getvalue())
    return str(tmp / name)


def _werk(model: ModelConfig, batch: int, steps: int, gpu: bool, compile_: bool, shards, tmp: Path, vocab: int) -> float:
    job = PretrainJob(
        model=model,
        train=TrainConfig(max_steps=steps, batch_size=batch, steps_per_checkpoint=steps, log_every_n_steps=steps // 4,
                          val_batches=1, warmup_steps=10, precision="bf16-mixed" if gpu else "32-true",
                          compile=compile_),
        compute=ComputeConfig(num_workers=1, use_gpu=gpu, cpus_per_worker=4 if gpu else 1, system_metrics_interval_s=0),
        vocab_size=vocab, train_shards=[shards[0]], val_shards=[shards[1]],
    )
    out = StageOutput.at(str(tmp / "store"), "bench", 1, {"t": time.time_ns()}, {})
    return launch.run_pretrain(job, out, str(tmp / "store")).summary.model_dump(by_alias=True)["metrics"]["perf/tokens_per_sec"]


def _plain(model_cfg: ModelConfig, batch: int, steps: int, gpu: bool, compile_: bool, train_shard: str, vocab: int) -> float:
    device = "cuda" if gpu else "cpu"
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab, **model_cfg.gpt_kwargs())).to(device)
    if compile_:
        for block in model.blocks:
            block.compile()
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), fused=gpu)
    data = TokenSamples([train_shard], model_cfg.block_size)
    rng = np.random.default_rng(0)
    warm, t0 = steps // 4, 0.0
    for step in range(steps):
        if step == warm:
            if gpu:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        x, y = data[rng.integers(0, len(data), batch)]
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        with torch.autocast(device, dtype=torch.bfloat16, enabled=gpu):
            loss = model.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if gpu:
        torch.cuda.synchronize()
    return (steps - warm) * batch * model_cfg.block_size / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="CPU check of the script: debug preset, no compile")
    ap.add_argument("--presets", nargs="*", default=list(PLAN))
    args = ap.parse_args()
    gpu = not args.smoke
    if gpu and not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --smoke on CPU")
    device = torch.cuda.get_device_name() if gpu else "cpu"
    peak = mfu.device_peak_tflops(device) if gpu else None
    plan = {"debug": (8, 24)} if args.smoke else {p: PLAN[p] for p in args.presets}
    vocab = 1024 if args.smoke else VOCAB
    results = {}
    with tempfile.TemporaryDirectory() as tmp_dir, ray_session(min_cpus=4 if gpu else 1):
        tmp = Path(tmp_dir)
        for preset, (batch, steps) in plan.items():
            model = ModelConfig(preset=preset)
            tokens = (steps + 2) * batch * (model.block_size + 1)
            shards = (_shard(tmp, f"{preset}-train.bin", tokens, vocab), _shard(tmp, f"{preset}-val.bin", 4 * model.block_size, vocab))
            flops = mfu.flops_per_token(GPT(GPTConfig(vocab_size=vocab, **model.gpt_kwargs())).to("meta"))
            werk = _werk(model, batch, steps, gpu, gpu, shards, tmp, vocab)
            plain = _plain(model, batch, steps, gpu, gpu, shards[0], vocab)
            results[preset] = {
                "werk_tokens_per_sec": round(werk), "plain_tokens_per_sec": round(plain), "ratio": round(werk / plain, 3),
                "werk_mfu": round(flops * werk / (peak * 1e12), 4) if peak else None,
                "plain_mfu": round(flops * plain / (peak * 1e12), 4) if peak else None,
                "micro_batch": batch, "block_size": model.block_size, "steps": steps,
            }
            print(f"{preset}: {json.dumps(results[preset])}", flush=True)
    head = results["124m" if "124m" in results else next(iter(results))]
    print(json.dumps({"name": "pretrain_gpu_throughput", "value": head["werk_tokens_per_sec"],
                      "baseline": head["plain_tokens_per_sec"], "unit": "tokens/s", "ratio": head["ratio"],
                      "device": device, "peak_tflops": peak, "precision": "bf16-mixed" if gpu else "32-true",
                      "compile": gpu, "presets": results}))


if __name__ == "__main__":
    main()
