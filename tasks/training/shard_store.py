"""Token shards for training workers: opened when first read, fetched into a bounded node cache,
checked once per node.

A training job names its shards with their token counts and sha256 (the encode manifest), so a
worker knows how many samples each holds without opening any: the time to the first step does not
grow with the corpus. A shard is made local only when a batch first reads from it:
- a shard on S3 is downloaded into the node's cache (`WERK_HOME/cache/shards`, shared by every
  worker of the node under a file lock) and published only when its sha256 and header match, so
  a file in the cache is a verified file. The cache keeps at most
  `limit_bytes`; the least recently used shards make room (a worker still reading one keeps its
  mapping: an unlinked file lives until its last map is closed).
- a local or shared-filesystem shard is read where it is; its verdict (sha256 checked) is kept in
  the node's cache with the file's size and modification time, so the next worker or run on the
  node does not read it again unless the file changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import posixpath
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from infra import storage
from tasks.encode.shard_format import ShardFormatError, verify_shard


STALE_DOWNLOAD_S = 3600  # a partial download older than this belongs to a worker that died


def touch(path: Path) -> None:
    """Mark a cached shard as in use (least recently used shards are evicted first)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        pass


@dataclass(frozen=True)
class Shard:
    uri: str
    tokens: int | None = None  # from the encode manifest; None: read from the shard's header
    sha256: str | None = None


def shards(uris: list[str], tokens: list[int] | None = None, sha256: list[str] | None = None) -> list[Shard]:
    return [Shard(u, t, s) for u, t, s in zip(uris, tokens or [None] * len(uris), sha256 or [None] * len(uris))]


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True)
class ShardStore:
    cache_dir: Path
    limit_bytes: int | None = None  # None: no limit
    vocab_size: int | None = None

    @classmethod
    def for_node(cls, limit_gb: float | None, vocab_size: int | None) -> ShardStore:
        return cls(storage.werk_home() / "cache" / "shards", int(limit_gb * 2**30) if limit_gb else None, vocab_size)

    def _key(self, uri: str) -> str:
        return hashlib.sha256(uri.encode()).hexdigest()[:24]

    def local(self, shard: Shard) -> Path:
        """A local, verified file with the shard's bytes."""
        if storage.is_remote(shard.uri):
            return self._fetched(shard)
        path = Path(shard.uri.removeprefix("file://"))
        self._checked(path, shard)
        return path

    def _checked(self, path: Path, shard: Shard) -> None:
        st = path.stat()
        verdict = self.cache_dir / "verified" / f"{self._key(str(path.resolve()))}.json"
        expected = {"sha256": shard.sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns, "vocab_size": self.vocab_size}
        try:
            if json.loads(verdict.read_text()) == expected:
                return
        except (OSError, ValueError):
            pass
        verify_shard(path, shard.sha256, self.vocab_size)
        verdict.parent.mkdir(parents=True, exist_ok=True)
        tmp = verdict.with_name(f".{verdict.name}.{uuid.uuid4().hex}")
        tmp.write_text(json.dumps(expected))
        os.replace(tmp, verdict)

    def _fetched(self, shard: Shard) -> Path:
        # Keyed by URI and content: a shard written again under the same name is fetched again.
        target = self.cache_dir / "files" / self._key(f"{shard.uri}#{shard.sha256}") / posixpath.basename(shard.uri)
        try:
            os.utime(target)  # most recently used (and present: another worker may have evicted it)
            return target
        except FileNotFoundError:
            pass
        with _locked(self.cache_dir / ".lock"):
            if target.exists():  # another worker of this node fetched it meanwhile
                os.utime(target)
                return target
            fs, path = storage.filesystem(shard.uri)
            size = fs.size(path)
            self._make_room(size)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                fs.get_file(path, str(tmp))
                try:
                    verify_shard(tmp, shard.sha256, self.vocab_size)
                except ShardFormatError as exc:
                    raise ShardFormatError(str(exc).replace(str(tmp), shard.uri)) from None
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
        return target

    def _make_room(self, size: int) -> None:
        """Remove least recently used shards until `size` more bytes fit (called under the lock)."""
        if self.limit_bytes is None:
            return
        if size > self.limit_bytes:
            raise ShardFormatError(f"a shard of {size:,} bytes does not fit the shard cache of {self.limit_bytes:,} bytes "
                                   "(compute.shard_cache_gb)")
        files, cutoff = [], time.time() - STALE_DOWNLOAD_S  # size: the shards cached on this node
        for p in (self.cache_dir / "files").glob("*/*"):
            st = p.stat()
            if not p.name.startswith("."):
                files.append((st.st_mtime_ns, st.st_size, p))
            elif st.st_mtime < cutoff:  # a download whose worker died: nobody will finish it
                p.unlink(missing_ok=True)
        used = sum(s for _, s, _ in files)
        for _, s, p in sorted(files):
            if used + size <= self.limit_bytes:
                break
            p.unlink(missing_ok=True)
            used -= s
