"""Content-addressed stage outputs.

A stage's output lives at `<root>/<stage>/<key>/`, where the key hashes the stage's name, code
version, config and the keys of its inputs. A stage is done when its `_SUCCESS.json` marker exists;
the marker is written last, so a crash mid-stage leaves no output that readers would trust, and a
rerun with the same inputs finds the marker and does nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel

from infra import storage

MARKER = "_SUCCESS.json"


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

    @classmethod
    def at(cls, root: str, stage: str, version: int, config: Any, inputs: dict[str, Any]) -> StageOutput:
        key = content_key(stage, version, config, inputs)
        return cls(stage=stage, key=key, uri=storage.join(root, stage, key))

    def path(self, *parts: str) -> str:
        return storage.join(self.uri, *parts)

    def is_complete(self) -> bool:
        return storage.exists(self.path(MARKER))

    def publish(self, summary: dict[str, Any]) -> dict[str, Any]:
        record = {
            "stage": self.stage,
            "key": self.key,
            "uri": self.uri,
            "completed_at": datetime.now(timezone.utc).isoformat(),
            **summary,
        }
        storage.write_json(self.path(MARKER), record)
        return record

    def completion(self) -> dict[str, Any]:
        return storage.read_json(self.path(MARKER))
