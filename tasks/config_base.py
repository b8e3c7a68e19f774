"""The base every stage config derives from: frozen, and refusing keys it does not know."""

from pydantic import BaseModel, ConfigDict


class StageConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
