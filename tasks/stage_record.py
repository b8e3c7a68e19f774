"""The record a finished stage publishes as its `_SUCCESS.json`: one typed, versioned contract.

Each stage owns its record (`tasks/<stage>/record.py`, a subclass of `StageRecord`). The record is
what the next stage reads, what the flows pass between Prefect tasks, what the MLflow stage run
logs, and what lineage, erasure and the generated cards rely on, so a reader sees a stage's
contract in one place instead of a nested dict with string keys.

Versioning: `record_version` says which layout a record has. Records written before it existed
have the layout of version 1 and read as such. Version 2 adds `inputs` (the keys of the stage
outputs a stage was made from) and each stage's lineage fields; fields a version added have
defaults, so older records read, with those fields empty. A record newer than this Werk knows is refused with
a message naming the stage, the version found and the version understood, never half-read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from infra import storage

MARKER = "_SUCCESS.json"


class Record(BaseModel):
    """Base of every part of a stage record: frozen, and refusing fields it does not declare, so a
    stage that starts writing something new must declare it here first."""

    # A NaN or infinite metric (a diverged step) is written as JSON's NaN/Infinity, which Python reads
    # back, rather than null, which a float field would refuse: a record must always read again.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_inf_nan="constants")


class Address(Record):
    """What a stage output's key hashes (`tasks/artifacts.py`): with it, the key of the same stage
    on other inputs is computed without the recipe (an erasure rebuild does so). Small: configs and
    the keys of inputs, never file lists (the ingest stage hashes those into `inputs.base`)."""

    version: int
    config: Any
    inputs: dict[str, Any]


class ComputeUse(Record):
    """What making a stage output cost (`tasks/tracking/compute.py` measures it)."""

    wall_s: float
    cpu_s: float  # the driver and the stage's Ray tasks (training workers: see device_s)
    device_s: float = 0.0  # training only: devices (GPUs, or workers on CPU) x wall seconds
    device: str | None = None  # "gpu" or "cpu-worker"
    flops: float | None = None  # training only
    energy_j: float | None = None  # the host's, measured, where a counter was read
    energy_source: str | None = None  # "rapl" or "codecarbon"
    energy_method: str | None = None  # how the host's figure was obtained, in words
    grid_gco2_per_kwh: float | None = None  # CodeCarbon's intensity for the configured country
    device_energy_j: float | None = None  # training GPUs, all ranks and attempts (NVML)
    device_energy_source: str | None = None  # "nvml"


class RecordError(ValueError):
    """A stage record that this Werk cannot read: a newer layout, another stage, or a broken file."""


R = TypeVar("R", bound="StageRecord")


class StageRecord(Record):
    STAGE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    record_version: int = 1
    stage: str
    key: str
    uri: str
    completed_at: datetime
    # The stage outputs this one was made from: stage -> key (version 2 on; empty in older records).
    inputs: dict[str, str] = {}
    address: Address | None = None  # version 2 on
    compute: ComputeUse | None = None  # what making it cost (version 2 on; a rebuilt output: the rebuild)

    def path(self, *parts: str) -> str:
        return storage.join(self.uri, *parts)

    @classmethod
    def parse(cls: type[R], data: dict[str, Any], where: str = "") -> R:
        """The record in `data` (a `_SUCCESS.json`'s content), checked against this stage's layout."""
        where = where or data.get("uri", "?")
        version = data.get("record_version", 1)
        if data.get("stage") != cls.STAGE:
            raise RecordError(f"{where} holds a record of stage {data.get('stage')!r}, not {cls.STAGE!r}")
        if not isinstance(version, int) or version > cls.VERSION:
            raise RecordError(
                f"{where}: the {cls.STAGE} record has version {version}, and this Werk reads {cls.STAGE} records "
                f"up to version {cls.VERSION}; upgrade Werk, or rerun the stage with this one")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise RecordError(f"{where}: the {cls.STAGE} record (version {version}) does not match its layout: "
                              f"{exc}") from exc

    @classmethod
    def read(cls: type[R], uri: str) -> R:
        """The record published in the stage output folder `uri`."""
        marker = storage.join(uri, MARKER)
        return cls.parse(storage.read_json(marker), marker)
