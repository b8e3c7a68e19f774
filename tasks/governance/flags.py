"""Model versions trained on erased data: tagged, taken off @champion, listed until retrained.

A model cannot forget what it was trained on (EDPB Opinion 28/2024: a model trained on personal
data is not anonymous by default), so an erasure marks every registered version whose training
data held an erased document with `gdpr.erasure_pending` = the request ids, and removes its
`champion` alias unless its recipe says `registry.keep_champion_on_erasure`. The gate refuses to
promote a version trained before an erasure that applies to its data (`tasks/registry/gate.py`).
A rerun of the recipe trains on the rebuilt data and registers a new, unflagged version; the
flagged one keeps its tag, as the record of what it saw.
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

PENDING = "gdpr.erasure_pending"
CHAMPION = "champion"


class FlaggedVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: str
    requests: list[str]
    lost_champion: bool
    pretrain_key: str | None = None


def flag_versions(client: Any, pretrain_keys: set[str], request_ids: list[str],
                  keep_champion: Callable[[Any], bool] = lambda version: False) -> list[FlaggedVersion]:
    """Tag every model version made from these pretrainings; `keep_champion(version)` says whether
    its recipe keeps @champion on it."""
    from tasks.lineage.doc import model_versions

    flagged = []
    for key in sorted(pretrain_keys):
        for ref in model_versions(client, key):
            already = [r for r in ref.tags.get(PENDING, "").split(",") if r]
            requests = sorted(set(already) | set(request_ids))
            client.set_model_version_tag(ref.name, ref.version, PENDING, ",".join(requests))
            lost = CHAMPION in ref.aliases and not keep_champion(client.get_model_version(ref.name, ref.version))
            if lost:
                client.delete_registered_model_alias(ref.name, CHAMPION)
            flagged.append(FlaggedVersion(name=ref.name, version=ref.version, requests=requests, lost_champion=lost,
                                          pretrain_key=key))
    return flagged


def pending_for(root: str, ingest) -> list[str]:
    """Erasure requests that apply to an ingest's sources but were not applied to it: none when its
    key already holds every tombstone for its sources (a later request for the same documents
    changes nothing)."""
    from tasks.governance.register import applicable

    now = applicable(root, [s.uri for s in ingest.sources])
    planned = ingest.address.inputs.get("tombstones") if ingest.address else None
    if now.digest == planned:
        return []
    applied = set(ingest.erasures)
    return [r for r in now.request_ids if r not in applied] or now.request_ids


def still_to_retrain(client: Any) -> list[FlaggedVersion]:
    """Flagged versions of registered models whose newest version is flagged too: no model trained
    on the rebuilt data has been registered yet."""
    found = client.search_model_versions(f"tags.`{PENDING}` != ''")
    waiting = []
    for name in sorted({v.name for v in found}):
        versions = client.search_model_versions(f"name = '{name}'")
        newest = max(versions, key=lambda v: int(v.version))
        if (newest.tags or {}).get(PENDING):
            for v in sorted((v for v in found if v.name == name), key=lambda v: int(v.version)):
                waiting.append(FlaggedVersion(name=name, version=str(v.version), requests=v.tags[PENDING].split(","),
                                              lost_champion=False, pretrain_key=v.tags.get("werk.pretrain_key")))
    return waiting
