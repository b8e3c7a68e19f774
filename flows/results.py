"""What each stage task returns to the flow: the stage's typed record, and what this run did with it.

The record (`tasks/<stage>/record.py`) is the stage's published contract, the same whether the
stage ran now or its output was reused. `cached` says whether this flow run reused it; `run_id`
is the MLflow run that recorded the stage (on a Prefect cache hit, that of the run that first did).
Prefect persists these as JSON (`flows/caching.py`) and validates them back into these types.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from tasks.encode.record import EncodeRecord
from tasks.evaluate.record import EvaluateRecord
from tasks.ingest.record import IngestRecord
from tasks.stage_record import StageRecord
from tasks.tokenizer.record import TokenizerRecord
from tasks.training.record import PretrainRecord


class StageRun(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cached: bool  # the output was there already (Prefect's cache, or a complete output folder)
    run_id: str  # the stage's MLflow child run in this flow run

    record: StageRecord

    @property
    def stage(self) -> str:
        return self.record.stage

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def uri(self) -> str:
        return self.record.uri


class IngestRun(StageRun):
    record: IngestRecord


class TokenizerRun(StageRun):
    record: TokenizerRecord

    @property
    def tokenizer(self) -> str:
        return self.record.outputs.tokenizer


class EncodeRun(StageRun):
    record: EncodeRecord


class PretrainRun(StageRun):
    record: PretrainRecord


class EvaluateRun(StageRun):
    record: EvaluateRecord


class GateResult(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    metric: str
    candidate: float
    champion: float | None
    champion_version: str | None
    reason: str


class RegisterRun(StageRun):
    """Registration has no stage output of its own: its record is the registered version."""

    record: None = None
    model_uri: str
    name: str
    version: str
    promoted: bool
    gate: GateResult

    @property
    def stage(self) -> str:
        return "register"
