"""Werk's tokenizer as Hugging Face tokenizer files.

`tokenizer.json` is Werk's own (the `tokenizers` library's format, which every HF fast tokenizer
reads). The class is forced to `PreTrainedTokenizerFast` and the special tokens are written
explicitly: transformers 5 would name a class transformers 4 and vLLM do not know, and with a
Llama model type and no class, transformers 4 picks `LlamaTokenizerFast`, which adds a BOS token
and changes the ids. Werk adds no BOS: a text starts with `<|endoftext|>` only where the training
stream had one (between documents), which is also where generation stops.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer

EOT, PAD = "<|endoftext|>", "<|pad|>"


def special_ids(tokenizer_json: Path) -> dict[str, int | None]:
    tok = Tokenizer.from_file(str(tokenizer_json))
    eot, pad = tok.token_to_id(EOT), tok.token_to_id(PAD)
    if eot is None:
        raise ValueError(f"{tokenizer_json} has no {EOT} token: not a Werk tokenizer")
    return {"bos": eot, "eos": eot, "pad": pad}


def write(tokenizer_json: Path, out: Path, max_length: int) -> dict[str, int | None]:
    """Write the tokenizer files into `out`; the special ids."""
    ids = special_ids(tokenizer_json)
    shutil.copyfile(tokenizer_json, out / "tokenizer.json")
    special: dict[str, Any] = {"bos_token": EOT, "eos_token": EOT, "unk_token": None}
    if ids["pad"] is not None:
        special["pad_token"] = PAD
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", **special, "model_max_length": max_length,
        "add_bos_token": False, "add_eos_token": False, "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "special_tokens_map.json").write_text(json.dumps({k: v for k, v in special.items() if v}, indent=2) + "\n")
    return ids
