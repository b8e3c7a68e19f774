"""Turn input files into raw records, one per document, never raising on bad data.

Formats: `.txt` and `.md` (a file is a document), `.jsonl` (plain, `.gz` or `.zst`; a line is a
document), `.json` (an object or an array of objects), `.parquet` (a row is a document) and
datasets saved with HF `datasets.save_to_disk` (Arrow files beside a `state.json`).
Each record carries its location (`uri#line`, `uri#row`) so a rejected document can be found
again. A file that cannot be read, or that ends early (a truncated `.gz`), yields an error record
for the part that was lost, so counts always reconcile.
"""

from __future__ import annotations

import gzip
import io
import json
import posixpath
from dataclasses import dataclass, field
from typing import Any, Iterator

from infra import storage
from tasks.ingest.config import SourceConfig

SUFFIXES = {
    ".txt": "txt", ".md": "md", ".jsonl": "jsonl", ".jsonl.gz": "jsonl", ".jsonl.zst": "jsonl",
    ".json": "json", ".parquet": "parquet", ".arrow": "hf_dataset",
}


@dataclass(frozen=True)
class RawRecord:
    source: str
    location: str
    raw: bytes | str | None  # text as found, or None when `error` says why not
    external_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    detail: str = ""


def file_format(uri: str, src: SourceConfig) -> str | None:
    if src.format != "auto":
        return src.format
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if uri.endswith(suffix):
            return SUFFIXES[suffix]
    return None


def scan_source(src: SourceConfig) -> tuple[list[tuple[str, dict]], list[str]]:
    """Supported files (sorted, with size and version tag) and the files skipped for their type.

    Raises FileNotFoundError naming the source when it matches nothing, so a typo in a recipe is
    a clear error rather than an empty corpus.
    """
    fs, path = storage.filesystem(src.uri)
    protocol = src.uri.split("://")[0] + "://" if storage.is_remote(src.uri) else ""
    try:
        if any(ch in path for ch in "*?["):
            found = fs.glob(path, detail=True)
            paths = {p: info for p, info in found.items() if info.get("type") != "directory"}
        elif fs.isdir(path):
            paths = fs.find(path, detail=True)
        elif fs.exists(path):
            paths = {path: fs.info(path)}
        else:
            raise FileNotFoundError(f"source {src.name!r}: nothing at {src.uri}")
    except PermissionError as exc:
        raise FileNotFoundError(f"source {src.name!r}: cannot list {src.uri}: {exc}") from None
    hf_dirs = {posixpath.dirname(p) for p in paths if posixpath.basename(p) == "state.json"}
    files, ignored = [], []
    for p, info in sorted(paths.items()):
        fmt = file_format(p, src)
        in_hf = posixpath.dirname(p) in hf_dirs
        if fmt == "hf_dataset" and not in_hf and src.format != "hf_dataset":
            fmt = None
        if in_hf and fmt != "hf_dataset":
            continue  # state.json and dataset_info.json of a saved dataset
        if fmt:
            tag = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
            files.append((protocol + p, {"size": info.get("size"), "tag": str(tag)}))
        else:
            ignored.append(protocol + p)
    if not files:
        raise FileNotFoundError(f"source {src.name!r}: no supported files ({', '.join(SUFFIXES)}) at {src.uri}")
    return files, ignored


def list_files(src: SourceConfig) -> list[tuple[str, dict]]:
    return scan_source(src)[0]


def read_file(src: SourceConfig, uri: str) -> Iterator[RawRecord]:
    fmt = file_format(uri, src)
    try:
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as fh:
            if fmt in ("txt", "md"):
                yield RawRecord(src.name, uri, fh.read())
            elif fmt == "jsonl":
                yield from _read_jsonl(src, uri, _decompressed(fh, uri))
            elif fmt == "json":
                yield from _read_json(src, uri, fh.read())
            elif fmt == "parquet":
                yield from _read_parquet(src, uri, fh)
            elif fmt == "hf_dataset":
                yield from _read_arrow(src, uri, fh)
            else:
                yield RawRecord(src.name, uri, None, error="unsupported_format", detail=str(fmt))
    except Exception as exc:  # noqa: BLE001 - any failure to read becomes a quarantined record
        yield RawRecord(src.name, uri, None, error="unreadable", detail=f"{type(exc).__name__}: {exc}")


def _decompressed(fh, uri: str):
    if uri.endswith(".gz"):
        return gzip.open(fh, "rb")
    if uri.endswith(".zst"):
        import zstandard

        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh))
    return fh


def _record(src: SourceConfig, loc: str, obj: Any) -> RawRecord:
    if not isinstance(obj, dict):
        return RawRecord(src.name, loc, None, error="missing_text", detail="record is not an object")
    text = obj.get(src.text_field)
    if not isinstance(text, str):
        return RawRecord(src.name, loc, None, error="missing_text", detail=f"no string field {src.text_field!r}")
    ext = obj.get(src.id_field) if src.id_field else None
    meta = {k: obj[k] for k in src.metadata_fields if k in obj}
    return RawRecord(src.name, loc, text, str(ext) if ext is not None else None, meta)


def _read_jsonl(src: SourceConfig, uri: str, stream) -> Iterator[RawRecord]:
    for lineno, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        loc = f"{uri}#{lineno}"
        try:
            obj = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError as exc:
            yield RawRecord(src.name, loc, None, error="invalid_utf8", detail=str(exc))
            continue
        except json.JSONDecodeError as exc:
            yield RawRecord(src.name, loc, None, error="malformed_json", detail=str(exc))
            continue
        yield _record(src, loc, obj)


def _read_json(src: SourceConfig, uri: str, data: bytes) -> Iterator[RawRecord]:
    try:
        obj = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        yield RawRecord(src.name, uri, None, error="invalid_utf8", detail=str(exc))
        return
    except json.JSONDecodeError as exc:
        yield RawRecord(src.name, uri, None, error="malformed_json", detail=str(exc))
        return
    items = obj if isinstance(obj, list) else [obj]
    for i, item in enumerate(items):
        yield _record(src, f"{uri}#{i}", item)


def _read_parquet(src: SourceConfig, uri: str, fh) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(fh)
    columns = [c for c in {src.text_field, src.id_field, *src.metadata_fields} if c and c in pf.schema_arrow.names]
    if src.text_field not in columns:
        yield RawRecord(src.name, uri, None, error="missing_text", detail=f"no column {src.text_field!r}")
        return
    row = 0
    for batch in pf.iter_batches(columns=columns, batch_size=1024):
        for obj in batch.to_pylist():
            yield _record(src, f"{uri}#{row}", obj)
            row += 1


def _read_arrow(src: SourceConfig, uri: str, fh) -> Iterator[RawRecord]:
    import pyarrow.ipc as ipc

    data = fh.read()
    try:
        reader = ipc.open_stream(data)  # datasets.save_to_disk writes the Arrow stream format
    except Exception:  # noqa: BLE001
        reader = ipc.open_file(data)
    row = 0
    batches = reader if hasattr(reader, "__iter__") else (reader.get_batch(i) for i in range(reader.num_record_batches))
    for batch in batches:
        for obj in batch.to_pylist():
            yield _record(src, f"{uri}#{row}", obj)
            row += 1
