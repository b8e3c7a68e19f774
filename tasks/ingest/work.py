"""The ingest stage's working files, and the steps that produce them, resumable one by one.

Everything that grows with the number of documents (candidates, signatures, dedup keys, duplicate
pairs, verdicts) lives in files under `<output>/_work/`, written and read by Ray tasks; the driver
only holds file lists, unit plans, counters and URIs. The output folder is content-addressed, so a
rerun of the same ingest finds the same `_work/`: every step writes its files first and its marker
(`done/<step>/NNNNN.json`, its small result) last, and a rerun returns the marker's result instead
of doing the step again. A killed ingest therefore loses only the steps that were running.

Positions: a candidate's canonical position is `unit << 32 | index in the unit`, so sorting by it
is sorting by (source, file, record): the corpus's canonical order.

Ranges: the corpus-wide results (duplicate verdicts) are gathered per range of consecutive units,
`partitions` ranges at most, so that each unit's writer reads one small file.
"""

from __future__ import annotations

import functools
import posixpath
from dataclasses import dataclass
from typing import Any, Callable

import pyarrow as pa
import pyarrow.parquet as pq

from infra import storage

UNIT_BITS = 32


def position(unit: int, index: int) -> int:
    return (unit << UNIT_BITS) | index


def unit_of(position: int) -> int:
    return position >> UNIT_BITS


@dataclass(frozen=True)
class Work:
    uri: str
    units: int
    partitions: int

    @property
    def range_size(self) -> int:
        return max(1, -(-self.units // self.partitions))

    @property
    def ranges(self) -> int:
        return -(-self.units // self.range_size) if self.units else 0

    def range_of(self, unit: int) -> int:
        return unit // self.range_size

    def range_units(self, r: int) -> range:
        return range(r * self.range_size, min(self.units, (r + 1) * self.range_size))

    def range_positions(self, r: int) -> tuple[int, int]:
        """[low, high) canonical positions of range `r`."""
        units = self.range_units(r)
        return position(units.start, 0), position(units.stop, 0)

    def path(self, *parts: str) -> str:
        return storage.join(self.uri, *parts)

    def unit_file(self, unit: int, kind: str, suffix: str = "parquet") -> str:
        return self.path("units", f"unit-{unit:05d}.{kind}.{suffix}")

    def shuffle_dir(self, partition: int, records: str = "keys") -> str:
        """A partition's shuffle files: `keys` (content hashes and LSH bands) or `ids`."""
        return self.path("shuffle", records, f"p-{partition:04d}")

    def shuffle_file(self, partition: int, unit: int, records: str = "keys") -> str:
        return storage.join(self.shuffle_dir(partition, records), f"unit-{unit:05d}.parquet")

    def marker(self, step: str, index: int) -> str:
        return self.path("done", step, f"{index:05d}.json")


def resumable(step: str) -> Callable[[Callable[..., dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Make `fn(work, index, ...)` a step that is done once: its JSON result is kept in the marker,
    written after everything the step writes, and returned on a rerun without doing the step."""
    def wrap(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        @functools.wraps(fn)
        def run(work: Work, index: int, *args: Any) -> dict[str, Any]:
            marker = work.marker(step, index)
            if storage.exists(marker):
                return storage.read_json(marker)
            result = fn(work, index, *args)
            storage.write_json(marker, result)
            return result
        return run
    return wrap


def list_files(uri: str) -> list[str]:
    """The files under a work folder, sorted (an absent folder has none), as URIs; never a
    half-written one (`storage.open_write` writes beside the target under a dot name)."""
    fs, path = storage.filesystem(uri)
    fs.invalidate_cache(path)  # a long-lived worker's listing cache would miss new files
    try:
        found = fs.find(path)
    except FileNotFoundError:
        return []
    prefix = uri.split("://")[0] + "://" if storage.is_remote(uri) else ""
    return sorted(prefix + p for p in found if not posixpath.basename(p).startswith("."))


def write_table(uri: str, table: pa.Table) -> str:
    """Write a Parquet file (atomically published); returns its sha256."""
    import hashlib
    import io

    buffer = io.BytesIO()  # one part in memory, as the table already is
    pq.write_table(table, buffer, compression="zstd")
    data = buffer.getvalue()
    with storage.open_write(uri) as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def read_table(uri: str | list[str], schema: pa.Schema | None = None, **kwargs: Any) -> pa.Table:
    """One Parquet file, or several read as one table in the order given (`schema` when the list
    may be empty)."""
    uris = [uri] if isinstance(uri, str) else uri
    tables = []
    for u in uris:
        fs, path = storage.filesystem(u)
        tables.append(pq.read_table(path, filesystem=fs, **kwargs))
    if not tables:
        if schema is None:
            raise ValueError("no files to read and no schema")
        return schema.empty_table()
    return pa.concat_tables(tables) if len(tables) > 1 else tables[0]
