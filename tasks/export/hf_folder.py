"""A Werk model as a Hugging Face model folder (`from_pretrained` loads it), and a folder back.

The folder holds config.json, the weights as safetensors, the tokenizer files,
generation_config.json (its bos/eos/pad ids the same as config.json's and the tokenizer's, or
generation never stops) and, when given, the model card as README.md. It is written into a
sibling folder and renamed into place when complete: a crash leaves no half folder under the name.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from models.gpt import GPTConfig
from tasks.export import gpt2, llama, safetensors_files, tokenizer_files
from tasks.export.families import ExportError, family

MAPPINGS = {"llama": llama, "gpt2": gpt2}
DEFAULT_SHARD_BYTES = 2 * 1024**3  # 2 GiB shards: under every hub and file-system limit


def write(weights: dict[str, torch.Tensor], cfg: GPTConfig, tokenizer_json: Path, out: Path, card: str | None = None,
          max_shard_bytes: int = DEFAULT_SHARD_BYTES, rotary_permutation: bool = True) -> list[str]:
    """Export into the folder `out` (which must not exist or be empty); the files written.

    `rotary_permutation=False` exists for the test that shows the permutation matters."""
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty: export into a new folder")
    kind = family(cfg)
    mapping = MAPPINGS[kind]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        ids = tokenizer_files.write(tokenizer_json, tmp, cfg.block_size)
        if cfg.vocab_size < max(i for i in ids.values() if i is not None) + 1:
            raise ExportError("the tokenizer's special ids are outside the model's vocabulary: not its tokenizer")
        conf = mapping.config(cfg, ids["bos"], ids["eos"], ids["pad"])
        conf["werk"] = {"config": cfg.to_dict(), "format": 1}  # what Werk trained, for the way back
        (tmp / "config.json").write_text(json.dumps(conf, indent=2) + "\n")
        generation = {"bos_token_id": ids["bos"], "eos_token_id": ids["eos"], "pad_token_id": ids["pad"],
                      "do_sample": False, "max_length": cfg.block_size}
        (tmp / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
        tensors = llama.to_hf(weights, cfg, rotary_permutation) if kind == "llama" else mapping.to_hf(weights, cfg)
        files = safetensors_files.write(tensors, tmp, max_shard_bytes)
        if card:
            (tmp / "README.md").write_text(card)
        # mkdtemp's folder is private (0700): give it the permissions the files got from the
        # umask, searchable where readable, so a serving process of another user can load it.
        mode = (tmp / "config.json").stat().st_mode & 0o777
        os.chmod(tmp, mode | (mode & 0o444) >> 2)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return sorted(["config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                   "special_tokens_map.json", *files, *(["README.md"] if card else [])])


def read(folder: Path) -> tuple[GPTConfig, dict[str, torch.Tensor]]:
    """A Hugging Face folder of a supported architecture as Werk's config and weights (exact:
    the export's inverse). Anything Werk's block does not compute is refused with the reason."""
    conf, family = _family(folder)
    return family.from_hf(conf, safetensors_files.read(folder))


def read_config(folder: Path) -> GPTConfig:
    """The folder's model as Werk's config, without loading its weights (only what `read` checks)."""
    conf, family = _family(folder)
    return family.config_from_hf(conf, safetensors_files.Lazy(folder))


def _family(folder: Path) -> tuple[dict[str, Any], Any]:
    """The folder's config.json and the module that maps its architecture (`llama`, `gpt2`)."""
    conf: dict[str, Any] = json.loads((folder / "config.json").read_text())
    kind = conf.get("model_type")
    if kind not in MAPPINGS:
        raise ExportError(f"{folder}: model_type {kind!r}; Werk imports llama and gpt2")
    return conf, MAPPINGS[kind]
