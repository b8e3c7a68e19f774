import io

import numpy as np
import pytest

from tasks.encode.shard_format import HEADER_SIZE, MAGIC, ShardFormatError, open_shard, token_dtype, write_shard


def _write(path, tokens, vocab):
    buf = io.BytesIO()
    header = write_shard(buf, np.asarray(tokens), n_docs=1, vocab_size=vocab)
    path.write_bytes(buf.getvalue())
    return header


def test_roundtrip_uint16(tmp_path):
    p = tmp_path / "s.bin"
    header = _write(p, [0, 5, 65535, 7], 65536)
    assert header.itemsize == 2
    h, tokens = open_shard(p)
    assert h == header and tokens.tolist() == [0, 5, 65535, 7]
    assert p.stat().st_size == HEADER_SIZE + 4 * 2
    assert p.read_bytes()[:8] == MAGIC


def test_large_vocab_uses_uint32(tmp_path):
    p = tmp_path / "s.bin"
    _write(p, [70000, 1], 100_000)
    h, tokens = open_shard(p)
    assert h.itemsize == 4 and tokens.tolist() == [70000, 1]
    assert token_dtype(65536) == np.uint16 and token_dtype(65537) == np.uint32


def test_token_outside_vocab_is_refused(tmp_path):
    with pytest.raises(ShardFormatError, match="outside"):
        _write(tmp_path / "s.bin", [10], 10)


def test_bad_magic_is_refused(tmp_path):
    p = tmp_path / "s.bin"
    _write(p, [1, 2], 100)
    data = bytearray(p.read_bytes())
    data[0:8] = b"NOTWERK!"
    p.write_bytes(bytes(data))
    with pytest.raises(ShardFormatError, match="magic"):
        open_shard(p)


def test_unknown_version_is_refused(tmp_path):
    p = tmp_path / "s.bin"
    _write(p, [1, 2], 100)
    data = bytearray(p.read_bytes())
    data[8] = 99
    p.write_bytes(bytes(data))
    with pytest.raises(ShardFormatError, match="version 99"):
        open_shard(p)


def test_truncated_shard_is_refused(tmp_path):
    p = tmp_path / "s.bin"
    _write(p, list(range(50)), 100)
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(ShardFormatError, match="truncated"):
        open_shard(p)


def test_verify_against_manifest(tmp_path):
    import hashlib

    from tasks.encode.shard_format import verify_shard

    p = tmp_path / "s.bin"
    _write(p, [1, 2, 3], 100)
    digest = hashlib.sha256(p.read_bytes()).hexdigest()
    assert verify_shard(p, digest, 100).n_tokens == 3
    with pytest.raises(ShardFormatError, match="s.bin: sha256"):
        verify_shard(p, "0" * 64, 100)
    with pytest.raises(ShardFormatError, match="vocabulary of 100, expected 50"):
        verify_shard(p, digest, 50)
    data = bytearray(p.read_bytes())
    data[HEADER_SIZE:HEADER_SIZE + 2] = (999).to_bytes(2, "little")  # a token id beyond the vocabulary
    p.write_bytes(bytes(data))
    with pytest.raises(ShardFormatError, match="token id 999 outside"):
        verify_shard(p, None, 100)
