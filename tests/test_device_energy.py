"""The training GPUs' energy: each rank's counter, summed over ranks and over resumed attempts.

No GPU here, so each rank's device counter is a stand-in that advances by (rank + 1) joules per
reading; everything else (Lightning's DDP over gloo, the collective reduction at checkpoint time,
the state in the checkpoint, the resume) is the real path. On a machine without NVML the real
reader says so by returning None, and the sum is then unknown rather than partial.
"""

from __future__ import annotations

import lightning as L
import pytest
import torch

from tasks.training.device_energy import STATE_KEY, DeviceEnergy, nvml_reader

pytestmark = pytest.mark.slow


class _Counter:
    """Rank r's stand-in counter: r + 1 joules more at every reading (picklable for ddp_spawn)."""

    def __init__(self, missing_on_rank: int | None = None, failing_on_rank: int | None = None) -> None:
        self.missing_on_rank, self.failing_on_rank = missing_on_rank, failing_on_rank

    def __call__(self):
        rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
        if rank == self.missing_on_rank:
            return None
        calls = [0]

        def read() -> float:
            calls[0] += 1
            if rank == self.failing_on_rank and calls[0] > 1:
                raise RuntimeError("NVML: GPU is lost")  # the driver's error, mid-run
            return float(calls[0] * (rank + 1))
        return read


class _Tiny(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(16, 4))
        return torch.utils.data.DataLoader(data, batch_size=4)


class _SaveAtEnd(L.Callback):
    """Every rank writes the checkpoint together, as Werk's CheckpointReporter does."""

    def __init__(self, path: str) -> None:
        self.path = path

    def on_train_end(self, trainer, pl_module) -> None:
        trainer.save_checkpoint(self.path)


def _fit(path: str, counter: _Counter, steps: int, resume: str | None = None, share: float = 1.0) -> dict:
    trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp_spawn", max_steps=steps, logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[DeviceEnergy(counter, share), _SaveAtEnd(path)])
    trainer.fit(_Tiny(), ckpt_path=resume, weights_only=False)
    return torch.load(path, weights_only=True)["callbacks"][STATE_KEY]


def test_device_energy_is_summed_over_ranks_and_attempts(tmp_path):
    first = str(tmp_path / "first.ckpt")
    # Rank 0 read 1 then 2 (+1 J), rank 1 read 2 then 4 (+2 J): 3 J in all.
    assert _fit(first, _Counter(), steps=2) == {"joules": 3.0}
    # A resumed attempt counts on from the checkpoint's total.
    assert _fit(str(tmp_path / "second.ckpt"), _Counter(), steps=4, resume=first) == {"joules": 6.0}
    # One rank without a counter, or whose counter fails mid-run: the total is unknown, not the
    # other ranks' share alone, and no rank misses the reduction (the run finishes).
    assert _fit(str(tmp_path / "partial.ckpt"), _Counter(missing_on_rank=1), steps=2) == {"joules": None}
    assert _fit(str(tmp_path / "lost.ckpt"), _Counter(failing_on_rank=1), steps=2) == {"joules": None}
    # Two ranks on half a GPU each read one device's counter: each counts its half.
    assert _fit(str(tmp_path / "shared.ckpt"), _Counter(), steps=2, share=0.5) == {"joules": 1.5}


def test_without_nvml_the_reader_says_there_is_none():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the reader is checked on it by the GPU benchmark")
    assert nvml_reader() is None
