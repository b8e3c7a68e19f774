"""The pretraining stage's content address: code version, model, training and compute config,
vocabulary size, and the encode output that names the data. Importing it does not load torch."""

from __future__ import annotations

from tasks.artifacts import StageOutput
from tasks.training.job import PretrainJob

STAGE = "pretrain"
VERSION = 2


def plan(job: PretrainJob, root: str, encode_key: str) -> StageOutput:
    # Tracking ids, shard URIs and checksums are not part of the address: the encode key names the data.
    identity = job.model_dump(mode="json", include={"model", "train", "compute", "vocab_size"})
    identity["compute"].pop("shard_cache_gb")  # where shards are cached does not change the model
    return StageOutput.at(root, STAGE, VERSION, identity, {"encode": encode_key})
