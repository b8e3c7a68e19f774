"""The export step after `register`: a new model version's Hugging Face folder, logged with it."""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from infra import storage
from models.gpt import GPTConfig
from tasks.export import hf_folder
from tasks.export.families import ExportError

ARTIFACT = "hf"


def export_hf(weights_uri: str, config_uri: str, tokenizer_uri: str, card: str | None, log_artifacts) -> str | None:
    """Write the folder and hand it to `log_artifacts(local_dir, artifact_path)`; the reason when
    the model's block has no Hugging Face architecture (the pipeline goes on: the pyfunc serves it)."""
    cfg = GPTConfig(**storage.read_json(config_uri))
    with tempfile.TemporaryDirectory() as tmp:
        weights = torch.load(_fetch(weights_uri, Path(tmp) / "model.pt"), map_location="cpu", weights_only=True)
        tokenizer = _fetch(tokenizer_uri, Path(tmp) / "tokenizer.json")
        try:
            hf_folder.write(weights, cfg, tokenizer, Path(tmp) / ARTIFACT, card)
        except ExportError as exc:
            return str(exc)
        log_artifacts(str(Path(tmp) / ARTIFACT), ARTIFACT)
    return None


def _fetch(uri: str, local: Path) -> Path:
    """A copy of `uri` at `local` (a temporary folder: nothing stays in a cache)."""
    fs, path = storage.filesystem(uri)
    fs.get_file(path, str(local))
    return local
