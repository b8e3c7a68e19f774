"""`werk export`: a registered model or a checkpoint as a Hugging Face folder or a GGUF file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from flows.cli_common import fail as _fail, load_model


def export(
    out: Annotated[Path, typer.Option("--out", help="The folder to write (hf), or a .gguf file or folder (gguf).")],
    model: Annotated[Optional[str], typer.Option(help="MLflow model URI, e.g. models:/werk-demo@champion.")] = None,
    checkpoint: Annotated[Optional[str], typer.Option(help="A checkpoint.ckpt written by Werk's trainer (local or s3://).")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(help="tokenizer.json, if the checkpoint does not name it.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="hf (transformers, vLLM) or gguf (llama.cpp).")] = "hf",
    as_json: Annotated[bool, typer.Option("--json", help="Print the files written as JSON on stdout.")] = False,
) -> None:
    """Export a model for transformers, vLLM or llama.cpp (the modern block as Llama, the GPT-2 block as GPT-2).

    The HF folder carries the model card of a registered version as README.md."""
    if (model is None) == (checkpoint is None):
        _fail("give exactly one of --model and --checkpoint")
    if fmt not in ("hf", "gguf"):
        _fail(f"--format {fmt!r}: hf or gguf")
    from tasks.export.export import export as run_export
    from tasks.export.families import ExportError

    net, tok = load_model(model, checkpoint, tokenizer)
    card, name = _card(model) if model else (None, Path(str(checkpoint)).parent.name or "werk-checkpoint")
    try:
        written = run_export(net, tok, fmt, out, name, card)
    except ExportError as exc:
        _fail(str(exc), code=1)
    if as_json:
        import json

        typer.echo(json.dumps({"format": fmt, "out": str(out), "files": [str(p) for p in written]}))
        return
    for path in written:
        Console().print(escape(str(path)))


def _card(model_uri: str) -> tuple[str | None, str]:
    """The registered version's model card (its description) and a file name from its model name."""
    from mlflow import MlflowClient

    client = MlflowClient()
    name, _, ref = model_uri.removeprefix("models:/").partition("@")
    if ref:
        version = client.get_model_version_by_alias(name, ref)
    else:
        name, _, number = model_uri.removeprefix("models:/").rpartition("/")
        version = client.get_model_version(name, number)
    return version.description or None, f"{name}-v{version.version}"
