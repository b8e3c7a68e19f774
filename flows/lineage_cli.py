"""`werk lineage doc|model`: what a document became, and what a model was made from."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

lineage_app = typer.Typer(no_args_is_help=True, help="Lineage: from a document to the models that trained on it, and back.")
console = Console(stderr=True)

RootOpt = Annotated[Optional[str], typer.Option("--root", help="Storage root (default: the one runs use: "
                                                "WERK_STORAGE_ROOT, else WERK_HOME/store).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the lineage as one JSON object on stdout.")]


def _client():
    from mlflow import MlflowClient

    from tasks.tracking.setup import configure

    configure()
    return MlflowClient()


@lineage_app.command("doc")
def lineage_doc(doc_id: Annotated[str, typer.Argument(help="A document id, as the manifest names it.")],
                root: RootOpt = None, as_json: JsonOpt = False) -> None:
    """Where a document is, and every pretraining and model version that trained on it.

    Source, file and line, licence, shard and row, token range; for each pretraining, the first
    optimizer step that trained on any of its tokens."""
    from infra.storage import storage_root
    from tasks.lineage.doc import trace_doc

    found = trace_doc(storage_root(root), doc_id, _client())
    if as_json:
        typer.echo(found.model_dump_json())
    else:
        _show_doc(found)
    for problem in found.unreadable:
        console.print(f"[yellow]warning:[/] {escape(problem)}")
    if not found.found_in:
        console.print(f"[bold red]error:[/] no kept document has the id {escape(doc_id)} under {escape(found.root)}")
        raise typer.Exit(1)


def _show_doc(found) -> None:
    out = Console()
    for ing in found.found_in:
        out.print(f"[bold]{escape(found.doc_id)}[/] in ingest {ing.ingest_key}: source {escape(ing.source)} "
                  f"({escape(ing.license)}, {ing.language or 'language unknown'}), {escape(ing.location)}")
        out.print(f"  {ing.split} shard {escape(ing.shard)} row {ing.row}; text sha256 {ing.sha256}")
        for enc in ing.encodings:
            out.print(f"  encode {enc.encode_key}: {escape(enc.shard)} tokens {enc.offset:,}..{enc.offset + enc.length:,} "
                      f"({enc.length:,} tokens)")
            if enc.split != "train":
                out.print("    held out for validation: no training step learns from it")
            table = Table(show_header=True, box=None, padding=(0, 2))
            for col in ("pretraining", "first step", "of", "model versions"):
                table.add_column(col)
            for t in enc.trainings:
                versions = ", ".join(f"{v.name} v{v.version}" + (f" @{','.join(v.aliases)}" if v.aliases else "")
                                     for v in t.model_versions) or "none registered"
                step = ("unknown (its shard was rewritten by an erasure)" if t.shard_rewritten
                        else "never" if t.first_step is None else f"{t.first_step:,}")
                before = f" (on encode {t.via_erased_encode}, replaced by an erasure)" if t.via_erased_encode else ""
                table.add_row(t.pretrain_key + before, step, f"{t.steps:,}", versions)
            if enc.trainings:
                out.print(table)


@lineage_app.command("model")
def lineage_model(model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
                  root: RootOpt = None, as_json: JsonOpt = False) -> None:
    """What a registered model version was made from.

    Recipe, git commit, tokenizer digest, stage keys and manifest digests, sources with document
    counts and licences, steps and tokens trained."""
    from infra.storage import storage_root
    from tasks.lineage.model import trace_model

    try:
        found = trace_model(_client(), model_uri, storage_root(root))
    except Exception as exc:  # noqa: BLE001 - an unknown model, a moved root: said as such
        console.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1)
    if as_json:
        typer.echo(found.model_dump_json())
        return
    out = Console()
    aliases = f" @{', @'.join(found.aliases)}" if found.aliases else ""
    out.print(f"[bold]{escape(found.name)} version {found.version}{aliases}[/]: recipe {found.recipe}, "
              f"git commit {found.git_commit or 'unknown'}")
    out.print(f"  trained {found.steps:,} steps" + (f", {found.tokens_trained:,} tokens" if found.tokens_trained else "")
              + f"; {found.parameters:,} parameters; MLflow run {found.mlflow_run_id}")
    for stage in ("ingest", "tokenizer", "encode", "pretrain"):
        ref = getattr(found, stage)
        if ref is not None:
            digest = f", manifest sha256 {ref.manifest_sha256}" if ref.manifest_sha256 else ""
            gone = (f" [yellow](removed by erasure {ref.erased_by}" + (f", rebuilt as {ref.rebuilt_as}" if ref.rebuilt_as else "")
                    + ")[/]") if ref.erased_by else ""
            out.print(f"  {stage} {ref.key}: {escape(ref.uri)}{digest}{gone}")
    if found.tokenizer_sha256:
        out.print(f"  tokenizer.json sha256 {found.tokenizer_sha256} ({found.vocab_size:,} tokens)")
    table = Table(title="Sources", box=None, padding=(0, 2))
    for col in ("source", "licence", "documents in", "kept", "uri"):
        table.add_column(col)
    for s in found.sources:
        table.add_row(s.name, s.license, f"{s.documents_in:,}", f"{s.documents_kept:,}", escape(s.uri))
    out.print(table)
    pending = {k: v for k, v in found.tags.items() if k.startswith("gdpr.")}
    for k, v in pending.items():
        out.print(f"  [yellow]{escape(k)}[/] = {escape(v)}")
