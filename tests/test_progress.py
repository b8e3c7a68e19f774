"""Training progress reaches the driver while training runs: rank 0 reports its optimizer step to a
Ray actor, a driver thread hands it on (to the Prefect progress artifact in the pipeline)."""

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


def test_steps_reach_the_driver_during_training():
    import lightning as L

    from infra.ray_cluster import ray_session
    from tasks.training.progress import ReportSteps, watch_steps

    heard: list[int] = []

    def on_step(step: int) -> None:
        heard.append(step)

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
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.01)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(64, 4)), batch_size=4)
    with ray_session(min_cpus=1):
        import ray

        with watch_steps("werk-progress-test", on_step, every_s=0.05) as actor:
            module = Tiny()
            trainer = L.Trainer(max_steps=40, accelerator="cpu", logger=False, enable_checkpointing=False,
                                enable_progress_bar=False, enable_model_summary=False,
                                callbacks=[ReportSteps(actor, ray.get_runtime_context().namespace, every_s=0.0)])
            trainer.fit(module, data)
    assert module.seen_mid_run and max(module.seen_mid_run) <= 20
    assert heard == sorted(set(heard)), "steps are handed on once each, in order"
    assert heard[-1] == 40  # the final step is heard when the watch ends


def test_a_failing_progress_callback_does_not_break_training():
    from infra.ray_cluster import ray_session
    from tasks.training.progress import watch_steps

    calls = []

    def broken(step: int) -> None:
        calls.append(step)
        raise RuntimeError("progress sink down")

    with ray_session(min_cpus=1):
        import ray

        with watch_steps("werk-progress-broken", broken, every_s=0.05) as actor:
            board = ray.get_actor(actor)
            ray.get(board.report.remote(3))
            assert _wait_for(lambda: 3 in calls)
            # The watcher survived the sink's error: the next step still reaches it.
            ray.get(board.report.remote(5))
            assert _wait_for(lambda: 5 in calls)
    assert [c for c in calls if c] == [3, 5]
