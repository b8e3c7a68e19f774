"""OpenLineage events per stage, with the `openlineage-python` client: a START and a COMPLETE event
whose inputs and outputs are the datasets the stage's MLflow run lists (`tasks/tracking/datasets.py`),
each with its digest as the dataset version. File transport by default (one JSON event per line),
HTTP to an OpenLineage server (Marquez) when a URL is configured.

Dataset names follow OpenLineage's naming: `s3://bucket` + key for S3, `file` + absolute path for
local paths. The run id is a UUID derived from the stage's MLflow run id, and the parent run facet
names the pipeline's flow run, so a lineage server joins the stages of one run.
"""

from __future__ import annotations

import uuid
from datetime import timedelta, timezone
from pathlib import Path

from tasks.lineage.config import LineageConfig
from tasks.stage_record import StageRecord
from tasks.tracking.datasets import DatasetRef

PRODUCER = "urn:werk:pipeline"  # the events' producer, as OpenLineage asks (a URI)


def client(cfg: LineageConfig, home: Path):
    from openlineage.client import OpenLineageClient

    if cfg.url:
        from openlineage.client.transport.http import HttpConfig, HttpTransport

        return OpenLineageClient(transport=HttpTransport(HttpConfig(url=cfg.url)))
    from openlineage.client.transport.file import FileConfig, FileTransport

    path = Path(cfg.file) if cfg.file else home / "lineage" / "openlineage.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return OpenLineageClient(transport=FileTransport(FileConfig(log_file_path=str(path), append=True)))


def dataset_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of a URI, as OpenLineage names datasets."""
    if "://" in uri and not uri.startswith("file://"):
        scheme, rest = uri.split("://", 1)
        bucket, _, key = rest.partition("/")
        return f"{scheme}://{bucket}", key
    return "file", str(Path(uri.removeprefix("file://")).resolve())


def run_uuid(mlflow_run_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"mlflow-run:{mlflow_run_id}"))


def emit(cfg: LineageConfig, home: Path, job: str, record: StageRecord, mlflow_run_id: str,
         inputs: list[DatasetRef], output: DatasetRef, parent: tuple[str, str] | None = None) -> None:
    """START (at the stage's start, as its compute record says) and COMPLETE events of one stage.
    `parent`: (job name, run id) of the pipeline run."""
    from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
    from openlineage.client.generated.dataset_version_dataset import DatasetVersionDatasetFacet
    from openlineage.client.generated.parent_run import Job as ParentJob
    from openlineage.client.generated.parent_run import ParentRunFacet
    from openlineage.client.generated.parent_run import Run as ParentRun

    def facets(ref: DatasetRef) -> dict:
        return {"version": DatasetVersionDatasetFacet(datasetVersion=ref.digest)}

    ins = [InputDataset(*dataset_name(r.uri), facets=facets(r)) for r in inputs]
    outs = [OutputDataset(*dataset_name(output.uri), facets=facets(output))]
    run_facets = {}
    if parent and parent[1]:
        run_facets["parent"] = ParentRunFacet(run=ParentRun(runId=str(uuid.UUID(parent[1]))),
                                              job=ParentJob(namespace=cfg.namespace, name=parent[0]))
    run = Run(runId=run_uuid(mlflow_run_id), facets=run_facets)
    end = record.completed_at if record.completed_at.tzinfo else record.completed_at.replace(tzinfo=timezone.utc)
    start = end - timedelta(seconds=record.compute.wall_s if record.compute else 0.0)
    sender = client(cfg, home)
    for state, at in ((RunState.START, start), (RunState.COMPLETE, end)):
        sender.emit(RunEvent(eventType=state, eventTime=at.isoformat(), producer=PRODUCER, run=run,
                             job=Job(namespace=cfg.namespace, name=job), inputs=ins, outputs=outs))
