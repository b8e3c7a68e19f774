"""`model.init_from`: continue pretraining a Hugging Face model (a Werk export, or any Llama or
GPT-2 whose blocks Werk computes exactly). The folder's config sets the model's shape; its weights
are loaded by every worker before the first step (a resumed run loads its checkpoint instead); the
sha256 of its weight files is part of the pretraining output's address."""

from __future__ import annotations

import hashlib
import json
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from infra import storage
from models.gpt import GPTConfig
from tasks.export import hf_folder
from tasks.export.families import ExportError

# The shape fields that come from the folder (a recipe setting them as well is refused).
SHAPE = ("block_size", "n_layer", "n_head", "n_embd", "bias", "norm", "mlp", "position", "n_kv_head",
         "tie_embeddings", "rope_theta", "mlp_hidden", "norm_eps")


@contextmanager
def local_folder(uri: str) -> Iterator[Path]:
    """The folder at `uri` on local disk (a remote one is fetched into a temporary folder)."""
    if not storage.is_remote(uri):
        yield Path(uri.removeprefix("file://"))
        return
    fs, path = storage.filesystem(uri)
    with tempfile.TemporaryDirectory() as tmp:
        fs.get(path.rstrip("/") + "/", tmp, recursive=True)
        yield Path(tmp)


def weights_sha256(folder: Path) -> str:
    """One digest over the folder's config and weight files (names and bytes), streamed."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".json") and "token" not in p.name):
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            while chunk := fh.read(8 << 20):
                h.update(chunk)
    return h.hexdigest()


def imported(uri: str, vocab_size: int) -> tuple[GPTConfig, str]:
    """The model's shape and its digest; refuses a vocabulary other than the tokenizer's."""
    with local_folder(uri) as folder:
        if not (folder / "config.json").exists():
            raise ExportError(f"model.init_from {uri}: no config.json there; give a Hugging Face model folder")
        cfg = hf_folder.read_config(folder)
        digest = weights_sha256(folder)
    if cfg.vocab_size != vocab_size:
        raise ExportError(f"model.init_from {uri} has a vocabulary of {cfg.vocab_size} tokens, the tokenizer "
                          f"{vocab_size}: set tokenizer.uri to the same folder (its tokenizer.json)")
    return cfg, digest


def load_weights(uri: str) -> dict[str, torch.Tensor]:
    with local_folder(uri) as folder:
        return hf_folder.read(folder)[1]


def shape_fields(cfg: GPTConfig) -> dict:
    return {k: v for k, v in json.loads(json.dumps(cfg.to_dict())).items() if k in SHAPE}
