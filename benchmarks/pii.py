"""Personal-data redaction: Werk's recognisers against Microsoft Presidio's on a labelled set.

The set (benchmarks/pii_set.py) is real prose from the repository's corpora with Faker-generated
personal data for EU locales planted at varied positions, plus near-misses that must survive.
Presidio runs its recognisers for the same kinds (e-mail, phone, IBAN, credit card, IP), built
directly so that no spaCy model is needed; its phone recogniser gets the set's regions. Both run
on the same documents, alternately. Reported: recall and precision per kind and per locale, and
MB/s; `ratio` is Werk's throughput / Presidio's.

    .venv/bin/pip install -e ".[bench]" && .venv/bin/python benchmarks/pii.py [--quick] [--misses]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report  # noqa: E402
from pii_set import KINDS, LOCALES, Example, build, misses, score  # noqa: E402

from tasks.ingest.pii.redact import find  # noqa: E402

PRESIDIO_KIND = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "IBAN_CODE": "iban",
                 "CREDIT_CARD": "card", "IP_ADDRESS": "ip"}
Span = tuple[int, int, str]


def werk(text: str) -> list[Span]:
    return [(s.start, s.end, s.kind) for s in find(text)]


def presidio_finder():
    """Presidio's recognisers for the same kinds, as its AnalyzerEngine would combine them."""
    import tldextract
    import tldextract.tldextract

    # Presidio's e-mail check calls tldextract, which would fetch the public-suffix list from
    # the network on first use; the snapshot shipped inside tldextract is used instead.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, EmailRecognizer,
                                                          IbanRecognizer, IpRecognizer, PhoneRecognizer)

    recognizers = [EmailRecognizer(), IbanRecognizer(), CreditCardRecognizer(), IpRecognizer(),
                   PhoneRecognizer(supported_regions=tuple(sorted(set(LOCALES.values()))))]

    def presidio(text: str) -> list[Span]:
        results = []
        for r in recognizers:
            results += r.analyze(text, r.supported_entities, None)
        results = EntityRecognizer.remove_duplicates([r for r in results if r.score > 0])
        return [(r.start, r.end, PRESIDIO_KIND[r.entity_type]) for r in results]

    return presidio


def _rate(finder, examples: list[Example], megabytes: float) -> float:
    t0 = time.perf_counter()
    for ex in examples:
        finder(ex.text)
    return megabytes / (time.perf_counter() - t0)


def _table(name: str, tallies: dict) -> list[str]:
    lines = [f"| {name} | Werk recall | Werk precision | Presidio recall | Presidio precision | items |", "|---|---:|---:|---:|---:|---:|"]
    for key, (w, p) in tallies.items():
        lines.append(f"| {key} | {w.recall:.4f} | {w.precision:.4f} | {p.recall:.4f} | {p.precision:.4f} | {w.gold} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 documents, 3 rounds")
    parser.add_argument("--docs", type=int, default=None)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--misses", action="store_true", help="print what each side got wrong")
    args = parser.parse_args()
    docs = args.docs or (1000 if args.quick else 5000)
    rounds = args.rounds or (3 if args.quick else 5)

    examples = build(seed=13, docs=docs)
    megabytes = sum(len(ex.text.encode()) for ex in examples) / 1e6
    presidio = presidio_finder()
    werk_pred = [werk(ex.text) for ex in examples]
    presidio_pred = [presidio(ex.text) for ex in examples]
    werk_score, presidio_score = score(examples, werk_pred), score(examples, presidio_pred)
    if args.misses:
        for who, pred in (("werk", werk_pred), ("presidio", presidio_pred)):
            for kind, item, context in misses(examples, pred):
                print(f"{who}\t{kind}\t{item!r}\t{context!r}")

    print(f"{len(examples):,} documents, {megabytes:.2f} MB, "
          f"{sum(len(ex.spans) for ex in examples):,} labelled items, {len(LOCALES)} locales")
    for line in _table("kind", {k: (werk_score["kind"][k], presidio_score["kind"][k]) for k in KINDS}):
        print(line)
    for line in _table("locale", {k: (werk_score["locale"][k], presidio_score["locale"][k]) for k in werk_score["locale"]}):
        print(line)

    w, b = alternate(lambda: _rate(werk, examples, megabytes), lambda: _rate(presidio, examples, megabytes), rounds)
    quality = {f"{who}_{k}": {"recall": round(s["kind"][k].recall, 4), "precision": round(s["kind"][k].precision, 4)}
               for who, s in (("werk", werk_score), ("presidio", presidio_score)) for k in KINDS}
    report("pii_redaction", "MB/s", w, b, documents=len(examples), **quality)


if __name__ == "__main__":
    main()
