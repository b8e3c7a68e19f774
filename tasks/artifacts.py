"""Content-addressed stage outputs.

A stage's output lives at `<root>/<stage>/<key>/`, where the key hashes the stage's name, code
version, config and the keys of its inputs. A stage is done when its `_SUCCESS.json` marker exists;
the marker is written last, so a crash mid-stage leaves no output that readers would trust, and a
rerun with the same inputs finds the marker and does nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

from pydantic import BaseModel

from infra import storage
from tasks.stage_record import MARKER, Address, StageRecord

R = TypeVar("R", bound=StageRecord)

# The stages whose outputs others are made from, as they name each other in their inputs.
STAGES = ("ingest", "tokenizer", "encode", "pretrain", "evaluate")


def _canonical(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    return obj


def content_key(stage: str, version: int, config: Any, inputs: dict[str, Any]) -> str:
    payload = json.dumps(
        {"stage": stage, "version": version, "config": _canonical(config), "inputs": inputs},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class StageOutput:
    """Where one stage invocation writes, and how it tells the world it is finished."""

    stage: str
    key: str
    uri: str
    # The keys of the stage outputs this one is made from, by stage: what lineage walks back along.
    upstream: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    address: Address | None = field(default=None, compare=False)

    @classmethod
    def at(cls, root: str, stage: str, version: int, config: Any, inputs: dict[str, Any]) -> StageOutput:
        key = content_key(stage, version, config, inputs)
        upstream = tuple(sorted((name, value) for name, value in inputs.items() if name in STAGES and isinstance(value, str)))
        address = Address(version=version, config=_canonical(config), inputs=inputs)
        return cls(stage=stage, key=key, uri=storage.join(root, stage, key), upstream=upstream, address=address)

    @classmethod
    def of(cls, record: StageRecord) -> StageOutput:
        """The output a published record describes."""
        return cls(stage=record.stage, key=record.key, uri=record.uri, upstream=tuple(sorted(record.inputs.items())),
                   address=record.address)

    def rekeyed(self, root: str, **inputs: Any) -> StageOutput:
        """The same stage, config and code version on other inputs (an erasure's rebuilt outputs)."""
        if self.address is None:
            raise ValueError(f"{self.uri} has no address to rekey")
        return StageOutput.at(root, self.stage, self.address.version, self.address.config,
                              {**self.address.inputs, **inputs})

    def path(self, *parts: str) -> str:
        return storage.join(self.uri, *parts)

    def is_complete(self) -> bool:
        return storage.exists(self.path(MARKER))

    def publish(self, record_type: type[R], **fields: Any) -> R:
        """Validate the stage's record and write it as the marker, last: the output is now done."""
        from tasks.tracking.compute import so_far

        fields.setdefault("compute", so_far())  # what making it cost, when a meter runs (`measured`)
        record = record_type(record_version=record_type.VERSION, stage=self.stage, key=self.key, uri=self.uri,
                             completed_at=datetime.now(timezone.utc), inputs=dict(self.upstream), address=self.address,
                             **fields)
        storage.write_json(self.path(MARKER), record.model_dump(mode="json", by_alias=True))
        return record

    def read(self, record_type: type[R]) -> R:
        """The published record, typed (`StageRecord.read`)."""
        return record_type.read(self.uri)

    def completion(self) -> dict[str, Any]:
        """The published record as stored, untyped (for tools that only show it)."""
        return storage.read_json(self.path(MARKER))
