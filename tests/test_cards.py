"""Cards and the AI Act summary, generated from the manifest: every figure equals the manifest's."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from tasks.ingest import stage
from tasks.ingest.config import IngestConfig, SourceConfig

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Web pages from three domains (crawled) and the Shakespeare slice (a public dataset), ingested."""
    base = tmp_path_factory.mktemp("cards")
    web = base / "web"
    web.mkdir()
    topics = ["rivers", "forests", "villages", "roads", "schools", "markets", "bridges", "harbours", "mills"]
    pages = [{"id": f"p{i}", "url": f"https://{['www.alpha.eu', 'beta.org', 'news.gamma.de'][i % 3]}/{i}",
              "text": f"Page {i} describes the {topic} of the valley, how they were built and who looks after them today."}
             for i, topic in enumerate(topics)]
    (web / "pages.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pages))
    sources = [SourceConfig(name="web", uri=str(web), license="CC-BY-4.0", id_field="id", metadata_fields=["url"],
                            kind="crawled", description="Pages about the valley"),
               SourceConfig(name="plays", uri=str(ASSETS / "corpus" / "shakespeare" / "*.txt"), license="public-domain",
                            language="en", kind="public_dataset", description="Three plays", homepage="https://example.org/plays")]
    cfg = IngestConfig(sources=sources, val_fraction=0.2, length={"min_chars": 20})
    out, files = stage.plan(cfg, str(base / "store"))
    record = stage.run_ingest(cfg, out, files)
    manifest = pq.read_table(record.outputs.manifest).to_pylist()
    return {"cfg": cfg, "record": record, "manifest": manifest}


def _counted(manifest: list[dict], key) -> dict[str, tuple[int, int]]:
    docs, size = Counter(), Counter()
    for r in manifest:
        docs[key(r)] += 1
        size[key(r)] += r["bytes"]
    return {k: (docs[k], size[k]) for k in docs}


def test_composition_equals_the_manifest(corpus):
    from tasks.cards.composition import compose

    comp = compose(corpus["record"], corpus["cfg"].sources)
    m = corpus["manifest"]
    assert comp.documents == len(m) and comp.bytes == sum(r["bytes"] for r in m)
    assert {s.name: (s.documents, s.bytes) for s in comp.sources} == _counted(m, lambda r: r["source"])
    assert {k: (v.documents, v.bytes) for k, v in comp.languages.items()} == _counted(m, lambda r: r["language"] or "und")
    assert {k: (v.documents, v.bytes) for k, v in comp.licenses.items()} == _counted(m, lambda r: r["license"])
    assert {k: (v.documents, v.bytes) for k, v in comp.splits.items()} == _counted(m, lambda r: r["split"])
    web = [r for r in m if r["source"] == "web"]
    hosts = _counted(web, lambda r: json.loads(r["metadata"])["url"].split("/")[2].removeprefix("www."))
    assert list(comp.domains) == ["web"]  # crawled sources only
    assert {k: (v.documents, v.bytes) for k, v in comp.domains["web"].items()} == hosts
    assert list(comp.domains["web"]) == sorted(hosts, key=lambda h: (-hosts[h][1], h))  # largest first
    assert len(comp.top_domains("web")) == 1 and comp.top_domains("plays") == []  # the top 10 % of three, rounded up


def test_dataset_card_and_a_croissant_that_mlcroissant_validates_and_reads(corpus, tmp_path):
    import mlcroissant as mlc

    from tasks.cards.composition import compose
    from tasks.cards.croissant import croissant
    from tasks.cards.dataset_card import dataset_card

    record, m = corpus["record"], corpus["manifest"]
    comp = compose(record, corpus["cfg"].sources)
    card = dataset_card(comp, "valley corpus", "Pages and plays.")
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["language"] == ["en"] and header["size_categories"] == ["n<1K"]
    assert header["license"] == "other" and "CC-BY-4.0" in header["license_name"]
    for section in ("## Composition", "## Sizes", "## Collection", "## Processing", "## Known limitations"):
        assert section in card
    assert f"| web | crawled | CC-BY-4.0 | {sum(r['source'] == 'web' for r in m)} |" in card
    doc = croissant(record, comp, "valley corpus", "Pages and plays.")
    assert doc["conformsTo"].startswith("http://mlcommons.org/croissant/1.")
    files = {d["@id"]: d for d in doc["distribution"] if d["@type"] == "cr:FileObject"}
    assert files and all(d["sha256"] == record.part_sha256[name] for name, d in files.items())
    # Beside the parts it describes, mlcroissant validates it and reads every manifest row back.
    where = Path(record.uri) / "croissant.json"
    where.write_text(json.dumps(doc))
    try:
        dataset = mlc.Dataset(jsonld=str(where))
        rows = list(dataset.records("manifest"))
        assert sorted(r["manifest/doc_id"].decode() for r in rows) == sorted(r["doc_id"] for r in m)
        assert len(list(dataset.records("documents"))) == sum(r["split"] == "train" for r in m)
    finally:
        where.unlink()


def test_ai_act_summary_has_every_template_section_with_the_manifest_s_numbers(corpus):
    from tasks.cards import ai_act
    from tasks.cards.composition import compose

    m = corpus["manifest"]
    comp = compose(corpus["record"], corpus["cfg"].sources, tokens=123_456)
    cost = {"wall_s": 7200.0, "cpu_s": 100.0, "device_hours": 1.5, "flops": 3.2e15, "energy_kwh": 0.4,
            "co2_kg": 0.1, "energy_method": "estimated"}
    s = ai_act.summary(comp, "werk-valley", "3", "2026-12-02", cost, "Valley Labs", "dpo@valley.example", [], ["email"])
    text = ai_act.markdown(s)
    for heading in ("## 1. General information", "### 1.1 Provider identification", "### 1.2 Model identification",
                    "### 1.3 Modalities, overall training data size", "## 2. List of data sources",
                    *(f"### {section}" for section in ai_act.SECTIONS.values()), "## 3. Data processing aspects",
                    "### 3.1 Respect of reservation of rights", "### 3.2 Removal of illegal content",
                    "### 3.3 Other information", "## Annex XI: compute used for training"):
        assert heading in text, heading
    assert s.general.size_band == "less than 1 billion tokens" and s.general.documents == len(m)
    assert s.general.languages == {k: v[0] for k, v in _counted(m, lambda r: r["language"] or "und").items()}
    by_source = _counted(m, lambda r: r["source"])
    (crawled,) = s.sources[ai_act.SECTIONS["crawled"]]
    (public,) = s.sources[ai_act.SECTIONS["public_dataset"]]
    assert (crawled.documents, public.documents) == (by_source["web"][0], by_source["plays"][0])
    assert crawled.domains == [(d, v.bytes) for d, v in comp.top_domains("web")] and public.homepage
    assert s.sources[ai_act.SECTIONS["synthetic"]] == []
    assert s.processing.rejected == {k: v for k, v in corpus["record"].stats.rejected.items() if k.startswith("too_")}
    assert s.compute.training_flops == 3.2e15 and s.compute.wall_hours == 2.0 and "1.5" in text
    assert ai_act.size_band(10**12) == "1 billion to 10 trillion tokens" and ai_act.size_band(10**14).startswith("more")


def test_model_card_header_carries_the_evaluation_and_the_emissions(corpus):
    from flows.recipe import load_recipe
    from tasks.cards.composition import compose
    from tasks.cards.model_card import model_card
    from tasks.evaluate.record import EvaluateRecord
    from tasks.training.record import PretrainRecord

    pre = PretrainRecord.parse(json.loads((ASSETS / "records" / "pretrain-v0.json").read_text()))
    ev = EvaluateRecord.parse(json.loads((ASSETS / "records" / "evaluate-v0.json").read_text()))
    recipe = load_recipe("debug", ["cards.model_license=apache-2.0", "compute.grid_gco2_per_kwh=300"])
    comp = compose(corpus["record"], corpus["cfg"].sources)
    cost = {"flops": 1e15, "device_hours": 0.01, "energy_kwh": 0.02, "co2_kg": 0.006, "energy_method": "estimated"}
    card = model_card("werk-debug", "4", recipe, pre, ev.summary, comp, cost, ["er-1"], 1024)
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] == "apache-2.0" and header["pipeline_tag"] == "text-generation"
    assert header["co2_eq_emissions"]["emissions"] == pytest.approx(6.0)  # grams
    (lm, *tasks) = header["model-index"][0]["results"]
    assert {x["type"]: x["value"] for x in lm["metrics"]}["bits_per_byte"] == round(ev.summary.model.bits_per_byte, 4)
    assert {t["task"]["name"] for t in tasks} == set(ev.summary.tasks)
    assert "Trained on data erased since" in card and "## Intended use" in card and "1,024 tokens" in card
    no_grid = model_card("werk-debug", "4", load_recipe("debug"), pre, ev.summary, comp,
                         {**cost, "co2_kg": None}, [], 1024)
    assert "co2_eq_emissions" not in yaml.safe_load(no_grid.split("---\n")[1])
