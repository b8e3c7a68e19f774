"""Each stage's inputs and output as MLflow datasets, so the MLflow UI shows the chain.

A stage output is one metadata-only dataset (`MetaDataset`: a name, a source URI and a digest;
MLflow never reads the data), named `<stage>:<key>` with the same digest wherever it appears: as
the output of the run that made it and as an input of every run that read it. Token shards are
logged per split (`encode:<key>/train`), their digest taken from the shards' sha256s.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

from tasks.stage_record import StageRecord

MAX_DIGEST = 36  # MLflow's limit on a dataset digest


@dataclass(frozen=True)
class DatasetRef:
    name: str
    uri: str
    digest: str
    context: str  # "source", "input", "training", "validation", "evaluation", "model" or "output"


def output_ref(record: StageRecord, context: str = "output") -> DatasetRef:
    """A stage output as a dataset: digested by its content where the record has a digest."""
    digest = (getattr(record, "manifest_sha256", None)
              or getattr(getattr(record, "summary", None), "sha256", None) or record.key)
    return DatasetRef(f"{record.stage}:{record.key}", record.uri, digest[:MAX_DIGEST], context)


def split_ref(encode: StageRecord, split: str, context: str) -> DatasetRef:
    """One split's token shards (an encode output) as a dataset."""
    shards = encode.summary.splits[split]
    digest = hashlib.sha256("".join(shards.sha256).encode()).hexdigest()
    return DatasetRef(f"encode:{encode.key}/{split}", encode.uri, digest[:MAX_DIGEST], context)


def log_datasets(client, run_id: str, refs: list[DatasetRef]) -> None:
    """Log `refs` as the run's dataset inputs (one request), each tagged with its context."""
    if not refs:
        return
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    inputs = []
    for ref in refs:
        with warnings.catch_warnings():  # a local path "can be read in several ways": all mean the same folder
            warnings.simplefilter("ignore", UserWarning)
            source = resolve_dataset_source(ref.uri)
        dataset = MetaDataset(source, name=ref.name, digest=ref.digest)._to_mlflow_entity()
        inputs.append(DatasetInput(dataset, tags=[InputTag("mlflow.data.context", ref.context)]))
    client.log_inputs(run_id, datasets=inputs)
