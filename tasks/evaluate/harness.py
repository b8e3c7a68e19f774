"""lm-evaluation-harness (PyPI `lm-eval`) for Werk models: a model adapter and local task
definitions, so the harness scores a Werk model offline on Werk's task files (or any file in the
same format) with its own metrics and standard errors.

    from tasks.evaluate.harness import WerkLM, run
    results = run(WerkLM.from_uri("models:/werk-demo@champion"), ["hamlet-cloze"])

`werk evaluate --harness` does the same from the command line. The harness's `acc_norm` divides
by characters where Werk's divides by bytes; `acc` is computed the same way by both.
"""

from __future__ import annotations

import os
from typing import Any

from lm_eval.api.model import LM
from lm_eval.api.registry import register_model

from tasks.evaluate import downstream

EOT = "<|endoftext|>"


@register_model("werk")
class WerkLM(LM):
    """A Werk GPT and its tokenizer behind lm-eval's three request types."""

    def __init__(self, model=None, tokenizer=None, model_uri: str | None = None, checkpoint: str | None = None,
                 batch_size: int | str = 16, max_gen_toks: int = 64, **_: Any) -> None:
        super().__init__()
        if model is None:
            from tasks.evaluate import standalone

            model, tokenizer = (standalone.load_registered(model_uri) if model_uri
                                else standalone.load_checkpoint(checkpoint))
        self.model, self.tok = model.eval(), tokenizer
        self.eot = self.tok.token_to_id(EOT)
        self.batch_size = int(batch_size) if str(batch_size).isdigit() else 16
        self.max_gen_toks = max_gen_toks

    @classmethod
    def from_uri(cls, model_uri: str, **kwargs: Any) -> WerkLM:
        return cls(model_uri=model_uri, **kwargs)

    def _ids(self, text: str) -> list[int]:
        return self.tok.encode(text).ids if text else []

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        pairs = [([self.eot, *self._ids(ctx)], self._ids(cont)) for ctx, cont in (r.args for r in requests)]
        return downstream.loglikelihood(self.model, pairs, pad_id=self.eot, batch_size=self.batch_size)

    def loglikelihood_rolling(self, requests) -> list[float]:
        """Log-likelihood of whole texts: disjoint windows of block_size predicted tokens, each
        conditioned on up to block_size tokens before it."""
        block = self.model.config.block_size
        out = []
        for (text,) in (r.args for r in requests):
            ids = [self.eot, *self._ids(text)]
            pairs = [(ids[max(0, end - block) : start], ids[start:end])
                     for start in range(1, len(ids), block) for end in [min(start + block, len(ids))]]
            scores = downstream.loglikelihood(self.model, pairs, pad_id=self.eot, batch_size=self.batch_size)
            out.append(sum(lp for lp, _ in scores))
        return out

    def generate_until(self, requests) -> list[str]:
        import torch

        out = []
        for context, kwargs in (r.args for r in requests):
            until = kwargs.get("until") or [EOT]
            until = [until] if isinstance(until, str) else list(until)
            ids = torch.tensor([[self.eot, *self._ids(context)][-self.model.config.block_size:]])
            with torch.no_grad():
                gen = self.model.generate(ids, int(kwargs.get("max_gen_toks", self.max_gen_toks)),
                                          temperature=float(kwargs.get("temperature", 0.0)), stop_token=self.eot,
                                          generator=torch.Generator().manual_seed(0))
            text = self.tok.decode([t for t in gen[0, ids.size(1):].tolist() if t != self.eot])
            cut = min([i for i in (text.find(u) for u in until) if i >= 0], default=len(text))
            out.append(text[:cut])
        return out


def task_config(name_or_path: str) -> dict[str, Any]:
    """An lm-eval task definition for a Werk task file (validated by Werk's loader first)."""
    name, _ = downstream.load_task(name_or_path)
    path = downstream.available().get(name_or_path) or os.path.abspath(name_or_path)
    return {
        "task": f"werk_{name}",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(path)}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "context",
        "doc_to_choice": "choices",
        "doc_to_target": "answer",
        "target_delimiter": "",  # Werk's choices carry their own leading space
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1},
    }


def run(lm: WerkLM, tasks: list[str], limit: int | None = None) -> dict[str, dict[str, float]]:
    """Per task: acc, acc_stderr, acc_norm, acc_norm_stderr, as the harness computes them."""
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # local files only, never the network
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    configs = [task_config(t) for t in tasks]
    results = simple_evaluate(model=lm, tasks=configs, task_manager=TaskManager(include_defaults=False),
                              limit=limit, bootstrap_iters=1000, random_seed=0, numpy_random_seed=0,
                              torch_random_seed=0, fewshot_random_seed=0)
    out = {}
    for config in configs:
        r = results["results"][config["task"]]
        out[config["task"].removeprefix("werk_")] = {
            "acc": r["acc,none"], "acc_stderr": r["acc_stderr,none"],
            "acc_norm": r["acc_norm,none"], "acc_norm_stderr": r["acc_norm_stderr,none"],
        }
    return out
