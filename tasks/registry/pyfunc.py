"""The MLflow model Werk registers: a GPT plus its tokenizer, answering prompts with text.

`mlflow.pyfunc.load_model("models:/werk-demo@candidate").predict(["Hello"])` returns a list of
generated strings. Weights load with `weights_only=True`; the model needs Werk installed.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow.pyfunc

DEFAULT_PARAMS = {"max_new_tokens": 64, "temperature": 0.8, "top_k": 50, "top_p": 1.0, "seed": 0}


class WerkGenerator(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        import torch
        from tokenizers import Tokenizer

        from models.gpt import GPT, GPTConfig

        with open(context.artifacts["model_config"]) as fh:
            cfg = GPTConfig(**json.load(fh))
        self.model = GPT(cfg)
        self.model.load_state_dict(torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True))
        self.model.eval()
        self.tokenizer = Tokenizer.from_file(context.artifacts["tokenizer"])

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list[str]:
        from tasks.evaluate.samples import generate

        p = {**DEFAULT_PARAMS, **(params or {})}
        prompts = _prompts(model_input)
        return [
            generate(self.model, self.tokenizer, prompt, int(p["max_new_tokens"]), float(p["temperature"]),
                     int(p["top_k"]) or None, int(p["seed"]), top_p=float(p["top_p"]))
            for prompt in prompts
        ]


def _prompts(model_input: Any) -> list[str]:
    if isinstance(model_input, str):
        return [model_input]
    if hasattr(model_input, "iloc"):  # a pandas DataFrame or Series
        frame = model_input.to_frame() if hasattr(model_input, "to_frame") and not hasattr(model_input, "columns") else model_input
        column = "prompt" if "prompt" in frame.columns else frame.columns[0]
        return [str(x) for x in frame[column].tolist()]
    return [str(x) for x in model_input]
