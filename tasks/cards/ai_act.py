"""The EU AI Act public summary of training content (Art. 53(1)(d)), following the sections of the
AI Office's template (July 2025), and the compute block of the technical documentation (Annex XI).

Built from the composition of the model's training corpus (`composition.py`) and the records of
the stages that made it; the recipe supplies only what no artifact records (the provider, a
contact). `summary()` returns the structure, `markdown()` renders it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from tasks.cards.composition import Composition, SourceShare
from tasks.cards.tables import n, pct, table

# The template's size bands for text, in tokens.
SIZE_BANDS = ((1_000_000_000, "less than 1 billion tokens"), (10_000_000_000_000, "1 billion to 10 trillion tokens"))
LARGEST_BAND = "more than 10 trillion tokens"
# Source kinds (`ingest.sources[].kind`) -> the template's sections.
SECTIONS = {
    "public_dataset": "2.1 Publicly available datasets",
    "licensed": "2.2.1 Commercially licensed datasets from third parties",
    "private": "2.2.2 Other private datasets obtained from third parties",
    "crawled": "2.3 Data crawled and scraped from online sources",
    "user": "2.4 User data",
    "synthetic": "2.5 Synthetic data",
    "other": "2.6 Other sources of data",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class GeneralInformation(_Frozen):
    provider: str | None
    contact: str | None
    model_name: str
    model_version: str
    date: str
    modality: str = "text"
    size_band: str
    training_tokens: int | None
    documents: int
    bytes: int
    languages: dict[str, int]  # documents per language
    content_types: list[str]
    latest_collection: str | None


class SourceEntry(_Frozen):
    name: str
    description: str
    homepage: str | None
    license: str
    documents: int
    share: float  # of the documents
    domains: list[tuple[str, int]] = []  # crawled: the top 10 % of domains with their bytes


class Processing(_Frozen):
    opt_out_measures: str
    opted_out: int
    illegal_content_measures: str
    rejected: dict[str, int]
    personal_data_measures: str
    redactions: dict[str, int]
    erasures: list[str]


class ComputeBlock(_Frozen):
    """Annex XI, 2(d): the compute and energy used to train the model."""

    training_flops: float | None
    device_hours: float | None
    wall_hours: float | None
    energy_kwh: float | None
    energy_method: str
    co2_kg: float | None


class TrainingContentSummary(_Frozen):
    general: GeneralInformation
    sources: dict[str, list[SourceEntry]]  # template section -> its sources (every section, empty or not)
    processing: Processing
    compute: ComputeBlock


def size_band(tokens: int | None) -> str:
    if tokens is None:
        return "unknown"
    return next((label for bound, label in SIZE_BANDS if tokens < bound), LARGEST_BAND)


def _entry(s: SourceShare, comp: Composition) -> SourceEntry:
    domains = [(d, v.bytes) for d, v in comp.top_domains(s.name)] if s.kind == "crawled" else []
    return SourceEntry(name=s.name, description=s.description, homepage=s.homepage, license=s.license,
                       documents=s.documents, share=s.documents / comp.documents if comp.documents else 0.0, domains=domains)


def summary(comp: Composition, model_name: str, version: str, date: str, cost: dict[str, Any],
            provider: str | None, contact: str | None, opt_out_lists: list[str], pii_kinds: list[str]) -> TrainingContentSummary:
    general = GeneralInformation(
        provider=provider, contact=contact, model_name=model_name, model_version=version, date=date,
        size_band=size_band(comp.tokens), training_tokens=comp.tokens, documents=comp.documents, bytes=comp.bytes,
        languages={k: v.documents for k, v in comp.languages.items()},
        content_types=sorted({"prose" if s.kind != "crawled" else "web pages" for s in comp.sources}),
        latest_collection=comp.latest_collection)
    sources = {section: [_entry(s, comp) for s in comp.sources if SECTIONS[s.kind] == section] for section in SECTIONS.values()}
    quality = {k: v for k, v in comp.rejected.items() if k.startswith(("quality", "language", "too_", "empty"))}
    processing = Processing(
        opt_out_measures=("Opt-out lists applied at ingest, before any text is processed: " + ", ".join(opt_out_lists))
        if opt_out_lists else "No opt-out list was configured for this corpus.",
        opted_out=comp.opted_out,
        illegal_content_measures="Documents are filtered by length, quality heuristics and language; no classifier "
        "for illegal content is applied by Werk.",
        rejected=dict(sorted(quality.items())),
        personal_data_measures=(f"Pattern-based redaction of {', '.join(pii_kinds)} before tokenization" if pii_kinds
                                else "No redaction of personal data was configured")
        + "; erasure requests applied by tombstone at every ingest of their sources.",
        redactions=dict(comp.redactions), erasures=list(comp.erasures))
    compute = ComputeBlock(
        training_flops=cost.get("flops"), device_hours=cost.get("device_hours"),
        wall_hours=cost["wall_s"] / 3600 if "wall_s" in cost else None, energy_kwh=cost.get("energy_kwh"),
        energy_method=str(cost.get("energy_method", "not recorded")), co2_kg=cost.get("co2_kg"))
    return TrainingContentSummary(general=general, sources=sources, processing=processing, compute=compute)


def markdown(s: TrainingContentSummary) -> str:
    g, p, c = s.general, s.processing, s.compute
    lines = [f"# Public summary of training content: {g.model_name} version {g.model_version}", "",
             "Following the template of the EU AI Office (July 2025) for Art. 53(1)(d) of the AI Act; generated by Werk "
             "from the training corpus's manifest and the pipeline's records.", "",
             "## 1. General information", "", "### 1.1 Provider identification", "",
             f"- Provider: {g.provider or 'not stated (set cards.provider in the recipe)'}",
             f"- Contact: {g.contact or 'not stated (set cards.contact in the recipe)'}", "",
             "### 1.2 Model identification", "", f"- Model: {g.model_name}, version {g.model_version} ({g.date})", "",
             "### 1.3 Modalities, overall training data size and other characteristics", "",
             f"- Modality: {g.modality}",
             f"- Training data size: {g.size_band} ({n(g.training_tokens) + ' tokens, ' if g.training_tokens else ''}"
             f"{n(g.documents)} documents, {n(g.bytes)} bytes)",
             f"- Types of content: {', '.join(g.content_types)}",
             f"- Latest date of data collection: {g.latest_collection or 'unknown'}", "",
             "Languages:", ""]
    lines += table(["language", "documents", "share"], [(k, n(v), pct(v, g.documents)) for k, v in g.languages.items()])
    lines += ["", "## 2. List of data sources", ""]
    for section, entries in s.sources.items():
        lines += [f"### {section}", ""]
        if not entries:
            lines += ["None.", ""]
            continue
        lines += table(["source", "description", "licence", "documents", "share"],
                       [(e.name + (f" ({e.homepage})" if e.homepage else ""), e.description or "-", e.license,
                         n(e.documents), f"{100 * e.share:.1f} %") for e in entries])
        for e in entries:
            if e.domains:
                lines += ["", f"Most relevant domains of {e.name} (top 10 % by size): "
                          + ", ".join(f"{d} ({n(b)} bytes)" for d, b in e.domains)]
        lines.append("")
    lines += ["## 3. Data processing aspects", "",
              "### 3.1 Respect of reservation of rights from the text and data mining exception", "",
              f"{p.opt_out_measures} Documents rejected as opted out: {n(p.opted_out)}.", "",
              "### 3.2 Removal of illegal content", "", p.illegal_content_measures, ""]
    lines += table(["filter", "documents removed"], [(k, n(v)) for k, v in p.rejected.items()] or [("none", "0")])
    lines += ["", "### 3.3 Other information", "", p.personal_data_measures, ""]
    lines += table(["personal data", "redactions"], [(k, n(v)) for k, v in p.redactions.items()] or [("none", "0")])
    lines += ["", f"Erasure requests applied to this corpus: {', '.join(p.erasures) or 'none'}.", "",
              "## Annex XI: compute used for training", ""]
    lines += table(["", ""], [
        ("Training compute", f"{c.training_flops:.3g} FLOPs" if c.training_flops else "not recorded"),
        ("Device-hours", f"{c.device_hours:.4g}" if c.device_hours is not None else "not recorded"),
        ("Wall time (all stages)", f"{c.wall_hours:.4g} h" if c.wall_hours is not None else "not recorded"),
        ("Energy", f"{c.energy_kwh:.4g} kWh" if c.energy_kwh is not None else "not recorded"),
        ("Energy method", c.energy_method),
        ("Emissions", f"{c.co2_kg:.4g} kg CO2eq" if c.co2_kg is not None else "not computed (no grid intensity configured)")])
    return "\n".join(lines) + "\n"
