"""Time to a training worker's first batch, with 1x and 16x the shards on S3.

A worker starting on a corpus on S3 needs its shards' sample counts and the shards its first batch
reads. Werk's path (tasks/training/shard_store.py): counts come from the encode manifest, and only
the shards the first batch touches are fetched into the node cache and checked. The baseline is
the path Werk had before: fetch every shard and hash every one at every start. Each path starts
from an empty node cache, alternately, against a real SeaweedFS S3 started by the benchmark on
127.0.0.1; the time covers building the training set and gathering the first batch of 16 samples,
read window by window (train.shuffle_window_shards=4) as a corpus larger than its cache is.

    .venv/bin/python benchmarks/first_step.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra import storage  # noqa: E402
from infra.services import seaweedfs_s3  # noqa: E402
from tasks.encode.shard_format import open_shard, verify_shard, write_shard  # noqa: E402
from tasks.training.data import TokenSamples  # noqa: E402
from tasks.training.sampling import WindowedOrder  # noqa: E402
from tasks.training.shard_store import Shard, ShardStore  # noqa: E402

BUCKET, VOCAB, BLOCK, BATCH = "werk-bench", 32000, 256, 16


def upload(count: int, tokens: int, prefix: str) -> list[Shard]:
    rng = np.random.default_rng(count)
    shards = []
    for i in range(count):
        buf = io.BytesIO()
        write_shard(buf, rng.integers(0, VOCAB, tokens), 1, VOCAB)
        uri = f"s3://{BUCKET}/{prefix}/train-{i:05d}.bin"
        with storage.open_write(uri) as fh:
            fh.write(buf.getvalue())
        shards.append(Shard(uri, tokens, hashlib.sha256(buf.getvalue()).hexdigest()))
    return shards


def werk_path(shards: list[Shard], cache: Path) -> float:
    t0 = time.perf_counter()
    ds = TokenSamples(shards, BLOCK, ShardStore(cache, vocab_size=VOCAB))
    order = WindowedOrder(ds.counts, seed=1, window=4)
    ds[order(np.arange(BATCH)).tolist()]
    return time.perf_counter() - t0


def baseline_path(shards: list[Shard], cache: Path) -> float:
    t0 = time.perf_counter()
    paths = [storage.local_copy(s.uri, cache) for s in shards]
    for path, shard in zip(paths, shards):
        verify_shard(path, shard.sha256, VOCAB)
    ds = TokenSamples(paths, BLOCK)
    ds[np.random.default_rng(1).permutation(len(ds))[:BATCH].tolist()]
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    base, tokens, rounds = (4, 1_000_000, 2) if args.quick else (8, 4_000_000, 3)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        access, secret = "werk-" + secrets.token_hex(4), secrets.token_hex(16)
        service, endpoint = seaweedfs_s3(tmp / "s3", access, secret, tmp / "logs")
        import os

        os.environ.update({"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret,
                           "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1"})
        rows = {}
        with service:
            storage.filesystem(f"s3://{BUCKET}")[0].mkdir(BUCKET)
            for k in (1, 16):
                shards = upload(base * k, tokens, f"x{k}")
                werk, baseline = [], []
                for r in range(rounds):
                    for name, fn, out in (("werk", werk_path, werk), ("baseline", baseline_path, baseline))[::1 if r % 2 == 0 else -1]:
                        cache = tmp / f"cache-{name}-{k}-{r}"
                        out.append(fn(shards, cache))
                        shutil.rmtree(cache, ignore_errors=True)
                rows[f"{k}x"] = {"shards": len(shards), "mb": round(len(shards) * tokens * 2 / 1e6),
                                 "werk_s": round(float(np.median(werk)), 2), "baseline_s": round(float(np.median(baseline)), 2)}
                print(f"{k:>2}x: {json.dumps(rows[f'{k}x'])}", flush=True)
    top = rows["16x"]
    print(json.dumps({"name": "first_step", "value": top["werk_s"], "baseline": top["baseline_s"], "unit": "s to first batch",
                      "ratio": round(top["baseline_s"] / top["werk_s"], 2),
                      "werk_growth_16x_over_1x": round(top["werk_s"] / rows["1x"]["werk_s"], 2), "sizes": rows}))


if __name__ == "__main__":
    main()
