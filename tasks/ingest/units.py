"""Work units: groups of input files, in the corpus's canonical order, sized for one Ray task.

Small files are grouped until a unit holds `unit_bytes` of input, so a directory of thousands of
tiny files costs tens of tasks, not thousands. The grouping depends only on the sorted file list
and the config, never on the number of workers, so outputs are identical for any cluster size.
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.ingest.config import IngestConfig, SourceConfig


@dataclass(frozen=True)
class Unit:
    index: int
    source: SourceConfig
    files: tuple[str, ...]


def plan_units(cfg: IngestConfig, files: dict[str, list[tuple[str, dict]]]) -> list[Unit]:
    units: list[Unit] = []
    for src in cfg.sources:
        batch: list[str] = []
        size = 0
        for uri, info in files[src.name]:
            batch.append(uri)
            size += int(info.get("size") or 0)
            if size >= cfg.unit_bytes:
                units.append(Unit(len(units), src, tuple(batch)))
                batch, size = [], 0
        if batch:
            units.append(Unit(len(units), src, tuple(batch)))
    return units
