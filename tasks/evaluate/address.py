"""The evaluation stage's content address: code version, evaluation config, and the pretraining
output it scores (whose key already names the tokenizer and the data)."""

from __future__ import annotations

from tasks.artifacts import StageOutput
from tasks.evaluate.config import EvalConfig

STAGE = "evaluate"
VERSION = 3


def plan(cfg: EvalConfig, root: str, pretrain_key: str) -> StageOutput:
    return StageOutput.at(root, STAGE, VERSION, cfg, {"pretrain": pretrain_key})
