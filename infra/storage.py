"""Where Werk keeps its data: local disk or any S3-compatible store, through fsspec/s3fs.

Every stage writes through these helpers so that one code path serves `./.werk/store` on a laptop
and `s3://bucket/prefix` on a cluster. S3 endpoints and keys come from the standard AWS variables
(`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, ...) and never appear in recipes, params or logs.
"""

from __future__ import annotations

import json
import os
import posixpath
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator, Mapping

import fsspec

WERK_HOME_ENV = "WERK_HOME"


def werk_home(environ: Mapping[str, str] | None = None) -> Path:
    """Root of everything the embedded default keeps on this machine (`./.werk` by default)."""
    return Path((os.environ if environ is None else environ).get(WERK_HOME_ENV, ".werk")).expanduser().resolve()


def storage_root(recipe_root: str | None = None) -> str:
    """Where stage outputs go: the recipe's root, else the environment's (a team stack points every
    run at its S3), else `WERK_HOME/store`. A local root is made absolute: Ray workers and Prefect's
    result storage do not share this process's working directory."""
    root = recipe_root or os.environ.get("WERK_STORAGE_ROOT") or str(werk_home() / "store")
    return root if is_remote(root) else str(Path(root).expanduser().resolve())


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def s3_endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")


def storage_options(uri: str) -> dict[str, Any]:
    if uri.startswith("s3://"):
        endpoint = s3_endpoint()
        # s3fs does not read MLflow's endpoint variable; pass the endpoint explicitly.
        opts: dict[str, Any] = {"use_listings_cache": False}
        if endpoint:
            opts["client_kwargs"] = {"endpoint_url": endpoint}
        return opts
    return {}


def filesystem(uri: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The fsspec filesystem for `uri` and the path to hand it."""
    fs, path = fsspec.core.url_to_fs(uri, **storage_options(uri))
    return fs, path


def join(base: str, *parts: str) -> str:
    if is_remote(base):
        return posixpath.join(base, *parts)
    return str(Path(base, *parts))


def parent(uri: str) -> str:
    """The folder holding `uri`."""
    if is_remote(uri):
        return posixpath.dirname(uri.rstrip("/"))
    return str(Path(uri).parent)


def remove_tree(uri: str) -> None:
    """Delete a file or folder (and what it holds); nothing to do if it is not there."""
    fs, path = filesystem(uri)
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass


def sha256(uri: str) -> str:
    """The sha256 of a file's bytes, read in 8 MB chunks."""
    import hashlib

    fs, path = filesystem(uri)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as fh:
        while chunk := fh.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def exists(uri: str) -> bool:
    fs, path = filesystem(uri)
    return fs.exists(path)


@contextmanager
def open_write(uri: str, mode: str = "wb") -> Iterator[IO]:
    """Write `uri` so that readers never see a partial file.

    Local files are written beside the target and renamed into place (atomic on POSIX). An S3
    object becomes visible only when its upload completes, which gives the same guarantee.
    """
    if is_remote(uri):
        fs, path = filesystem(uri)
        fh = fs.open(path, mode)
        try:
            yield fh
        except BaseException:
            # Closing would upload what was written so far: a partial object under the final name.
            discard = getattr(fh, "discard", None) or getattr(getattr(fh, "buffer", None), "discard", None)
            if discard:
                discard()
            raise
        fh.close()
        return
    target = Path(uri.removeprefix("file://"))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(uri: str, obj: Any) -> None:
    with open_write(uri, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
        fh.write("\n")


def read_json(uri: str) -> Any:
    return json.loads(read_text(uri))


def read_text(uri: str) -> str:
    fs, path = filesystem(uri)
    with fs.open(path, "r") as fh:
        return fh.read()


def upload_file(local: str | Path, uri: str) -> None:
    with open(local, "rb") as src, open_write(uri) as dst:
        while chunk := src.read(8 << 20):
            dst.write(chunk)


def local_copy(uri: str, cache_dir: Path | None = None) -> Path:
    """A local path holding `uri`'s bytes: the file itself when local, else a cached download.

    Token shards are memory-mapped, which needs a local file; remote shards are fetched once per
    machine into `WERK_HOME/cache`, keyed by URI, and published atomically.
    """
    if not is_remote(uri):
        return Path(uri.removeprefix("file://"))
    import hashlib

    cache_dir = cache_dir or werk_home() / "cache"
    key = hashlib.sha256(uri.encode()).hexdigest()[:24]
    target = cache_dir / key / posixpath.basename(uri)
    if target.exists():
        return target
    fs, path = filesystem(uri)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
    try:
        fs.get_file(path, str(tmp))
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def write_private_file(path: Path, text: str) -> None:
    """A local file with mode 0600 from the start: never readable by others, not even briefly."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # the mode above applies only when the file is new
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
