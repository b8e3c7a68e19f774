import pytest

from tasks.ingest.config import LanguageFilter, QualityFilter
from tasks.ingest.filters.language import identify, language_issue
from tasks.ingest.filters.quality import quality_issue

PROSE = (
    "The committee met on Tuesday to discuss the budget for the coming year. Members agreed that "
    "the funds for schools and hospitals should be increased, and that the council would publish "
    "a full report before the end of the month. Several speakers pointed out that the town has "
    "grown quickly and that roads, bridges and public transport need attention as well. The chair "
    "thanked everyone for their work and closed the meeting with a short note on the next steps."
)
GERMAN = (
    "Der Ausschuss hat am Dienstag über den Haushalt für das kommende Jahr beraten. Die Mitglieder "
    "waren sich einig, dass die Mittel für Schulen und Krankenhäuser erhöht werden sollen und dass der "
    "Rat vor Ende des Monats einen vollständigen Bericht veröffentlichen wird. Mehrere Redner wiesen "
    "darauf hin, dass die Stadt schnell gewachsen ist und auch Straßen und Brücken Aufmerksamkeit brauchen."
)


def test_good_prose_passes_in_several_languages():
    cfg = QualityFilter(enabled=True)
    assert quality_issue(PROSE, cfg) is None
    assert quality_issue(GERMAN, cfg) is None


@pytest.mark.parametrize("text, rule", [
    ("Too short to be a document.", "quality:too_few_words"),
    ("a b c d e f g h i j " * 10, "quality:mean_word_length"),
    ("#hashtag #more #tags " * 20 + PROSE, "quality:symbol_ratio"),
    ("\n".join(f"- item number {i} on the list of things" for i in range(60)), "quality:bullet_lines"),
    ("\n".join(f"and then the story went on and on for quite a while in the town {i}..." for i in range(60)), "quality:ellipsis_lines"),
    ("1234 5678 9012 3456 7890 " * 20 + "the and of to", "quality:alpha_words"),
    ("lorem ipsum dolor sit amet consectetur adipiscing elit sed eiusmod " * 8, "quality:stop_words"),
    ("\n".join(["Click here to subscribe to the newsletter and the offers"] * 20 + [PROSE]), "quality:duplicate_lines"),
    ("\n\n".join(["Click here to subscribe to the newsletter and the offers"] * 20 + [PROSE]), "quality:duplicate_paragraphs"),
    (PROSE + " " + " ".join(["the budget for the coming year"] * 30), "quality:top_2gram"),
])
def test_each_quality_rule_rejects_its_case(text, rule):
    assert quality_issue(text, QualityFilter(enabled=True)) == rule


def test_duplicate_ngrams_rule():
    text = PROSE + " " + " ".join(f"{PROSE.split('.')[0]} number {i}." for i in range(4))
    assert quality_issue(text, QualityFilter(enabled=True)).startswith(("quality:duplicate_", "quality:top_"))


def test_thresholds_come_from_config():
    assert quality_issue(PROSE, QualityFilter(enabled=True, min_words=500)) == "quality:too_few_words"


@pytest.mark.parametrize("detector", ["cld2", "lingua"])
def test_language_identification_and_keep_list(detector):
    cfg = LanguageFilter(enabled=True, keep=["en", "de"], detector=detector)
    assert identify(PROSE, cfg)[0] == "en"
    lang, conf = identify(GERMAN, cfg)
    assert lang == "de" and conf > 0.5 and language_issue(lang, conf, cfg) is None
    spanish = "Señorías, el Gobierno presentará mañana el proyecto de ley de presupuestos para el próximo año."
    lang, conf = identify(spanish, cfg)
    assert lang == "es" and language_issue(lang, conf, cfg) == "language:not_kept:es"
    assert language_issue(*identify("1234 5678 !!! ###", cfg), cfg) == "language:uncertain"


def test_vectorised_repetition_measures_equal_their_plain_definition():
    import random

    from helpers import gopher_reference as ref

    from tasks.ingest.filters.quality import _WORD, _letter_tokens, _Ngrams

    rng = random.Random(5)
    vocab = ["the", "council", "water", "law", "ja", "und", "Größe", "señorías", "½", "²", "12", "x", "-", "Ⅻ",
             "λόγος", "«λόγος»", "(½)", "x²", "12x", "«»", "2024-12", "…"]
    for _ in range(300):
        words = [rng.choice(vocab[: rng.randint(2, len(vocab))]) for _ in range(rng.randint(1, 120))]
        if rng.random() < 0.4:  # repeated stretches, as boilerplate has
            k = rng.randint(2, 12)
            words = words[:k] * rng.randint(2, 5) + words
        text = "".join(w + rng.choice([" ", " ", "\n", "\t", "\u00a0", "  "]) for w in words)
        lowered = [w.lower() for w in _WORD.findall(text)]
        if not lowered:
            continue
        grams = _Ngrams(lowered)
        for n in range(2, 11):
            assert grams.top_char_fraction(n) == pytest.approx(ref.top_ngram_char_fraction(lowered, n)), (text, n)
            assert grams.duplicate_char_fraction(n) == pytest.approx(ref.duplicate_ngram_char_fraction(lowered, n)), (text, n)
        assert _letter_tokens(text) == ref.letter_tokens(text), text


def test_cld2_chooses_among_the_candidates_and_reads_any_valid_text():
    cfg = LanguageFilter(enabled=True)
    # Noncharacters are valid Unicode that CLD2's own check refuses: the text is still identified.
    assert identify(GERMAN.replace(" ", " \ufdd0", 3) + "\U0010ffff", cfg)[0] == "de"
    turkish = ("Meclis Başkanı oturumu açtı ve maliye bakanına söz verdi. Bakan, gelecek yılın bütçesini ve vergi "
               "düzenlemelerini ayrıntılı olarak anlattı.")
    assert identify(turkish, cfg) == (None, 0.0)  # not a candidate: no EU language is forced on it
    assert identify(turkish, LanguageFilter(enabled=True, candidates=["tr", "en"]))[0] == "tr"
    # The confidence is the share of the text in the language: half German, half Spanish.
    spanish = "Señorías, el Gobierno presentará mañana el proyecto de ley de presupuestos para el próximo año. " * 3
    lang, conf = identify(GERMAN + "\n" + spanish, cfg)
    assert lang in {"de", "es"} and 0.3 < conf < 0.8
