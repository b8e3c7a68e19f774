"""`werk lineage model models:/NAME@ALIAS`: the data, code and compute a model version came from.

From the version's tags (`werk.pretrain_key`, `werk.parent_run_id`) to its pipeline run (recipe,
git commit, storage root), then back along the stage records' `inputs`: pretraining -> encode ->
tokenizer and ingest. Every figure is read from a published record, none is recomputed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from infra import storage
from tasks.encode.record import EncodeRecord
from tasks.ingest.record import IngestRecord
from tasks.stage_record import StageRecord
from tasks.tokenizer.record import TokenizerRecord
from tasks.training.record import PretrainRecord


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SourceLine(_Out):
    name: str
    uri: str
    license: str
    documents_in: int
    documents_kept: int


class StageRef(_Out):
    key: str
    uri: str
    manifest_sha256: str | None = None
    erased_by: str | None = None  # the erasure request that removed this output (its record is kept)
    rebuilt_as: str | None = None  # the key of the output rebuilt in its place


class ModelLineage(_Out):
    model_uri: str
    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]  # governance (gdpr.*) and Werk's own tags
    recipe: str | None
    git_commit: str | None
    storage_root: str
    mlflow_run_id: str | None  # the pretraining's MLflow run (curves)
    pretrain: StageRef
    encode: StageRef | None
    ingest: StageRef | None
    tokenizer: StageRef | None
    tokenizer_sha256: str | None
    vocab_size: int | None
    sources: list[SourceLine]
    parameters: int
    steps: int
    tokens_trained: int | None  # steps x samples per step x block size (records from version 2)


def resolve_version(client: Any, model_uri: str) -> Any:
    """The model version named by `models:/NAME@ALIAS` or `models:/NAME/VERSION`."""
    if not model_uri.startswith("models:/"):
        raise ValueError(f"{model_uri!r} is not a registered model URI: use models:/NAME@ALIAS or models:/NAME/VERSION")
    rest = model_uri.removeprefix("models:/")
    if "@" in rest:
        name, alias = rest.split("@", 1)
        return client.get_model_version_by_alias(name, alias)
    name, _, version = rest.rpartition("/")
    if not name or not version.isdigit():
        raise ValueError(f"{model_uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return client.get_model_version(name, version)


def _read(record_type: type[StageRecord], root: str, key: str | None) -> tuple[Any, dict[str, Any]]:
    """The record of a stage output, or of one an erasure removed (with why): (record, erasure note)."""
    from tasks.governance.rebuild import ERASED

    if not key:
        return None, {}
    uri = storage.join(root, record_type.STAGE, key)
    if storage.exists(storage.join(uri, "_SUCCESS.json")):
        return record_type.read(uri), {}
    if storage.exists(storage.join(uri, ERASED)):
        data = storage.read_json(storage.join(uri, ERASED))
        note = {"erased_by": data.pop("erased_by", None), "rebuilt_as": data.pop("rebuilt_as", None)}
        return record_type.parse(data, storage.join(uri, ERASED)), note
    return None, {}


def _ref(record, note: dict[str, Any]) -> StageRef | None:
    if record is None:
        return None
    return StageRef(key=record.key, uri=record.uri, manifest_sha256=getattr(record, "manifest_sha256", None), **note)


def trace_model(client: Any, model_uri: str, default_root: str) -> ModelLineage:
    version = resolve_version(client, model_uri)
    tags = dict(version.tags or {})
    pretrain_key = tags.get("werk.pretrain_key")
    if not pretrain_key:
        raise ValueError(f"{model_uri} (version {version.version}) was not registered by Werk: it has no werk.pretrain_key tag")
    parent = client.get_run(tags["werk.parent_run_id"]).data.tags if tags.get("werk.parent_run_id") else {}
    root = parent.get("werk.storage_root") or default_root
    pre, _ = _read(PretrainRecord, root, pretrain_key)
    if pre is None:
        raise FileNotFoundError(f"the pretraining {pretrain_key} of {model_uri} is not under {root}: was the storage "
                                f"root moved, or the output deleted?")
    enc, enc_note = _read(EncodeRecord, root, pre.inputs.get("encode"))
    ing, ing_note = _read(IngestRecord, root, enc.inputs.get("ingest")) if enc else (None, {})
    tok, _ = _read(TokenizerRecord, root, enc.inputs.get("tokenizer")) if enc else (None, {})
    sources = []
    if ing is not None:
        for src in ing.sources:
            counts = ing.stats.by_source.get(src.name)
            sources.append(SourceLine(name=src.name, uri=src.uri, license=src.license,
                                      documents_in=counts.docs_in if counts else 0,
                                      documents_kept=counts.kept if counts else 0))
    return ModelLineage(
        model_uri=model_uri, name=version.name, version=str(version.version), aliases=sorted(version.aliases or []),
        tags={k: v for k, v in tags.items() if k.startswith(("gdpr.", "werk."))},
        recipe=parent.get("werk.recipe"), git_commit=parent.get("werk.git_commit"), storage_root=root,
        mlflow_run_id=pre.summary.mlflow_run_id,
        pretrain=StageRef(key=pre.key, uri=pre.uri),
        encode=_ref(enc, enc_note), ingest=_ref(ing, ing_note), tokenizer=_ref(tok, {}),
        tokenizer_sha256=tok.summary.sha256 if tok else None, vocab_size=tok.summary.vocab_size if tok else None,
        sources=sources, parameters=pre.summary.parameters, steps=pre.summary.global_step,
        tokens_trained=pre.data.tokens_trained if pre.data else None,
    )
