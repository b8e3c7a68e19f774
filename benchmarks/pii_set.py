"""A labelled personal-data evaluation set, built reproducibly (fixed seed, no network).

Real prose from the repository's corpora (German, English, Spanish and Dutch parliamentary
speeches, Shakespeare) with personal data planted at varied positions: sentence ends, brackets,
quotes, line ends, lists, tables, after colons, glued to punctuation. The data is generated with
`Faker` for EU locales; phone numbers are Faker's numbers for the locale that libphonenumber
accepts as valid there, written the ways people write them (international with `+` or `00`,
national, with spaces, dots, dashes, slashes, brackets, the `(0)` trunk prefix). Near-misses that
must survive are planted the same way: dates, times, amounts, percentages, postal codes, ISBNs,
DOIs, version numbers, private and documentation IP ranges, IBANs and card numbers with a wrong
check digit, file and case numbers, ORCIDs, grouped population figures.

Labels are character spans `[start, end, kind]`, kind one of email, phone, iban, card, ip.

    .venv/bin/python benchmarks/pii_set.py --docs 3000 --out pii.jsonl
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

FIRST_DAY, LAST_DAY = datetime.date(1990, 1, 1), datetime.date(2025, 12, 31)
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets" / "corpus"
KINDS = ("email", "phone", "iban", "card", "ip")
# Faker locale -> the region its phone numbers belong to (ISO 3166-1).
LOCALES = {
    "de_DE": "DE", "fr_FR": "FR", "it_IT": "IT", "es_ES": "ES", "nl_NL": "NL", "pl_PL": "PL",
    "pt_PT": "PT", "sv_SE": "SE", "da_DK": "DK", "fi_FI": "FI", "cs_CZ": "CZ", "el_GR": "GR",
    "ro_RO": "RO", "de_AT": "AT", "sk_SK": "SK", "hu_HU": "HU", "hr_HR": "HR", "sl_SI": "SI", "lt_LT": "LT",
}
# How an item sits in the text around it; `{x}` is the item.
CONTEXTS = (
    "{x}", "{x}.", "Contact: {x}.", "Kontakt: {x}", "Tel. {x}", "Tel.:{x}", "E-Mail:{x}", "({x})", "({x}).",
    "[{x}]", "\"{x}\"", "'{x}'", "«{x}»", "„{x}“", "<{x}>", "{x},", "{x};", "{x}!", "{x}?", ",{x},",
    "\n{x}\n", "\n- {x}\n", "\n* {x}\n", "\n1. {x}\n", "\n| Name | {x} |\n", "|{x}|", "{x}:", "{x})", "/{x}",
    "\t{x}\t", "{x}...", "{x} –", "— {x}.",
)


@dataclass(frozen=True)
class Example:
    text: str
    spans: tuple[tuple[int, int, str], ...]  # (start, end, kind), sorted
    locale: str


@dataclass
class _Doc:
    parts: list[str] = field(default_factory=list)
    spans: list[tuple[int, int, str]] = field(default_factory=list)
    length: int = 0

    def add(self, text: str, kind: str | None = None) -> None:
        if kind:
            self.spans.append((self.length, self.length + len(text), kind))
        self.parts.append(text)
        self.length += len(text)


def _same_number(written: str, region: str, number) -> bool:
    import phonenumbers as pn

    try:
        back = pn.parse(written, region)
    except pn.NumberParseException:
        return False
    return (back.country_code, pn.national_significant_number(back)) == (number.country_code, pn.national_significant_number(number))


def _sentences() -> list[str]:
    texts = [p.read_text() for p in sorted((ASSETS / "shakespeare").glob("*.txt"))]
    for p in sorted((ASSETS / "parlspeech").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in p.read_text().splitlines()]
    out = []
    for text in texts:
        out += [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 20 <= len(s.strip()) <= 400]
    return out


class _Generator:
    def __init__(self, seed: int):
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = {}
        for i, locale in enumerate(LOCALES):
            fake = Faker(locale)
            fake.seed_instance(seed * 1000 + i)
            self.fakers[locale] = fake
        # Card numbers are the same across Europe; some locales' providers lack common brands.
        self.cards = Faker("en_US")
        self.cards.seed_instance(seed)

    # -- personal data ---------------------------------------------------------------------
    def email(self, fake) -> str:
        style = self.rng.randrange(4)
        if style == 0:
            return fake.email()
        if style == 1:
            return fake.company_email()
        if style == 2:
            tag = re.sub(r"[^\w-]", "", fake.word())
            return f"{fake.user_name()}+{tag}@{fake.domain_name()}"
        # Names as they go into addresses: no spaces or commas ("Werl-Arnsberg, van").
        local = re.sub(r"[^\w.'-]", "", f"{fake.first_name()}.{fake.last_name()}".lower()).encode("ascii", "ignore").decode()
        if not local.strip(".").isascii() or len(local.strip(".")) < 3 or "." not in local.strip("."):
            local = fake.user_name()  # names in Greek or Cyrillic script leave nothing in ASCII
        return f"{local}@{fake.domain_name(2)}"

    def phone(self, fake, region: str) -> str:
        import phonenumbers as pn

        for _ in range(200):
            raw = fake.phone_number()
            try:
                number = pn.parse(raw, region)
            except pn.NumberParseException:
                continue
            national = pn.format_number(number, pn.PhoneNumberFormat.NATIONAL)
            if region in ("DE", "AT") and " 0" in national:
                continue  # Faker's random digits: German and Austrian subscriber numbers never start with 0
            if pn.is_valid_number(number) and pn.region_code_for_number(number) == region:
                written = self._phone_style(raw, number, region)
                # Labels are numbers libphonenumber reads back as the same number; a dotted
                # 4-pair number ("73.15.48.29") is an IPv4 address as much as a phone number.
                if _same_number(written, region, number) and not _IPV4.fullmatch(written):
                    return written
        raise RuntimeError(f"Faker gave no valid {region} number in 200 draws")

    def _phone_style(self, raw: str, number, region: str) -> str:
        import phonenumbers as pn

        intl = pn.format_number(number, pn.PhoneNumberFormat.INTERNATIONAL)
        national = pn.format_number(number, pn.PhoneNumberFormat.NATIONAL)
        cc = str(number.country_code)
        rest = intl[len(cc) + 2:]  # after "+<cc> "
        styles: list[Callable[[], str]] = [
            lambda: raw if "x" not in raw else intl,  # Faker's own writing for the locale
            lambda: pn.format_number(number, pn.PhoneNumberFormat.E164),
            lambda: intl,
            lambda: f"00{cc} {rest}",
            lambda: f"00{cc}{rest.replace(' ', '')}",
            lambda: f"+{cc}-{rest.replace(' ', '-')}",
            lambda: f"+{cc}.{rest.replace(' ', '.')}",
            lambda: f"(+{cc}) {rest}",
            lambda: national,
            lambda: national.replace(" ", "-"),
            lambda: national.replace(" ", "."),
            lambda: national.replace(" ", ""),
        ]
        if national.startswith("0"):
            area, _, local = national.partition(" ")
            if local:
                styles += [lambda: f"+{cc} (0){rest}", lambda: f"({area}) {local}"]
                if region in ("DE", "AT"):  # "030/1234567": the area code's slash, German usage
                    styles.append(lambda: f"{area}/{local.replace(' ', '')}")
        return self.rng.choice(styles)()

    def iban(self, fake) -> str:
        iban = fake.iban()
        return iban if self.rng.random() < 0.5 else " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))

    def card(self, fake) -> str:
        kind = self.rng.choice(["visa16", "mastercard", "amex", "maestro", "diners", "jcb16", "discover"])
        number = self.cards.credit_card_number(kind)
        style = self.rng.randrange(3)
        if style == 0 or len(number) not in (15, 16):
            return number
        sep = " " if style == 1 else "-"
        groups = (4, 6, 5) if len(number) == 15 else (4, 4, 4, 4)
        out, i = [], 0
        for g in groups:
            out.append(number[i:i + g])
            i += g
        return sep.join(out)

    def ip(self, fake) -> str:
        if self.rng.random() < 0.6:
            while True:
                addr = fake.ipv4_public()
                if ipaddress.ip_address(addr).is_global:
                    return addr
        # Global unicast in the European registry's ranges, some with zero runs ("::").
        prefix = self.rng.choice([0x2A00, 0x2A01, 0x2A02, 0x2A03, 0x2A10])
        groups = [prefix] + [self.rng.randrange(0x10000) for _ in range(7)]
        if self.rng.random() < 0.4:
            for k in range(self.rng.randrange(3, 7), 7):
                groups[k] = 0
        text = str(ipaddress.IPv6Address(":".join(f"{g:x}" for g in groups)))
        return text.upper() if self.rng.random() < 0.1 else text

    # -- near-misses (must survive) ------------------------------------------------------------
    def near_miss(self, fake) -> str:
        rng = self.rng
        choices: list[Callable[[], str]] = [
            # Fixed bounds: Faker's default ends "now", which would change the set from day to day.
            lambda: fake.date_between(FIRST_DAY, LAST_DAY).strftime(rng.choice(["%d.%m.%Y", "%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d. %m. %Y"])),
            lambda: fake.date_time_between(FIRST_DAY, LAST_DAY).strftime(rng.choice(["%H:%M", "%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ", "%d.%m.%Y %H:%M"])),
            lambda: rng.choice(["{:,.2f} €", "€ {:,.2f}", "EUR {:,.0f}", "{:,.2f} Kč"]).format(rng.uniform(10, 9_999_999)),
            lambda: f"{rng.uniform(0, 100):.1f} %".replace(".", rng.choice([".", ","])),
            lambda: f"{fake.postcode()} {fake.city()}",
            lambda: f"ISBN {fake.isbn13()}",
            lambda: f"ISBN {fake.isbn10()}",
            lambda: rng.choice(["doi:", "https://doi.org/", ""]) + f"10.{rng.randrange(1000, 99999)}/{fake.bothify('???.####.###')}",
            lambda: f"v{rng.randrange(0, 20)}.{rng.randrange(0, 40)}.{rng.randrange(0, 200)}",
            lambda: rng.choice([f"192.168.{rng.randrange(256)}.{rng.randrange(1, 255)}", f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                                f"172.{rng.randrange(16, 32)}.{rng.randrange(256)}.{rng.randrange(1, 255)}", f"203.0.113.{rng.randrange(1, 255)}",
                                f"198.51.100.{rng.randrange(1, 255)}", f"192.0.2.{rng.randrange(1, 255)}", "127.0.0.1", "::1",
                                f"2001:db8::{rng.randrange(1, 0xffff):x}", f"fe80::{rng.randrange(1, 0xffff):x}:{rng.randrange(1, 0xffff):x}"]),
            lambda: self._bad_iban(fake),
            lambda: self._bad_card(fake),
            lambda: rng.choice([f"Az. {rng.randrange(1, 9)} BvR {rng.randrange(100, 9999)}/{rng.randrange(10, 25)}",
                                f"C-{rng.randrange(1, 999)}/{rng.randrange(10, 25)}", f"Drucksache {rng.randrange(10, 21)}/{rng.randrange(1000, 99999)}",
                                f"Case T-{rng.randrange(1, 999)}/{rng.randrange(10, 25)}", f"No. {rng.randrange(1990, 2026)}/{rng.randrange(1, 99999):05d}",
                                f"{rng.randrange(100, 999)}/{rng.randrange(100000, 999999)}/{rng.randrange(10, 99)}"]),
            lambda: "0000-000{}-{:04d}-{:03d}{}".format(rng.randrange(1, 4), rng.randrange(10000), rng.randrange(1000), rng.choice("0123456789X")),
            # Figures grouped in thousands (a 9-digit figure in 3-3-3 is written like a Polish or
            # Spanish phone number and cannot be told apart without reading the sentence).
            lambda: f"{rng.randrange(1000, 100_000_000):,}".replace(",", rng.choice([" ", "."])),
            lambda: f"{rng.randrange(1, 31)}.{rng.randrange(1, 12)}.",
            lambda: f"§ {rng.randrange(1, 300)} Abs. {rng.randrange(1, 9)}",
        ]
        return rng.choice(choices)()

    def _bad_iban(self, fake) -> str:
        iban = fake.iban()
        check = (int(iban[2:4]) + self.rng.randrange(1, 97)) % 97
        bad = f"{iban[:2]}{check:02d}{iban[4:]}"
        return bad if self.rng.random() < 0.5 else " ".join(bad[i:i + 4] for i in range(0, len(bad), 4))

    def _bad_card(self, fake) -> str:
        number = self.cards.credit_card_number(self.rng.choice(["visa16", "mastercard"]))
        last = (int(number[-1]) + self.rng.randrange(1, 10)) % 10
        bad = number[:-1] + str(last)
        return bad if self.rng.random() < 0.5 else " ".join(bad[i:i + 4] for i in range(0, 16, 4))

    # -- documents -----------------------------------------------------------------------------
    def example(self, sentences: list[str]) -> Example:
        rng = self.rng
        locale = rng.choice(list(LOCALES))
        fake = self.fakers[locale]
        start = rng.randrange(len(sentences) - 6)
        prose = sentences[start:start + rng.randrange(2, 6)]
        doc = _Doc()
        items = rng.randrange(1, 4)
        slots = sorted(rng.sample(range(len(prose) + 1), min(items, len(prose) + 1)))
        for i, sentence in enumerate(prose + [""]):
            if i in slots:
                self._plant(doc, fake, locale, inline=False)
            if sentence:
                words = sentence.split(" ")
                if rng.random() < 0.3 and len(words) > 3:  # mid-sentence
                    cut = rng.randrange(1, len(words) - 1)
                    doc.add(" ".join(words[:cut]) + " ")
                    self._plant(doc, fake, locale, inline=True)
                    doc.add(" " + " ".join(words[cut:]) + " ")
                else:
                    doc.add(sentence + " ")
        text = "".join(doc.parts)
        return Example(text, tuple(sorted(doc.spans)), locale)

    def _plant(self, doc: _Doc, fake, locale: str, inline: bool) -> None:
        rng = self.rng
        if rng.random() < 0.25:
            kind, item = None, self.near_miss(fake)
        else:
            kind = rng.choice(KINDS)
            item = {"email": lambda: self.email(fake), "phone": lambda: self.phone(fake, LOCALES[locale]),
                    "iban": lambda: self.iban(fake), "card": lambda: self.card(fake), "ip": lambda: self.ip(fake)}[kind]()
        context = rng.choice(CONTEXTS)
        before, after = context.split("{x}")
        doc.add(before)
        doc.add(item, kind)
        doc.add(after + ("" if inline or after.endswith("\n") else " "))


def build(seed: int = 13, docs: int = 3000) -> list[Example]:
    """The evaluation set: the same seed and Faker version give the same documents and labels."""
    sentences = _sentences()
    gen = _Generator(seed)
    return [gen.example(sentences) for _ in range(docs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--docs", type=int, default=3000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with args.out.open("w") as f:
        for ex in build(args.seed, args.docs):
            f.write(json.dumps({"text": ex.text, "spans": ex.spans, "locale": ex.locale}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()


# -- scoring ---------------------------------------------------------------------------------
Span = tuple[int, int, str]


@dataclass
class Tally:
    gold: int = 0
    found: int = 0  # gold spans fully covered by predictions of their kind
    predicted: int = 0
    correct: int = 0  # predictions that overlap a gold span of their kind

    @property
    def recall(self) -> float:
        return self.found / self.gold if self.gold else 1.0

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0


def _covered(gold: Span, predicted: list[Span], text: str) -> bool:
    """Every letter and digit of the gold span lies inside a prediction of its kind: a partly
    redacted number still leaks the rest, so it counts as missed."""
    start, end, kind = gold
    mask = [False] * (end - start)
    for p_start, p_end, p_kind in predicted:
        if p_kind == kind:
            for i in range(max(start, p_start), min(end, p_end)):
                mask[i - start] = True
    return all(m or not text[start + i].isalnum() for i, m in enumerate(mask))


def score(examples: list[Example], predictions: list[list[Span]]) -> dict[str, dict[str, Tally]]:
    """Recall and precision per kind and per locale (all kinds of that locale together)."""
    by_kind = {k: Tally() for k in KINDS}
    by_locale: dict[str, Tally] = {}
    for ex, predicted in zip(examples, predictions, strict=True):
        loc = by_locale.setdefault(ex.locale, Tally())
        for gold in ex.spans:
            hit = _covered(gold, predicted, ex.text)
            for t in (by_kind[gold[2]], loc):
                t.gold += 1
                t.found += hit
        for p in predicted:
            ok = any(g[2] == p[2] and g[0] < p[1] and p[0] < g[1] for g in ex.spans)
            for t in (by_kind[p[2]], loc):
                t.predicted += 1
                t.correct += ok
    return {"kind": by_kind, "locale": dict(sorted(by_locale.items()))}


def misses(examples: list[Example], predictions: list[list[Span]]) -> list[tuple[str, str, str]]:
    """(kind, what was missed or wrongly redacted, context) for a look at what a recogniser gets wrong."""
    out = []
    for ex, predicted in zip(examples, predictions, strict=True):
        for gold in ex.spans:
            if not _covered(gold, predicted, ex.text):
                out.append((f"missed {gold[2]}", ex.text[gold[0]:gold[1]], ex.text[max(0, gold[0] - 20):gold[1] + 20]))
        for p in predicted:
            if not any(g[2] == p[2] and g[0] < p[1] and p[0] < g[1] for g in ex.spans):
                out.append((f"false {p[2]}", ex.text[p[0]:p[1]], ex.text[max(0, p[0] - 20):p[1] + 20]))
    return out
