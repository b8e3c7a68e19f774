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
    # Where shards are cached, how much may be spent and how energy is reckoned do not change the model
    # (and a run stopped by its budget resumes under the same key with a larger one).
    for name in ("shard_cache_gb", "budget_device_hours", "grid_gco2_per_kwh", "cpu_watts_per_core", "gpu_watts",
                 "energy_meter", "country_iso_code"):
        identity["compute"].pop(name)
    # A model's starting weights are named by their content, not by where they lie; fields added
    # since (None by default) stay out of the identity so earlier outputs keep their keys.
    identity["model"].pop("init_from")
    if identity["model"].get("norm_eps") is None:
        identity["model"].pop("norm_eps")
    inputs = {"encode": encode_key, **({"init": job.init_sha256} if job.init_sha256 else {})}
    return StageOutput.at(root, STAGE, VERSION, identity, inputs)
