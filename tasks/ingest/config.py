"""Typed configuration of the ingest stage: sources, cleaning filters, deduplication, PII."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tasks.config_base import StageConfig
from tasks.ingest.pii.regions import EUROPE

Format = Literal["auto", "txt", "md", "jsonl", "json", "parquet", "hf_dataset"]


class SourceConfig(StageConfig):
    """One named input: a local file, directory or glob, or an `s3://` prefix."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", description="Short id, part of every doc id.")
    uri: str = Field(description="Path, glob or s3:// prefix; ${VAR} is expanded.")
    license: str = Field(description="License of the texts; recorded for every document.")
    language: str | None = Field(None, description="Language hint (ISO 639-1), if known.")
    format: Format = Field("auto", description="Input format; 'auto' goes by file suffix.")
    text_field: str = Field("text", description="Field holding the text (JSON, Parquet, HF datasets).")
    id_field: str | None = Field(None, description="Field holding a document id, if any.")
    metadata_fields: list[str] = Field(default_factory=list, description="Fields kept as document metadata.")
    # How the source is described in the dataset card and the AI Act training-content summary. Not
    # part of the ingest's address: describing a source differently does not change its documents.
    kind: Literal["public_dataset", "licensed", "private", "crawled", "user", "synthetic", "other"] = Field(
        "other", description="What the source is, in the AI Act summary's terms: a public dataset, data licensed "
        "from or shared by a third party (licensed / private), crawled from the web, user data, synthetic, other.")
    description: str = Field("", description="One line on what the source holds, for the cards.")
    homepage: str | None = Field(None, description="Where the source is described or obtained (a URL).")


class LengthFilter(StageConfig):
    enabled: bool = True
    min_chars: int = Field(1, ge=1)
    max_chars: int = Field(2_000_000, ge=1)


class QualityFilter(StageConfig):
    """Gopher-style heuristics (Rae et al. 2021), with multilingual stop words."""

    enabled: bool = False
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    max_bullet_line_ratio: float = 0.9
    max_ellipsis_line_ratio: float = 0.3
    min_alpha_word_ratio: float = 0.8
    min_stop_words: int = 2
    max_duplicate_line_fraction: float = 0.3
    max_duplicate_line_char_fraction: float = 0.2
    max_duplicate_paragraph_fraction: float = 0.3
    max_duplicate_paragraph_char_fraction: float = 0.2
    max_top_ngram_char_fraction: dict[int, float] = Field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    max_duplicate_ngram_char_fraction: dict[int, float] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    )


# The EU's official languages that both detectors know (lingua has no Maltese; CLD2 does).
EU_LANGUAGES = "bg cs da de el en es et fi fr ga hr hu it lt lv nl pl pt ro sk sl sv".split()


class LanguageFilter(StageConfig):
    enabled: bool = False
    keep: list[str] = Field(default_factory=list, description="ISO 639-1 codes to keep; empty keeps all.")
    detector: Literal["cld2", "lingua"] = Field(
        "cld2", description="'cld2': fast, confidence = share of the text in the language; 'lingua': n-gram models, "
        "confidence = probability (see tasks/ingest/filters/language.py).",
    )
    candidates: list[str] = Field(
        default_factory=lambda: list(EU_LANGUAGES), description="Languages the detector chooses among."
    )
    accuracy: Literal["low", "high"] = Field(
        "low", description="lingua only. 'low': trigram models, ~40 MB; 'high': ~650 MB, better on text under "
        "120 characters only."
    )
    min_confidence: float = Field(0.5, ge=0.0, le=1.0)
    sample_chars: int = Field(2000, ge=50, description="Characters of each document used to identify it.")


class DedupConfig(StageConfig):
    exact: bool = True
    near: bool = False
    threshold: float = Field(0.8, gt=0.0, le=1.0, description="Jaccard similarity that makes a near duplicate.")
    num_perm: int = Field(128, ge=16, le=1024)
    shingle_words: int = Field(5, ge=1, description="Word n-gram size of the shingles.")
    seed: int = 1
    components_in_memory: int = Field(
        20_000_000, ge=0, description="Confirmed near-duplicate pairs joined into groups in one task (~60 bytes "
        "each, estimated from the arrays it holds); beyond this, in ingest.partitions node partitions, round by round. Does not change the output.")


class PiiConfig(StageConfig):
    enabled: bool = True
    kinds: list[Literal["email", "iban", "card", "phone", "ip"]] = Field(
        default_factory=lambda: ["email", "iban", "card", "phone", "ip"]
    )
    phone_regions: list[str] = Field(
        default_factory=lambda: list(EUROPE),
        description="Regions (ISO 3166-1) whose national numbers are recognised without a country code; "
                    "international numbers are recognised for every country.",
    )
    recognizers: list[str] = Field(
        default_factory=list,
        description="A team's own recognisers, as 'package.module:factory' (see tasks/ingest/pii/recognizer.py).",
    )

    @field_validator("phone_regions")
    @classmethod
    def _known_regions(cls, regions: list[str]) -> list[str]:
        import phonenumbers

        unknown = [r for r in regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"unknown phone regions {unknown}: use ISO 3166-1 alpha-2 codes such as DE, FR")
        return regions


class OptOutConfig(StageConfig):
    """Documents never to ingest (see tasks/governance/optout.py for the lists' format)."""

    lists: list[str] = Field(default_factory=list, description="Opt-out lists (paths or s3:// URIs): lines of "
                             "domain:HOST, url:PREFIX, id:DOC_ID or sha256:HEX.")
    url_field: str = Field("url", description="Metadata field holding a document's URL (keep it in the source's "
                           "metadata_fields).")


class IngestConfig(StageConfig):
    sources: list[SourceConfig] = Field(min_length=1)
    val_fraction: float = Field(0.05, gt=0.0, lt=0.5, description="Share of documents held out.")
    length: LengthFilter = LengthFilter()
    quality: QualityFilter = QualityFilter()
    language: LanguageFilter = LanguageFilter()
    dedup: DedupConfig = DedupConfig()
    pii: PiiConfig = PiiConfig()
    opt_out: OptOutConfig = OptOutConfig()
    unit_bytes: int = Field(64 << 20, ge=1, description="Input bytes per Ray task (small files are grouped).")
    partitions: int = Field(
        16, ge=1, le=4096,
        description="Hash partitions of the corpus-wide dedup: one task each, holding 1/partitions of the "
                    "corpus's dedup keys, estimated at ~1 KB per document with near dedup on (16 keys of 25 bytes, "
                    "sorted). Raise it with the corpus: 100 M documents in 64 partitions, ~1.6 GB per task.")
    num_workers: int | None = Field(None, ge=1, description="Ray tasks in flight; default: the cluster's CPUs.")
