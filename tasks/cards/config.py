"""What the cards say that no artifact records: who provides the model, and what it is for."""

from __future__ import annotations

from pydantic import Field

from tasks.config_base import StageConfig


class CardsConfig(StageConfig):
    provider: str | None = Field(None, description="Who places the model on the market (the AI Act's provider).")
    contact: str | None = Field(None, description="Where to ask about the model and its data (an address).")
    model_license: str | None = Field(None, description="Licence of the trained weights (an SPDX id), if released.")
    intended_use: str = Field(
        "Research on pretraining language models; not evaluated for any downstream use.",
        description="What the model is for, in a sentence or two.")
    limitations: list[str] = Field(default_factory=list, description="Known limitations, beyond those Werk states.")
