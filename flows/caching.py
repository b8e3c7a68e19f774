"""Cross-run stage caching with Prefect's own cache policy and result persistence.

A stage task's cache key is its output's content address (stage, code version, config, and the
addresses of its inputs, themselves content hashes) plus a hash of the task wrapper's source.
Prefect persists the task's result as JSON under that key *inside the stage's output folder* on
the storage root, `<root>/<stage>/<key>/_prefect/<wrapper hash>.json`. So:
- a rerun with unchanged inputs finds the record and skips the task (state `Cached`) without
  loading the stage's code: the key is computed by the light `tasks/<stage>/address.py` modules;
- deleting a stage output deletes its cache record with it: Prefect never replays a result whose
  files are gone;
- a local root and an S3 root behave alike, and every machine that sees the root shares the cache.

JSON, not pickle: a record on a shared bucket is read by every run, and unpickling one would run
whatever code its writer put there.

The stage bodies still check their `_SUCCESS.json` marker: an output made by `werk ingest`, by a
run killed between publishing and recording, or before this cache existed is reused, not redone.

No lock: Prefect's file lock manager keeps a crashed run's lock until it expires, which would hold
up the very rerun a preempted job needs. Two runs started at once on the same stage both compute it
and publish the same content-addressed output.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from prefect import get_run_logger
from prefect.cache_policies import CachePolicy, TaskSource
from prefect.filesystems import RemoteFileSystem, WritableFileSystem

from flows import story
from flows.events import StageState, emit
from flows.results import StageRun
from infra import storage
from tasks.artifacts import StageOutput

RECORDS = "_prefect"


@dataclass
class StageCache(CachePolicy):
    """Prefect cache policy keyed by a stage's content address.

    `address` maps the task's inputs (by parameter name) to the stage's planned output."""

    address: Callable[..., StageOutput] | None = None

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any],
                    **kwargs: Any) -> str | None:
        if self.address is None:
            return None
        out = self.address(**inputs)
        wrapper = TaskSource().compute_key(task_ctx, inputs, flow_parameters)
        # A stored result is read back into today's types: one written under another layout of
        # the records is not replayed (the stage body then reads its record, or refuses it clearly).
        return out.path(RECORDS, f"{wrapper}-{results_schema()}.json")


@functools.lru_cache(maxsize=1)
def results_schema() -> str:
    """A short hash of the JSON schema of every stage task's result type."""
    import json

    from flows import results

    schemas = [t.model_json_schema() for t in (results.IngestRun, results.TokenizerRun, results.EncodeRun,
                                                 results.PretrainRun, results.EvaluateRun, results.RegisterRun)]
    return hashlib.sha256(json.dumps(schemas, sort_keys=True).encode()).hexdigest()[:12]


def result_storage(root: str) -> Path | WritableFileSystem:
    """Where stage results are persisted: the storage root itself (keys are absolute URIs under it).

    Prefect wants remote result storage saved as a block; the block holds the root and the S3
    endpoint only, never credentials: s3fs finds those in the environment or credential chain."""
    if not storage.is_remote(root):
        return Path(root)
    block = RemoteFileSystem(basepath=root, settings=storage.storage_options(root))
    block.save(f"werk-results-{hashlib.sha256(root.encode()).hexdigest()[:12]}", overwrite=True)
    return block


def stage_task_options(root: str) -> dict[str, Any]:
    """Task options that make a stage task cache across runs on `root`."""
    return {"result_storage": result_storage(root), "persist_result": True, "result_serializer": "json"}


# Stage names as the pipeline and its summary say them, where a task's name differs.
_STAGE_OF_TASK = {"train-tokenizer": "tokenizer"}


def run_stage(stage_task: Any, options: dict[str, Any], *args: Any) -> StageRun:
    """Call a stage task with `options` (from `stage_task_options`, made once per flow run).

    The result is marked `cached` when Prefect took it from its cache (the task did not run) or
    when the task found its output already complete. A failed task raises its error here.
    Whoever watches the run (`flows/events.py`) hears the stage start, and end with its line."""
    name = _STAGE_OF_TASK.get(stage_task.name, stage_task.name)
    emit(StageState(name, "running"))
    try:
        state = stage_task.with_options(**options)(*args, return_state=True)
        result = state.result()
    except BaseException as exc:
        emit(StageState(name, "failed", f"{type(exc).__name__}: {exc}".splitlines()[0][:300]))
        raise
    from_cache = state.name == "Cached"
    if from_cache:  # the task body did not run, so it logged nothing: the flow says what was reused
        where = result.record.uri if result.record is not None else "an earlier run"
        get_run_logger().info("%s reused from %s: %s", name, where, story.line(result))
    emit(StageState(name, "reused" if from_cache or result.cached else "done", story.line(result)))
    return result.model_copy(update={"cached": result.cached or from_cache})
