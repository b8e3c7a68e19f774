"""A Croissant (MLCommons, 1.0) description of an ingest output, made with `mlcroissant` itself.

Distribution: every document and manifest part as a `FileObject` with its sha256 (recorded by the
ingest as it wrote them), grouped into `FileSet`s by folder; record sets: the documents
(`doc_id`, `text`, `language`) and the manifest (one row per kept document: where it came from,
under which licence).
"""

from __future__ import annotations

from typing import Any

from infra import storage
from tasks.cards.composition import Composition
from tasks.ingest.record import IngestRecord
from tasks.ingest.stage import Mapper, local_map

PARQUET = "application/x-parquet"
DOCUMENT_FIELDS = {"doc_id": "sc:Text", "text": "sc:Text", "language": "sc:Text"}
MANIFEST_FIELDS = {"doc_id": "sc:Text", "sha256": "sc:Text", "source": "sc:Text", "location": "sc:Text",
                   "license": "sc:Text", "language": "sc:Text", "bytes": "sc:Integer", "split": "sc:Text"}


def _parts(ingest: IngestRecord) -> list[str]:
    """Relative names of the document and manifest parts, in order."""
    names = [uri[len(ingest.uri):].lstrip("/") for split in ("train", "val") for uri in getattr(ingest.shards, split)]
    fs, base = storage.filesystem(ingest.outputs.manifest)
    names += [f"manifest/{p.rsplit('/', 1)[-1]}" for p in sorted(fs.find(base)) if p.endswith(".parquet")]
    return names


def croissant(ingest: IngestRecord, comp: Composition, name: str, description: str,
              mapper: Mapper = local_map) -> dict[str, Any]:
    """The JSON-LD document (a dict)."""
    import mlcroissant as mlc

    names = _parts(ingest)
    known = ingest.part_sha256  # recorded as the parts were written; hashed here only for older outputs
    missing = [n for n in names if n not in known]
    hashed = dict(zip(missing, mapper(storage.sha256, [(storage.join(ingest.uri, n),) for n in missing])))
    digests = [known.get(n) or hashed[n] for n in names]
    files = [mlc.FileObject(id=n, name=n, content_url=n, encoding_formats=[PARQUET], sha256=d,
                            content_size=None) for n, d in zip(names, digests)]
    sets = [mlc.FileSet(id=f"{folder}-parts", name=f"{folder}-parts", includes=[f"{folder}/*.parquet"],
                        encoding_formats=[PARQUET], description=what)
            for folder, what in (("train", "Training documents"), ("val", "Validation documents"),
                                 ("manifest", "One row per kept document"))]

    def fields(record: str, file_set: str, columns: dict[str, str]) -> list:
        return [mlc.Field(id=f"{record}/{col}", name=col, data_types=[getattr(mlc.DataType, kind.split(":")[1].upper())],
                          source=mlc.Source(file_set=file_set, extract=mlc.Extract(column=col)))
                for col, kind in columns.items()]

    records = [
        mlc.RecordSet(id="documents", name="documents", description="Training documents, as the tokenizer reads them",
                      fields=fields("documents", "train-parts", DOCUMENT_FIELDS)),
        mlc.RecordSet(id="manifest", name="manifest", description="Where each kept document came from",
                      fields=fields("manifest", "manifest-parts", MANIFEST_FIELDS)),
    ]
    metadata = mlc.Metadata(
        name=name, description=description, version="1.0.0", url=ingest.uri,
        license=sorted(comp.licenses), in_language=sorted(k for k in comp.languages if k != "und"),
        date_published=ingest.completed_at.replace(tzinfo=None), distribution=[*files, *sets], record_sets=records,
        cite_as=f"Werk ingest {ingest.key} (manifest sha256 {ingest.manifest_sha256})",
        data_collection="Sources read by Werk's ingest: " + "; ".join(f"{s.name} ({s.kind}, {s.uri})" for s in comp.sources),
        personal_sensitive_information=[f"{kind}: {n} redacted" for kind, n in comp.redactions.items()] or None,
    )
    return metadata.to_json()
