"""The model card of a registered version: a Hugging Face model-card header (licence, languages,
datasets, `model-index` with the evaluation, `co2_eq_emissions` where a grid intensity is known)
and sections on the architecture, the training recipe, the compute, the intended use and the
limitations. Set as the version's description in MLflow and logged as `MODEL_CARD.md`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from tasks.cards.composition import Composition
from tasks.cards.tables import front_matter, n, table
from tasks.evaluate.record import EvalReport
from tasks.training.record import PretrainRecord

LIMITATIONS = [
    "It was evaluated on held-out text and the tasks listed; on nothing else.",
]
FROM_SCRATCH = "A small model trained from scratch: it continues text in the style of its corpus and knows little else."


def model_card(name: str, version: str, recipe: Any, pretrain: PretrainRecord, report: EvalReport, comp: Composition,
               cost: dict[str, Any], erasure_pending: list[str], vocab_size: int,
               trained: dict[str, Any] | None = None) -> str:
    """`trained`: the model's config as pretraining wrote it (`model_config.json`); it differs from
    the recipe's `model` when the shape came from `model.init_from`."""
    cards, train = recipe.cards, recipe.train
    model = SimpleNamespace(**(trained or recipe.model.gpt_kwargs()))
    modern = (model.norm, model.mlp, model.position) == ("rmsnorm", "swiglu", "rope")
    init_from = getattr(recipe.model, "init_from", None)
    languages = [k for k in comp.languages if k != "und"]
    results = [{"task": {"type": "text-generation", "name": "Language modelling"},
                "dataset": {"type": f"werk-{comp.ingest_key}", "name": "Held-out validation split"},
                "metrics": [{"type": "bits_per_byte", "value": round(report.model.bits_per_byte, 4)},
                            {"type": "perplexity", "value": round(report.model.perplexity, 3)},
                            {"type": "loss", "value": round(report.model.loss, 4)}]}]
    for task_name, t in report.tasks.items():
        results.append({"task": {"type": "multiple-choice", "name": task_name},
                        "dataset": {"type": task_name, "name": task_name},
                        "metrics": [{"type": "accuracy", "value": round(t.acc, 4)},
                                    {"type": "acc_norm", "value": round(t.acc_norm, 4)}]})
    meta: dict[str, Any] = {"license": cards.model_license or "other", "language": languages, "library_name": "pytorch",
                            "pipeline_tag": "text-generation", "tags": ["werk", "pretraining"],
                            "datasets": [f"werk-{comp.ingest_key}"]}
    if cost.get("co2_kg") is not None:
        workers = recipe.compute.num_workers
        meta["co2_eq_emissions"] = {
            "emissions": round(cost["co2_kg"] * 1000, 3), "source": f"Werk: {cost['energy_method']}",
            "training_type": "pre-training",
            "hardware_used": f"{workers} x GPU" if recipe.compute.use_gpu else f"{workers} CPU worker(s)"}
    meta["model-index"] = [{"name": name, "results": results}]
    summary = pretrain.summary
    lines = [front_matter(meta), f"# {name}, version {version}", ""]
    if erasure_pending:
        lines += [f"**Trained on data erased since** ({', '.join(erasure_pending)}): retrain before use.", ""]
    lines += [recipe.description or "A language model pretrained with Werk.", "", "## Architecture", ""]
    kind = ("decoder-only transformer, modern block (RoPE, RMSNorm, SwiGLU" + (", GQA)" if model.n_kv_head else ")")
            if modern else "decoder-only transformer, GPT-2 style block")
    lines += table(["", ""], [("Type", kind), ("Parameters", n(summary.parameters)),
                              *([("Initialised from", f"`{init_from}`")] if init_from else []),
                              ("Layers", model.n_layer), ("Heads", model.n_head), ("Width", model.n_embd),
                              ("Context", f"{model.block_size} tokens"),
                              ("Vocabulary", f"{n(vocab_size)} tokens (byte-level BPE)")])
    lines += ["", "## Training", ""]
    lines += table(["", ""], [
        ("Recipe", f"`{recipe.name}`"), ("Steps", n(summary.global_step)),
        ("Tokens trained", n(pretrain.data.tokens_trained) if pretrain.data else "not recorded"),
        ("Peak learning rate", f"{train.lr:g}"), ("Seed", train.seed),
        ("Data", f"ingest `{comp.ingest_key}` ({n(comp.documents)} documents; manifest sha256 `{comp.manifest_sha256}`)")])
    lines += ["", "## Evaluation", ""]
    lines += table(["measure", "model", "unigram baseline"], [
        ("bits per byte", f"{report.model.bits_per_byte:.4f}", f"{report.unigram_baseline.bits_per_byte:.4f}"),
        ("perplexity", f"{report.model.perplexity:.2f}", f"{report.unigram_baseline.perplexity:.2f}")])
    if report.tasks:
        lines += [""] + table(["task", "accuracy", "chance"], [(k, f"{t.acc:.3f} ± {t.acc_stderr:.3f}", f"{t.random_baseline:.3f}")
                                                            for k, t in report.tasks.items()])
    lines += ["", "## Compute", ""]
    lines += table(["", ""], [
        ("Training compute", f"{cost['flops']:.3g} FLOPs" if cost.get("flops") else "not recorded"),
        ("Device-hours", f"{cost.get('device_hours', 0):.4g}"),
        ("Energy (all stages)", f"{cost['energy_kwh']:.4g} kWh" if cost.get("energy_kwh") is not None else "not recorded"),
        ("Method", str(cost.get("energy_method", ""))),
        ("Emissions", f"{cost['co2_kg']:.4g} kg CO2eq" if cost.get("co2_kg") is not None
         else "not computed (set compute.grid_gco2_per_kwh or compute.country_iso_code)")])
    lines += ["", "## Intended use", "", cards.intended_use, "", "## Limitations", ""]
    lines += [f"- {x}" for x in [*([] if init_from else [FROM_SCRATCH]), *LIMITATIONS, *cards.limitations]]
    lines += ["", "## Data", "", "Sources, with their licences:", ""]
    lines += table(["source", "licence", "documents"], [(s.name, s.license, n(s.documents)) for s in comp.sources])
    return "\n".join(lines) + "\n"
