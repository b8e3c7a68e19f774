"""Checkpoints: one after every round's validation, one when a stop is requested, and a last one
when training ends, all through Ray Train.

They are taken where Lightning's own checkpointing takes them (after validation, or after an
optimizer step), never in `on_train_epoch_end`: a run resumed from there would count its logging
steps one off the uninterrupted run's.

Each rank takes part in writing the Lightning checkpoint to a local temporary folder (sharded
strategies need every rank); Ray Train uploads it to the storage root as `step-NNNNNNNN/` and
registers it only once the upload is complete, in a snapshot it rewrites after each
registration. A crash while a checkpoint is written therefore never makes it the latest: a
restarted run resumes from the newest *registered* checkpoint. Ray keeps the newest
`keep_checkpoints`; the best one by validation loss is kept apart, at `best_uri`, written
atomically with a `best.json` that names its step and loss.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import ray.train
from ray.train import Checkpoint

from infra import storage
from tasks.training.job import CHECKPOINT_FILE

BEST_METRIC = "val/loss"


@contextmanager
def latest_checkpoint() -> Iterator[str | None]:
    """Local path of the newest checkpoint this Ray Train run has registered, or None."""
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as folder:
        yield str(Path(folder) / CHECKPOINT_FILE)


class CheckpointReporter(L.Callback):
    def __init__(self, best_uri: str | None) -> None:
        self.best_uri = best_uri
        self.best = math.inf
        self.best_step: int | None = None
        self.saved_step: int | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_step": self.best_step, "saved_step": self.saved_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best, self.best_step = state_dict["best"], state_dict["best_step"]
        self.saved_step = state_dict.get("saved_step")

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)  # the final state, when max_steps does not fall on a round's end

    def save(self, trainer: L.Trainer) -> None:
        step = trainer.global_step
        if step == self.saved_step:  # already saved at this step (or restored from it)
            return
        self.saved_step = step
        metrics: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
        metrics.update(step=step, epoch=trainer.current_epoch)
        score = metrics.get(BEST_METRIC)
        improved = score is not None and math.isfinite(score) and score < self.best
        if improved:  # before saving, so the checkpoint knows it is the best
            self.best, self.best_step = score, step
        folder = Path(tempfile.mkdtemp(prefix=f"werk-ckpt-{trainer.global_rank}-"))
        try:
            trainer.save_checkpoint(folder / CHECKPOINT_FILE, weights_only=False)
            ray.train.report(metrics, checkpoint=Checkpoint.from_directory(str(folder)),
                             checkpoint_dir_name=f"step-{step:08d}")
            if improved and self.best_uri and trainer.is_global_zero:
                self._publish_best(folder / CHECKPOINT_FILE, step, score)
            trainer.strategy.barrier()
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _publish_best(self, checkpoint: Path, step: int, score: float) -> None:
        storage.upload_file(checkpoint, storage.join(self.best_uri, CHECKPOINT_FILE))
        storage.write_json(storage.join(self.best_uri, "best.json"), {"step": step, BEST_METRIC: score})
