"""Export one loaded Werk model (a registered version or a checkpoint) in a chosen format."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal

from models.gpt import GPT
from tasks.export import gguf_file, hf_folder

Format = Literal["hf", "gguf"]


def export(model: GPT, tokenizer, fmt: Format, out: Path, name: str, card: str | None = None) -> list[Path]:
    """Write `model` with its `tokenizer` (a `tokenizers.Tokenizer`) to `out`: a folder for `hf`,
    a `.gguf` file (or a folder to hold `<name>.gguf`) for `gguf`. The paths written."""
    weights = {k: v.detach() for k, v in model.state_dict().items()}
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_json = Path(tmp) / "tokenizer.json"
        tokenizer.save(str(tokenizer_json))
        if fmt == "hf":
            return [out / f for f in hf_folder.write(weights, model.config, tokenizer_json, out, card)]
        target = out if out.suffix == ".gguf" else out / f"{name}.gguf"
        return [gguf_file.write(weights, model.config, tokenizer_json, target, name)]
