"""Weights as safetensors, sharded with an index above a size, as `from_pretrained` expects."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"


def write(tensors: dict[str, torch.Tensor], out: Path, max_shard_bytes: int) -> list[str]:
    """Write `tensors` into `out` (one file, or shards of at most `max_shard_bytes` each with an
    index naming each tensor's shard); the file names. Memory: the tensors already held."""
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name in sorted(tensors):
        t = tensors[name]
        nbytes = t.numel() * t.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = t
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], str(out / SINGLE), metadata={"format": "pt"})
        return [SINGLE]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    for name, shard in zip(names, shards):
        save_file(shard, str(out / name), metadata={"format": "pt"})
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total},
             "weight_map": {t: name for name, shard in zip(names, shards) for t in shard}}
    (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")
    return names + [INDEX]


def _files(folder: Path) -> list[str]:
    if (folder / INDEX).exists():
        return sorted(set(json.loads((folder / INDEX).read_text())["weight_map"].values()))
    if (folder / SINGLE).exists():
        return [SINGLE]
    raise FileNotFoundError(f"{folder} has no {SINGLE} or {INDEX}: not a Hugging Face model folder in safetensors")


def read(folder: Path) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for name in _files(folder):
        tensors.update(load_file(str(folder / name)))
    return tensors


class Lazy(Mapping[str, torch.Tensor]):
    """The folder's tensors by name, each read from its file only when asked for (the names come
    from the files' headers): what a model's config needs without loading its weights."""

    def __init__(self, folder: Path) -> None:
        self.where: dict[str, Path] = {}  # tensor name -> its file: grows with the model's tensor count, not their size
        for name in _files(folder):
            with safe_open(str(folder / name), framework="pt") as f:
                self.where.update({key: folder / name for key in f.keys()})

    def __getitem__(self, key: str) -> torch.Tensor:
        with safe_open(str(self.where[key]), framework="pt") as f:
            return f.get_tensor(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self.where)

    def __len__(self) -> int:
        return len(self.where)
