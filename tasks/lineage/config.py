"""Where OpenLineage events go, if anywhere."""

from __future__ import annotations

from pydantic import Field

from tasks.config_base import StageConfig


class LineageConfig(StageConfig):
    openlineage: bool = Field(False, description="Emit an OpenLineage START and COMPLETE event per stage.")
    file: str | None = Field(None, description="Append the events to this file (one JSON event per line); default "
                             "WERK_HOME/lineage/openlineage.jsonl when no url is given.")
    url: str | None = Field(None, description="Send the events over HTTP to this OpenLineage server (e.g. Marquez).")
    namespace: str = Field("werk", description="The OpenLineage job namespace.")
