"""Turn input files into raw records, one per document, never raising on bad data.

Each record carries its location (`uri#line` or `uri`) so a rejected document can be found again.
A file that cannot be read, or that ends early (a truncated `.gz`), yields an error record for
the part that was lost, so counts always reconcile.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Iterator

from infra import storage
from tasks.ingest.config import SourceConfig

SUFFIXES = (".txt", ".jsonl", ".jsonl.gz")


@dataclass(frozen=True)
class RawRecord:
    source: str
    location: str
    raw: bytes | None  # UTF-8 bytes as found, or None when `error` says why not
    external_id: str | None = None
    error: str | None = None
    detail: str = ""


def list_files(src: SourceConfig) -> list[tuple[str, dict]]:
    """Every supported file under a source, sorted, with its size and version tag."""
    return scan_source(src)[0]


def scan_source(src: SourceConfig) -> tuple[list[tuple[str, dict]], list[str]]:
    """Supported files (sorted, with size and version tag) and the files skipped for their type.

    Raises FileNotFoundError naming the source when it matches nothing, so a typo in a recipe is
    a clear error rather than an empty corpus.
    """
    fs, path = storage.filesystem(src.uri)
    protocol = src.uri.split("://")[0] + "://" if storage.is_remote(src.uri) else ""
    if any(ch in path for ch in "*?["):
        found = fs.glob(path, detail=True)
        paths = {p: info for p, info in found.items() if info.get("type") != "directory"}
    elif fs.isdir(path):
        paths = fs.find(path, detail=True)
    elif fs.exists(path):
        paths = {path: fs.info(path)}
    else:
        raise FileNotFoundError(f"source {src.name!r}: nothing at {src.uri}")
    files, ignored = [], []
    for p, info in sorted(paths.items()):
        if p.endswith(SUFFIXES):
            tag = info.get("ETag") or info.get("mtime") or info.get("LastModified") or ""
            files.append((protocol + p, {"size": info.get("size"), "tag": str(tag)}))
        else:
            ignored.append(protocol + p)
    if not files:
        raise FileNotFoundError(
            f"source {src.name!r}: no {', '.join(SUFFIXES)} files at {src.uri}"
        )
    return files, ignored


def read_file(src: SourceConfig, uri: str) -> Iterator[RawRecord]:
    try:
        fs, path = storage.filesystem(uri)
        with fs.open(path, "rb") as fh:
            if uri.endswith(".txt"):
                yield RawRecord(src.name, uri, fh.read())
            else:
                stream = gzip.open(fh, "rb") if uri.endswith(".gz") else fh
                yield from _read_jsonl(src, uri, stream)
    except (OSError, EOFError) as exc:
        yield RawRecord(src.name, uri, None, error="unreadable", detail=f"{type(exc).__name__}: {exc}")


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
        text = obj.get(src.text_field) if isinstance(obj, dict) else None
        if not isinstance(text, str):
            yield RawRecord(
                src.name, loc, None, error="missing_text", detail=f"no string field {src.text_field!r}"
            )
            continue
        ext = obj.get(src.id_field) if src.id_field else None
        yield RawRecord(src.name, loc, text.encode("utf-8", "surrogatepass"), str(ext) if ext else None)
