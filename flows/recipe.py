"""Recipes: a run's whole configuration, as a YAML file validated by typed stage configs.

A recipe composes the stage configs once; each stage receives only its own part. Overrides use
dotted keys (`train.max_steps=50`), are parsed as YAML scalars, and are validated with the rest, so
an unknown key or a wrong type is refused before anything starts.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from infra.storage import WERK_HOME_ENV, werk_home
from tasks.config_base import StageConfig
from tasks.encode.config import EncodeConfig
from tasks.evaluate.config import EvalConfig
from tasks.ingest.config import IngestConfig
from tasks.cards.config import CardsConfig
from tasks.lineage.config import LineageConfig
from tasks.registry.config import RegistryConfig
from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig
from tasks.tokenizer.config import TokenizerConfig

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"


class RecipeError(ValueError):
    """A recipe that cannot be used; the message names the offending key."""


class Recipe(StageConfig):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    storage_root: str | None = Field(
        None, description="Local path or s3://bucket/prefix for stage outputs; default WERK_HOME/store."
    )
    ingest: IngestConfig
    tokenizer: TokenizerConfig = TokenizerConfig()
    encode: EncodeConfig = EncodeConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    compute: ComputeConfig = ComputeConfig()
    eval: EvalConfig = EvalConfig()
    registry: RegistryConfig = RegistryConfig()
    cards: CardsConfig = CardsConfig()
    lineage: LineageConfig = LineageConfig()

    @property
    def registered_model_name(self) -> str:
        return f"werk-{self.name}"


def available_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def _recipe_path(name_or_file: str) -> Path:
    path = Path(name_or_file)
    if path.suffix in {".yaml", ".yml"}:
        if not path.is_file():
            raise RecipeError(f"recipe file not found: {path}")
        return path
    candidate = RECIPES_DIR / f"{name_or_file}.yaml"
    if not candidate.is_file():
        raise RecipeError(
            f"unknown recipe {name_or_file!r}; known: {', '.join(available_recipes())} "
            "(or pass a path to a .yaml file)"
        )
    return candidate


def apply_override(data: dict[str, Any], assignment: str) -> None:
    """Apply one `dotted.key=value` override in place; the value is read as a YAML scalar."""
    key, sep, raw = assignment.partition("=")
    if not sep or not key.strip():
        raise RecipeError(f"override {assignment!r} is not of the form key=value")
    parts = key.strip().split(".")
    node: Any = data
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node, dict):
            raise RecipeError(f"recipe key {'.'.join(parts[:depth])!r} has no field {part!r}")
        node = node.setdefault(part, {})
    if not isinstance(node, dict):
        raise RecipeError(f"recipe key {'.'.join(parts[:-1])!r} has no field {parts[-1]!r}")
    node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""


def _expand_env(value: Any) -> Any:
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, list):
        return [_expand_env(v) for v in value]
    if isinstance(value, dict):
        return {k: _expand_env(v) for k, v in value.items()}
    return value


def _format_errors(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "<root>"
        lines.append(f"recipe key {loc!r}: {e['msg']}")
    return "\n".join(lines)


def _init_from_alone(model: Any) -> None:
    """`model.init_from` sets the model's shape from its folder: a recipe also setting one would
    be silently overruled, so it is refused (only what the recipe itself writes counts)."""
    if isinstance(model, dict) and model.get("init_from"):
        from tasks.export.init_from import SHAPE

        clash = sorted(k for k in (*SHAPE, "preset") if k in model)
        if clash:
            raise RecipeError(f"model.init_from takes the model's shape from its folder: remove model."
                              f"{', model.'.join(clash)}")


def load_recipe(name_or_file: str = "demo", overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override, expand `${VAR}`s in and validate a recipe."""
    path = _recipe_path(name_or_file)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(f"recipe {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path} must be a mapping of keys to values")
    data = copy.deepcopy(data)
    # WERK_HOME defaults to ./.werk; recipes refer to it as ${WERK_HOME}.
    os.environ.setdefault(WERK_HOME_ENV, str(werk_home()))
    # Recipes shipped with Werk refer to files in the repository as ${WERK_REPO}.
    os.environ.setdefault("WERK_REPO", str(RECIPES_DIR.parent))
    for assignment in overrides:
        apply_override(data, assignment)
    _init_from_alone(data.get("model"))
    try:
        return Recipe.model_validate(_expand_env(data))
    except ValidationError as exc:
        raise RecipeError(_format_errors(exc)) from None
