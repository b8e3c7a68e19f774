"""Continue pretraining a Hugging Face folder (`model.init_from`, `tokenizer.uri`): the folder sets
the shape and the starting weights, its tokenizer is used as given, and the output's address
names the weights by content."""

from __future__ import annotations

import pytest
import torch
from helpers.encoded import encoded_corpus

pytestmark = pytest.mark.slow


def test_pretraining_starts_from_the_folder_s_weights(tmp_path, corpus_dir):
    from infra.ray_cluster import ray_session
    from models.gpt import GPT, GPTConfig
    from tasks.export import hf_folder
    from tasks.export.init_from import imported, shape_fields
    from tasks.tokenizer.address import given_file
    from tasks.training import launch
    from tasks.training.config import ComputeConfig, ModelConfig, TrainConfig
    from tasks.training.job import PretrainJob

    summary = encoded_corpus(tmp_path, corpus_dir)
    (tokenizer_json,) = (tmp_path / "store" / "tokenizer").glob("*/tokenizer.json")
    torch.manual_seed(7)
    start = GPT(GPTConfig(vocab_size=summary["vocab_size"], block_size=32, n_layer=1, n_head=4, n_kv_head=2, n_embd=32,
                          norm="rmsnorm", mlp="swiglu", position="rope", tie_embeddings=False, norm_eps=1e-5))
    folder = tmp_path / "hf"
    hf_folder.write(start.state_dict(), start.config, tokenizer_json, folder)
    assert given_file(str(folder)) == str(folder / "tokenizer.json")  # tokenizer.uri may name the folder

    shape, digest = imported(str(folder), summary["vocab_size"])
    model = ModelConfig(init_from=str(folder)).model_copy(update=shape_fields(shape))
    assert (model.n_kv_head, model.norm_eps, model.tie_embeddings) == (2, 1e-5, False)

    def job(init_sha256: str) -> PretrainJob:
        return PretrainJob(
            model=model, vocab_size=summary["vocab_size"], init_sha256=init_sha256,
            # A vanishing learning rate: after two steps the weights are still the folder's.
            train=TrainConfig(max_steps=2, batch_size=4, lr=1e-9, warmup_steps=0, weight_decay=0.0,
                              steps_per_checkpoint=2, val_batches=1),
            compute=ComputeConfig(num_workers=1), train_shards=summary["splits"]["train"]["shards"],
            val_shards=summary["splits"]["val"]["shards"])

    root = str(tmp_path / "runs")
    out = launch.plan(job(digest), root, "encode-key")
    assert launch.plan(job("another"), root, "encode-key").key != out.key  # the weights are in the address
    with ray_session(min_cpus=1):
        record = launch.run_pretrain(job(digest), out, root)
    trained = torch.load(record.outputs.weights, weights_only=True)
    for name, tensor in start.state_dict().items():
        torch.testing.assert_close(trained[name], tensor, atol=1e-6, rtol=0)
    fresh = GPT(GPTConfig(**start.config.to_dict()))  # another random start differs by far more
    assert (fresh.state_dict()["wte.weight"] - trained["wte.weight"]).abs().max() > 1e-2
    with pytest.raises(ValueError, match="vocabulary of"):
        imported(str(folder), summary["vocab_size"] + 1)


def test_a_recipe_with_init_from_sets_no_shape_of_its_own(tmp_path):
    from flows.recipe import RecipeError, load_recipe

    with pytest.raises(RecipeError, match=r"remove model\.block_size, model\.n_embd"):
        load_recipe("debug", ["model.init_from=/models/hf"])
