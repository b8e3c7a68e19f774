"""The generated documentation of a run, made where the flow has what it needs (the recipe and
the stage records) and handed to MLflow and Prefect by the stage tasks (`flows/stages.py`)."""

from __future__ import annotations

from typing import Any

from flows.recipe import Recipe
from tasks.cards import ai_act
from tasks.cards.composition import Composition, compose
from tasks.cards.croissant import croissant
from tasks.cards.dataset_card import dataset_card
from tasks.cards.model_card import model_card
from tasks.ingest.record import IngestRecord


def _pii_kinds(recipe: Recipe) -> list[str]:
    pii = recipe.ingest.pii
    return [*pii.kinds, *(["custom recognisers"] if pii.recognizers else [])] if pii.enabled else []


def corpus_name(recipe: Recipe, ingest: IngestRecord) -> str:
    return f"werk-{recipe.name} corpus {ingest.key}"


def composition(recipe: Recipe, ingest: IngestRecord, tokens: int | None = None) -> Composition:
    return compose(ingest, recipe.ingest.sources, tokens, recipe.ingest.opt_out.url_field)


def dataset_documents(recipe: Recipe, ingest: IngestRecord, mapper=None) -> tuple[str, dict[str, Any]]:
    """The dataset card (Markdown) and the Croissant description (JSON-LD) of an ingest output."""
    comp = composition(recipe, ingest)
    description = f"The corpus of the Werk recipe `{recipe.name}`" + (f": {recipe.description}" if recipe.description else ".")
    card = dataset_card(comp, corpus_name(recipe, ingest), description, recipe.cards.limitations, _pii_kinds(recipe))
    kwargs = {"mapper": mapper} if mapper else {}
    return card, croissant(ingest, comp, corpus_name(recipe, ingest), description, **kwargs)


def model_documents(recipe: Recipe, name: str, version: str, date: str, ingest: IngestRecord, encode, pretrain,
                    evaluate, cost: dict[str, Any], erasure_pending: list[str]) -> tuple[str, str, dict[str, Any]]:
    """The model card, and the AI Act training-content summary as Markdown and as data."""
    comp = composition(recipe, ingest, tokens=encode.summary.splits["train"].tokens)
    from infra import storage

    card = model_card(name, version, recipe, pretrain, evaluate.summary, comp, cost, erasure_pending,
                      encode.summary.vocab_size, trained=storage.read_json(pretrain.outputs.config))
    summary = ai_act.summary(comp, name, version, date, cost, recipe.cards.provider, recipe.cards.contact,
                             recipe.ingest.opt_out.lists, _pii_kinds(recipe))
    return card, ai_act.markdown(summary), summary.model_dump(mode="json")
