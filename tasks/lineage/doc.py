"""`werk lineage doc DOC_ID`: where a document went, and every model that trained on it.

The walk, each step a small read whatever the corpus's size:
1. every published ingest output: its doc-id index and manifest part (`tasks/ingest/lookup.py`)
   give the document's source, location, licence, language, content hash, shard and row;
2. every encode output made from that ingest: the index part of the document's ingest shard gives
   its token shard, offset and length;
3. every pretraining made from that encode: its sample order gives the first optimizer step that
   trained on any of the document's tokens (`seen.py`);
4. the MLflow model versions registered from that pretraining (tag `werk.pretrain_key`).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from tasks.encode.record import EncodeRecord
from tasks.ingest.lookup import locate
from tasks.ingest.record import IngestRecord
from tasks.lineage import seen
from tasks.lineage.published import erased, published
from tasks.training.record import PretrainRecord


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModelVersionRef(_Out):
    name: str
    version: str
    aliases: list[str]
    tags: dict[str, str]  # the governance tags (gdpr.*) and the stage keys


class Training(_Out):
    """One pretraining made from the document's token shard."""

    pretrain_key: str
    uri: str
    mlflow_run_id: str | None
    steps: int
    first_step: int | None  # the optimizer step that first trained on any of its tokens; None: never (or unknown)
    model_versions: list[ModelVersionRef]
    # Trained on an encode output an erasure has since replaced (this key): its token shard holding the
    # document was copied unchanged (first_step is exact), or rewritten (first_step unknown: None).
    via_erased_encode: str | None = None
    shard_rewritten: bool = False


class Encoding(_Out):
    """The document in one encode output: its tokens, and the trainings that read them."""

    encode_key: str
    tokenizer_key: str | None
    split: str
    shard: str  # URI of the token shard
    offset: int  # first token in the shard
    length: int  # tokens, with the end-of-text token
    trainings: list[Training]


class Ingested(_Out):
    """The document in one ingest output."""

    ingest_key: str
    uri: str
    source: str
    location: str  # file, and line or row, in the source
    license: str
    language: str | None
    sha256: str  # of the kept (cleaned, redacted) text
    split: str
    shard: str  # URI of the document shard
    row: int
    encodings: list[Encoding]


class DocLineage(_Out):
    doc_id: str
    root: str
    found_in: list[Ingested]
    unreadable: list[str]  # records this Werk could not read (named, never skipped in silence)


def trace_doc(root: str, doc_id: str, client: Any | None = None) -> DocLineage:
    """The lineage of `doc_id` under the storage root; `client`: an `MlflowClient` to name model
    versions with (None: versions are not looked up)."""
    unreadable: list[str] = []
    ingests = published(root, IngestRecord, unreadable)
    encodes = published(root, EncodeRecord, unreadable)
    pretrains = published(root, PretrainRecord, unreadable)
    # Models trained before an erasure saw the outputs it replaced (size: the encode outputs ever erased).
    replaced = erased(root, EncodeRecord)
    found = []
    for ing in ingests:
        row = locate(ing.uri, doc_id)
        if row is None:
            continue
        shard_uri = ing.path(row["shard"])
        encodings = [e for e in (_encoding(enc, ing, row, shard_uri, pretrains, client, replaced) for enc in encodes
                                 if enc.inputs.get("ingest") == ing.key) if e is not None]
        found.append(Ingested(
            ingest_key=ing.key, uri=ing.uri, source=row["source"], location=row["location"], license=row["license"],
            language=row["language"], sha256=row["sha256"], split=row["split"], shard=shard_uri, row=row["row"],
            encodings=encodings))
    return DocLineage(doc_id=doc_id, root=root, found_in=found, unreadable=unreadable)


def _encoding(enc: EncodeRecord, ing: IngestRecord, row: dict[str, Any], shard_uri: str,
              pretrains: list[PretrainRecord], client: Any | None, replaced: list = ()) -> Encoding | None:
    from tasks.encode.stage import index_part
    from tasks.ingest.work import read_table

    split = row["split"]
    part = getattr(ing.shards, split).index(shard_uri)  # encode wrote one index part per ingest shard
    held = read_table(enc.path(index_part(split, part)), filters=[("doc_id", "==", row["doc_id"])]).to_pylist()
    if not held:
        return None
    token_shard, offset, length = enc.path(held[0]["shard"]), held[0]["offset"], held[0]["length"]
    trainings = _trainings(enc, token_shard, split, offset, length, pretrains, client)
    # Encode outputs an erasure replaced by this one (and theirs, back): their models trained on the
    # document too. Where its shard was copied unchanged, it sat at the same offsets.
    name, sha = token_shard.rsplit("/", 1)[-1], _sha_of(enc, token_shard)
    newer = {enc.key}
    while True:
        older = [(old, by) for old, rebuilt_as, by in replaced if rebuilt_as in newer and old.key not in newer]
        if not older:
            break
        for old, _ in older:
            newer.add(old.key)
            same = _sha_of(old, old.path(name)) == sha
            for t in _trainings(old, old.path(name), split, offset, length, pretrains, client, exact=same):
                trainings.append(t.model_copy(update={"via_erased_encode": old.key, "shard_rewritten": not same}))
    return Encoding(encode_key=enc.key, tokenizer_key=enc.inputs.get("tokenizer"), split=split, shard=token_shard,
                    offset=offset, length=length, trainings=trainings)


def _sha_of(enc: EncodeRecord, shard: str) -> str | None:
    for split in enc.summary.splits.values():
        if shard in split.shards:
            return split.sha256[split.shards.index(shard)]
    return None


def _trainings(enc: EncodeRecord, token_shard: str, split: str, offset: int, length: int,
               pretrains: list[PretrainRecord], client: Any | None, exact: bool = True) -> list[Training]:
    """Every pretraining on `enc`, with the first step that trained on the token range (when `exact`)."""
    found = []
    for pre in pretrains:
        if pre.inputs.get("encode") != enc.key or pre.data is None:
            continue
        order = pre.data
        step = (seen.first_step(order, order.train_shards.index(token_shard), offset, offset + length)
                if exact and split == "train" and token_shard in order.train_shards else None)
        found.append(Training(pretrain_key=pre.key, uri=pre.uri, mlflow_run_id=pre.summary.mlflow_run_id,
                              steps=order.steps, first_step=step,
                              model_versions=model_versions(client, pre.key) if client else []))
    return found


def model_versions(client: Any, pretrain_key: str) -> list[ModelVersionRef]:
    """Every registered model version made from this pretraining, in any registered model."""
    found = client.search_model_versions(f"tags.`werk.pretrain_key` = '{pretrain_key}'")
    # A search result may lack aliases: each version is read whole (a registry holds few per pretraining).
    full = [client.get_model_version(v.name, v.version) for v in sorted(found, key=lambda v: (v.name, int(v.version)))]
    return [ModelVersionRef(name=v.name, version=str(v.version), aliases=sorted(v.aliases or []),
                            tags={k: val for k, val in (v.tags or {}).items() if k.startswith(("gdpr.", "werk."))})
            for v in full]
