"""What `werk` commands do alike: report an error and exit with its code; load the model a command
names (a registered version or a training checkpoint)."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

EXIT_USAGE = 2
console = Console(stderr=True)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    console.print(f"[bold red]error:[/] {escape(message)}")  # messages hold brackets: werk[stack]
    raise typer.Exit(code)


def load_model(model: str | None, checkpoint: str | None, tokenizer: str | None = None):
    """(GPT, Tokenizer) of `model` (an MLflow model URI) or else `checkpoint`; exits 1 naming the
    problem when either cannot be loaded."""
    from tasks.evaluate import standalone
    from tasks.tracking.setup import configure

    configure()
    try:
        return standalone.load_registered(model) if model else standalone.load_checkpoint(checkpoint, tokenizer)
    except Exception as exc:  # noqa: BLE001 - any loading problem is reported as such
        fail(f"cannot load {model or checkpoint}: {exc}", code=1)
