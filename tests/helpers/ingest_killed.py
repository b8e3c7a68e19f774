"""Run an ingest in this process and kill it (SIGKILL, as a preempted job) right after the
`after`-th task of `phase` finishes: python ingest_killed.py CONFIG_JSON ROOT PHASE AFTER."""

from __future__ import annotations

import os
import signal
import sys

from tasks.ingest import stage
from tasks.ingest.config import IngestConfig


def main() -> None:
    config, root, phase, after = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    cfg = IngestConfig.model_validate_json(config)

    def mapper(fn, args):
        results = []
        for a in args:
            results.append(fn(*a))
            if fn.__name__ == phase and len(results) == after:
                os.kill(os.getpid(), signal.SIGKILL)
        return results

    out, files = stage.plan(cfg, root)
    stage.run_ingest(cfg, out, files, mapper)


if __name__ == "__main__":
    main()
