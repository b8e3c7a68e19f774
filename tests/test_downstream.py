"""Downstream tasks: the log-likelihood scorer is exact, a model that learned a task scores far
above chance and a random model at chance; bad task files and unknown names are clear errors."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.gpt import GPT, GPTConfig
from tasks.evaluate import downstream
from tasks.evaluate.downstream import TaskError


def _digit_tokenizer():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    vocab = {"<|endoftext|>": 0, "<|pad|>": 1, "<unk>": 2, **{str(d): 3 + d for d in range(10)}}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = WhitespaceSplit()
    return tok


def _counting_items(n: int, seed: int = 0) -> list[downstream.Item]:
    """Context: 4 consecutive digits (mod 10); the right continuation is the next one."""
    rng = random.Random(seed)
    items = []
    for i in range(n):
        start = rng.randrange(10)
        context = " ".join(str((start + k) % 10) for k in range(4))
        answer = str((start + 4) % 10)
        wrong = rng.sample([str(d) for d in range(10) if str(d) != answer], 3)
        choices = [answer, *wrong]
        rng.shuffle(choices)
        items.append(downstream.Item(f"c{i}", context, tuple(" " + c for c in choices), choices.index(answer)))
    return items


def _model(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=13, block_size=16, n_layer=1, n_head=2, n_embd=32)).eval()


def _trained_on_counting() -> GPT:
    model = _model().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for _ in range(150):
        starts = torch.randint(0, 10, (32, 1), generator=gen)
        seq = (starts + torch.arange(17)) % 10 + 3
        loss = model.loss(seq[:, :-1], seq[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def test_loglikelihood_equals_a_direct_computation_and_ignores_batching():
    model = _model()
    requests = [([0, 5, 6], [7, 8]), ([0, 3], [4]), ([0, 9, 9, 9, 9], [3, 4, 5])]
    ctx, cont = requests[0]
    logits = model(torch.tensor([ctx + cont[:-1]]))[0]
    expected = sum(float(F.log_softmax(logits[len(ctx) - 1 + j], -1)[t]) for j, t in enumerate(cont))
    one = downstream.loglikelihood(model, requests, pad_id=0, batch_size=1)
    batched = downstream.loglikelihood(model, requests, pad_id=0, batch_size=3)
    assert one[0][0] == pytest.approx(expected, abs=1e-5)
    assert [lp for lp, _ in one] == pytest.approx([lp for lp, _ in batched], abs=1e-5)


def test_a_model_that_learned_the_task_beats_chance_and_a_random_model_does_not():
    tok, items = _digit_tokenizer(), _counting_items(400)
    learned = downstream.evaluate_task(_trained_on_counting(), tok, "counting", items, batch_size=64)
    random_model = downstream.evaluate_task(_model(seed=1), tok, "counting", items, batch_size=64)
    assert learned.random_baseline == random_model.random_baseline == 0.25
    assert learned.acc > 0.9 and learned.acc - 0.25 > 10 * learned.acc_stderr
    # Not beating chance; a fixed random model may do worse (its preferences for some tokens are
    # systematic, not a coin per item), so the bound is one-sided.
    assert random_model.acc - 0.25 < 3 * random_model.acc_stderr
    assert 0 < random_model.acc_stderr < 0.05


def test_shipped_tasks_load_and_are_well_formed():
    tasks = downstream.available()
    assert {"hamlet-cloze", "parlspeech-cloze", "parlspeech-next-sentence"} <= tasks.keys()
    for name in tasks:
        _, items = downstream.load_task(name)
        assert len(items) >= 50
        assert all(c.startswith(" ") for i in items for c in i.choices)
        answers = np.bincount([i.answer for i in items], minlength=4)
        assert answers.min() > 0  # the right answer is not always in the same place


def test_shipped_tasks_match_a_rebuild_from_the_sources():
    from tasks.evaluate.suite import build

    for name, items in build.build().items():
        shipped = [json.loads(line) for line in downstream.available()[name].read_text().splitlines()]
        assert shipped == items, name


@pytest.mark.parametrize("line,message", [
    ('{"context": "a", "choices": [" b", " c"], "answer": 0', "not valid JSON"),
    ('{"context": "a", "choices": [" b", " c"]}', r"missing field\(s\) answer"),
    ('{"context": "a", "choices": [" b"], "answer": 0}', "at least 2 non-empty strings"),
    ('{"context": "a", "choices": [" b", " c"], "answer": 2}', r"index into `choices` \(0..1\)"),
    ('{"context": 3, "choices": [" b", " c"], "answer": 0}', "`context` must be a string"),
    ('[1, 2]', "must be a JSON object"),
])
def test_a_malformed_task_file_names_the_file_line_and_problem(tmp_path, line, message):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"context": "x", "choices": [" y", " z"], "answer": 1}\n' + line + "\n")
    with pytest.raises(TaskError, match=f"mine.jsonl:2: .*{message}"):
        downstream.load_task(str(path))


def test_an_unknown_task_lists_the_shipped_ones():
    with pytest.raises(TaskError, match="unknown task 'hellaswag'; shipped tasks: .*hamlet-cloze"):
        downstream.load_task("hellaswag")
