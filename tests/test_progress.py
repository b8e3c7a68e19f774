"""Training progress reaches the driver while training runs: rank 0 reports its step, losses and
milestones to a Ray actor, a driver thread hands them on (to the Prefect progress artifact, the
run log and the terminal view in the pipeline)."""

from __future__ import annotations

import time

import pytest
import torch

pytestmark = pytest.mark.slow  # imports Lightning and starts Ray


def _wait_for(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_steps_and_milestones_reach_the_driver_during_training():
    import lightning as L

    from infra.ray_cluster import ray_session
    from tasks.training.progress import ReportProgress, TrainStatus, watch_training

    statuses: list[TrainStatus] = []
    heard: list[int] = []

    def on_status(status: TrainStatus) -> None:
        statuses.append(status)
        heard.append(status.step)

    class Tiny(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.layer = torch.nn.Linear(4, 1)
            self.seen_mid_run: list[int] = []

        def training_step(self, batch, batch_idx):
            if self.global_step == 20:
                # Training waits here until the driver has heard a step: progress arrives while
                # training is still running, not only at the end.
                assert _wait_for(lambda: any(0 < s <= 20 for s in heard)), heard
                self.seen_mid_run = list(heard)
            loss = self.layer(batch[0]).pow(2).mean()
            self.log("train/loss", loss)
            return loss

        def validation_step(self, batch, batch_idx):
            self.log("val/loss", self.layer(batch[0]).pow(2).mean())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(160, 4)), batch_size=4)  # one epoch: 40 steps
    with ray_session(min_cpus=1):
        import ray

        with watch_training("werk-progress-test", on_status, every_s=0.05) as actor:
            module = Tiny()
            trainer = L.Trainer(max_steps=40, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False, val_check_interval=10,
                                limit_val_batches=2, num_sanity_val_steps=0,
                                callbacks=[ReportProgress(actor, ray.get_runtime_context().namespace, every_s=0.0)])
            trainer.fit(module, data, data)
    assert module.seen_mid_run and max(module.seen_mid_run) <= 20
    assert heard == sorted(heard), "steps are handed on in order"
    assert heard[-1] == 40  # the final step is heard when the watch ends
    assert statuses[-1].loss is not None and statuses[-1].val_loss is not None
    notes = [n for s in statuses for n in s.notes]
    # Each validation, once, with its step and loss; none is a warning.
    validations = [n for n in notes if n.startswith("validation at step ")]
    assert [int(n.split()[3].rstrip(":")) for n in validations] == [10, 20, 30, 40], notes
    assert all("val loss" in n for n in validations) and not any(s.warnings for s in statuses)


def test_a_failing_progress_callback_does_not_break_training():
    from infra.ray_cluster import ray_session
    from tasks.training.progress import watch_training

    calls = []

    def broken(status) -> None:
        calls.append(status.step)
        raise RuntimeError("progress sink down")

    with ray_session(min_cpus=1):
        import ray

        with watch_training("werk-progress-broken", broken, every_s=0.05) as actor:
            board = ray.get_actor(actor)
            ray.get(board.report.remote({"step": 3}, []))
            assert _wait_for(lambda: 3 in calls)
            # The watcher survived the sink's error: the next step still reaches it.
            ray.get(board.report.remote({"step": 5}, [("checkpoint written at step 5", False)]))
            assert _wait_for(lambda: 5 in calls)
            # A late message from an earlier step never moves the numbers back; its note still counts.
            ray.get(board.report.remote({"step": 4, "loss": 9.0}, [("skipped 1 update(s)", True)]))
            numbers, notes, _ = ray.get(board.read.remote(0))
            assert numbers["step"] == 5 and "loss" not in numbers and len(notes) == 2
    assert [c for c in calls if c] == [3, 5, 5]
