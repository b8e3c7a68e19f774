"""Training-batch assembly: Werk's vectorised gather of samples from memory-mapped shards against
reading one row at a time (one Python slice per sequence), at the demo's batch shape. Same rows, checked.

    python benchmarks/loader.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report, timed  # noqa: E402

from tasks.encode.shard_format import write_shard  # noqa: E402
from tasks.training.data import TokenSamples  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    batch, block, batches = 32, 1024, 200 if args.quick else 1000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "train-00000.bin"
        buf = io.BytesIO()
        write_shard(buf, np.random.default_rng(0).integers(0, 50000, 20_000_000), 1, 50257)
        path.write_bytes(buf.getvalue())
        ds = TokenSamples([path], block)
        rng = np.random.default_rng(1)
        starts = [rng.integers(0, len(ds), batch) for _ in range(batches)]
        tokens = ds._tokens(0)

        def werk() -> int:
            for s in starts:
                ds[s]
            return batches

        def baseline() -> int:
            for s in starts:
                rows = torch.stack([torch.from_numpy(tokens[p * block : p * block + block + 1].astype(np.int64)) for p in s])
                rows[:, :-1], rows[:, 1:]
            return batches

        x, _ = ds[starts[0]]
        ref = torch.stack([torch.from_numpy(tokens[p * block : p * block + block].astype(np.int64)) for p in starts[0]])
        assert torch.equal(x, ref)
        w, b = alternate(lambda: timed(werk), lambda: timed(baseline), rounds=3 if args.quick else 7)
        report("loader_batches", "batches/s", w, b, batch=batch, block=block)
        del ds, tokens


if __name__ == "__main__":
    main()
