"""The token shard file format.

A shard is a 64-byte little-endian header followed by the tokens, so it can be memory-mapped:

    offset  size  field
    0       8     magic       b"WERKTOK\\0"
    8       4     version     uint32, currently 1
    12      4     itemsize    uint32: 2 (uint16 tokens) or 4 (uint32 tokens)
    16      8     n_tokens    uint64
    24      8     n_docs      uint64, documents in this shard (each ends with <|endoftext|>)
    32      4     vocab_size  uint32
    36      28    reserved    zeros
    64      ...   tokens      n_tokens * itemsize bytes

Tokens are uint16 when the vocabulary fits (< 65,536 ids), else uint32. Readers check the magic,
the version, the item size and that the file length matches n_tokens, and refuse anything else.
The document index (doc id -> shard, offset, length) is `index/` beside the shards.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAGIC = b"WERKTOK\0"
VERSION = 1
HEADER_SIZE = 64
_STRUCT = struct.Struct("<8sIIQQI")


class ShardFormatError(ValueError):
    """A file that is not a valid Werk token shard."""


@dataclass(frozen=True)
class ShardHeader:
    itemsize: int
    n_tokens: int
    n_docs: int
    vocab_size: int
    version: int = VERSION

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint16 if self.itemsize == 2 else np.uint32)

    def pack(self) -> bytes:
        head = _STRUCT.pack(MAGIC, self.version, self.itemsize, self.n_tokens, self.n_docs, self.vocab_size)
        return head.ljust(HEADER_SIZE, b"\0")

    @classmethod
    def unpack(cls, data: bytes, name: str = "shard") -> ShardHeader:
        if len(data) < HEADER_SIZE:
            raise ShardFormatError(f"{name}: {len(data)} bytes is shorter than the {HEADER_SIZE}-byte header")
        magic, version, itemsize, n_tokens, n_docs, vocab = _STRUCT.unpack_from(data)
        if magic != MAGIC:
            raise ShardFormatError(f"{name}: bad magic {magic!r}, not a Werk token shard")
        if version != VERSION:
            raise ShardFormatError(f"{name}: format version {version}, this Werk reads {VERSION}")
        if itemsize not in (2, 4):
            raise ShardFormatError(f"{name}: unsupported token size {itemsize}")
        return cls(itemsize=itemsize, n_tokens=n_tokens, n_docs=n_docs, vocab_size=vocab, version=version)


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def write_shard(fh: BinaryIO, tokens: np.ndarray, n_docs: int, vocab_size: int) -> ShardHeader:
    dtype = token_dtype(vocab_size)
    if tokens.size and int(tokens.max()) >= vocab_size:
        raise ShardFormatError(f"token id {int(tokens.max())} outside vocabulary of {vocab_size}")
    header = ShardHeader(itemsize=dtype.itemsize, n_tokens=int(tokens.size), n_docs=n_docs, vocab_size=vocab_size)
    fh.write(header.pack())
    fh.write(np.ascontiguousarray(tokens, dtype=dtype.newbyteorder("<")).tobytes())
    return header


def open_shard(path: str | Path) -> tuple[ShardHeader, np.memmap]:
    """Validate a local shard and memory-map its tokens (read-only)."""
    path = Path(path)
    with open(path, "rb") as fh:
        header = ShardHeader.unpack(fh.read(HEADER_SIZE), name=str(path))
    expected = HEADER_SIZE + header.n_tokens * header.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise ShardFormatError(
            f"{path}: {actual} bytes but the header promises {expected} (truncated or corrupt)"
        )
    tokens = np.memmap(
        path, dtype=header.dtype.newbyteorder("<"), mode="r", offset=HEADER_SIZE, shape=(header.n_tokens,)
    )
    return header, tokens


def verify_shard(path: str | Path, sha256: str | None = None, vocab_size: int | None = None) -> ShardHeader:
    """Check a local shard against its manifest before training reads it.

    Raises ShardFormatError naming the shard when its sha256 differs from the manifest's, when it
    was encoded for another vocabulary, or when a token id lies outside the vocabulary.
    """
    import hashlib

    header, tokens = open_shard(path)
    if sha256 is not None:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(8 << 20):
                digest.update(chunk)
        if digest.hexdigest() != sha256:
            raise ShardFormatError(f"{path}: sha256 {digest.hexdigest()[:12]}… does not match the manifest's {sha256[:12]}…")
    if vocab_size is not None:
        if header.vocab_size != vocab_size:
            raise ShardFormatError(f"{path}: encoded for a vocabulary of {header.vocab_size}, expected {vocab_size}")
        if tokens.size and int(tokens.max()) >= vocab_size:
            raise ShardFormatError(f"{path}: token id {int(tokens.max())} outside the vocabulary of {vocab_size}")
    return header
