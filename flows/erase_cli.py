"""`werk erase`: GDPR Art. 17 erasure, from finding a person's documents to flagging the models."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Iterator, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from flows.cli_common import fail as _fail

if TYPE_CHECKING:
    from tasks.ingest.stage import Mapper

console = Console(stderr=True)


def _keep_champion(client):
    """Whether a model version's recipe keeps @champion after an erasure (`registry.keep_champion_on_erasure`)."""
    def keep(version) -> bool:
        from flows.recipe import load_recipe

        run_id = (version.tags or {}).get("werk.parent_run_id")
        try:
            recipe = client.get_run(run_id).data.tags.get("werk.recipe") if run_id else None
            return bool(recipe) and load_recipe(recipe).registry.keep_champion_on_erasure
        except Exception:  # noqa: BLE001 - a recipe no longer found: the safe default, the alias goes
            return False
    return keep


def erase(
    doc: Annotated[Optional[list[str]], typer.Option("--doc", help="A document id to erase; repeatable.")] = None,
    match: Annotated[Optional[str], typer.Option("--match", help="Erase every document whose text contains this "
                                                 "(kept or quarantined).")] = None,
    regex: Annotated[bool, typer.Option("--regex", help="Read --match as a regular expression.")] = False,
    source: Annotated[Optional[str], typer.Option("--source", help="Only documents of this source (its name).")] = None,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why: the request's reference (kept in the register).")] = None,
    status: Annotated[bool, typer.Option("--status", help="List the requests and the model versions still to retrain.")] = False,
    root: Annotated[Optional[str], typer.Option("--root", help="Storage root (default: WERK_STORAGE_ROOT, else WERK_HOME/store).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object on stdout.")] = False,
    local: Annotated[bool, typer.Option("--local", help="Search and rebuild in this process instead of as Ray tasks "
                                        "(a small corpus; Ray is the cluster's at RAY_ADDRESS, else a local one).")] = False,
) -> None:
    """Erase documents (GDPR Art. 17): tombstone them, rebuild the outputs that held them, flag the models.

    The register on the storage root keeps who asked, why and when, and each document's id and
    content hash, never its text. Models trained on the documents are tagged gdpr.erasure_pending
    and lose @champion; run the recipe again to train on the rebuilt data."""
    from mlflow import MlflowClient

    from infra.storage import storage_root
    from tasks.tracking.setup import configure

    where = storage_root(root)
    configure()
    client = MlflowClient()
    if status:
        _status(where, client, as_json)
        return
    if not doc and not match:
        _fail("say what to erase: --doc DOC_ID (repeatable) or --match TEXT, or ask for --status")
    if not reason:
        _fail("--reason is required: the register keeps why each erasure was made")
    with _engine(local) as mapper:
        result = _erase(where, doc, match, regex, source, reason, client, mapper)
    if as_json:
        typer.echo(result.model_dump_json())
        return
    out = Console()
    out.print(f"[bold]{result.request_id}[/]: {len(result.found)} document(s) tombstoned")
    for f in result.found:
        out.print(f"  {escape(f.doc_id or '(no id)')} {f.where}{' (' + f.reason + ')' if f.reason else ''}: "
                  f"{escape(f.source)} {escape(f.location)}")
    for r in result.rebuilt:
        out.print(f"  {r.stage} {r.before} -> {r.after}: {len(r.changed)} of {len(r.files)} files rewritten, the rest copied")
    for v in result.flagged:
        out.print(f"  [yellow]{escape(v.name)} v{v.version}[/] tagged gdpr.erasure_pending"
                  + (", no longer @champion" if v.lost_champion else ""))
    _warn_partial(result.partial)


@contextmanager
def _engine(local: bool) -> Iterator[Mapper]:
    """Where the corpus is searched and rebuilt: one Ray task per ingest unit (the search reads
    every kept and quarantined text, so it must spread like the ingest did), or this process."""
    from tasks.ingest.stage import local_map

    if local:
        yield local_map
        return
    from infra.ray_cluster import mapper, ray_session

    with ray_session():
        yield mapper()


def _erase(where: str, doc: list[str] | None, match: str | None, regex: bool, source: str | None, reason: str,
           client, mapper: Mapper):
    from tasks.governance import register
    from tasks.governance.erase import erase as run_erase, find_docs

    found = find_docs(where, doc, source) if doc else []
    missing = sorted(set(doc or []) - {f.doc_id for f in found})
    for doc_id in missing:
        console.print(f"[yellow]warning:[/] no document {escape(doc_id)} under {escape(where)}: not erased")
    if match:
        found += _matches(where, match, regex, source, mapper)
    if not found:
        _fail(f"no document under {where} matched: nothing was erased", code=1)
    query = register.Query(doc_ids=sorted({f.doc_id for f in found if f.doc_id in set(doc or [])}), source=source,
                           text_search=bool(match), regex=regex)
    return run_erase(where, found, reason, query, client=client, mapper=mapper, keep_champion=_keep_champion(client))


def _warn_partial(partial: list[str]) -> None:
    for uri in partial:
        console.print(f"[yellow]warning:[/] unfinished ingest output {escape(uri)} (a crashed or running ingest) may "
                      "hold erased text in its work files: delete it once no ingest runs")


def _matches(root: str, pattern: str, regex: bool, source: str | None, mapper: Mapper):
    import re

    from tasks.governance.erase import find_matches

    try:
        return find_matches(root, pattern, regex, source, mapper)
    except re.error as exc:
        _fail(f"--match is not a valid regular expression: {exc}")


def _status(root: str, client, as_json: bool) -> None:
    from tasks.governance import register
    from tasks.governance.flags import still_to_retrain

    from tasks.governance.rebuild import finish_removals, partial_outputs

    requests = register.requests(root)
    waiting = still_to_retrain(client)
    finished = finish_removals(root)
    partial = partial_outputs(root)
    open_ids = {r for v in waiting for r in v.requests}
    register.audit(root, "status", [], {"open": sorted(open_ids)})
    if as_json:
        import json

        typer.echo(json.dumps({"requests": [{"id": r.id, "at": r.at.isoformat(), "who": r.who, "reason": r.reason,
                                             "documents": len(r.tombstones), "open": r.id in open_ids} for r in requests],
                               "to_retrain": [v.model_dump() for v in waiting], "removals_finished": finished,
                               "partial_outputs": partial}))
        return
    out = Console()
    table = Table(title=f"Erasure requests under {root}")
    for col in ("request", "when", "who", "reason", "documents", "state"):
        table.add_column(col)
    for r in requests:
        table.add_row(r.id, r.at.strftime("%Y-%m-%d %H:%M"), escape(r.who), escape(r.reason), str(len(r.tombstones)),
                      "[yellow]models to retrain[/]" if r.id in open_ids else "done")
    out.print(table)
    for v in waiting:
        out.print(f"  to retrain: {escape(v.name)} v{v.version} ({', '.join(v.requests)})")
    for uri in finished:
        out.print(f"  finished removing {escape(uri)} (an interrupted erasure)")
    _warn_partial(partial)
