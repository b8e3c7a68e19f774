import pytest

from flows.recipe import Recipe, RecipeError, apply_override, available_recipes, load_recipe


@pytest.mark.parametrize("name", available_recipes())
def test_every_shipped_recipe_validates(name):
    recipe = load_recipe(name)
    assert isinstance(recipe, Recipe)
    assert recipe.name == name
    assert "${" not in recipe.ingest.sources[0].uri  # variables expanded


def test_shipped_recipes_are_the_documented_ones():
    assert {"debug", "demo", "gpt2-124m"} <= set(available_recipes())


def test_the_gpt2_recipe_keeps_gpt2_s_block_and_the_others_the_modern_default():
    gpt2 = load_recipe("gpt2-124m").model
    assert (gpt2.position, gpt2.norm, gpt2.mlp, gpt2.n_layer, gpt2.n_embd) == ("learned", "layernorm", "gelu", 12, 768)
    for name in ("debug", "demo"):
        model = load_recipe(name).model
        assert (model.position, model.norm, model.mlp) == ("rope", "rmsnorm", "swiglu"), name


def test_override_sets_nested_value_with_yaml_typing():
    recipe = load_recipe("debug", ["train.max_steps=50", "train.lr=1e-3", "model.bias=true"])
    assert recipe.train.max_steps == 50
    assert recipe.train.lr == pytest.approx(1e-3)
    assert recipe.model.bias is True


def test_unknown_key_is_refused_naming_the_key():
    with pytest.raises(RecipeError, match=r"train\.max_stepz"):
        load_recipe("debug", ["train.max_stepz=50"])


def test_wrong_type_is_refused_naming_the_key():
    with pytest.raises(RecipeError, match=r"model\.n_layer"):
        load_recipe("debug", ["model.n_layer=many"])


def test_out_of_range_is_refused():
    with pytest.raises(RecipeError, match=r"ingest\.val_fraction"):
        load_recipe("debug", ["ingest.val_fraction=2"])


def test_override_without_equals_is_refused():
    with pytest.raises(RecipeError, match="key=value"):
        apply_override({}, "train.max_steps")


def test_unknown_recipe_lists_known_ones():
    with pytest.raises(RecipeError, match="debug"):
        load_recipe("no-such-recipe")


def test_recipe_file_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ningest:\n  sources:\n    - {name: a, uri: /data, license: CC0-1.0}\n")
    recipe = load_recipe(str(path))
    assert recipe.name == "mine"
    assert recipe.train.max_steps == 1000  # defaults fill the rest


def test_configs_are_frozen():
    recipe = load_recipe("debug")
    with pytest.raises(Exception):
        recipe.train.max_steps = 3
