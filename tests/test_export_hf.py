"""Werk -> Hugging Face: `transformers` itself loads the folder and computes what Werk computes."""

from __future__ import annotations

import json

import pytest
import torch

from models.gpt import GPT, GPTConfig
from tasks.export import hf_folder
from tasks.export.families import ExportError

transformers = pytest.importorskip("transformers")

TEXTS = [
    "The committee met on Tuesday to discuss the budget for the coming year.",
    "Der Ausschuss tagte am Dienstag, um über den Haushalt des kommenden Jahres zu beraten.",
    "Le comité s'est réuni mardi pour discuter du budget de l'année à venir.",
    "Komitea kokoontui tiistaina keskustelemaan ensi vuoden talousarviosta.",
    "Επιτροπή συνεδρίασε την Τρίτη — 12,5 % περισσότερα; ναι!",
    "Komisja zebrała się we wtorek, żeby omówić budżet na przyszły rok.",
]
CASES = {
    "llama-gqa-tied": dict(norm="rmsnorm", mlp="swiglu", position="rope", n_kv_head=2),
    "llama-mqa-untied-bias": dict(norm="rmsnorm", mlp="swiglu", position="rope", n_kv_head=1, tie_embeddings=False,
                                  bias=True),
    "llama-mqa-untied": dict(norm="rmsnorm", mlp="swiglu", position="rope", n_kv_head=1, tie_embeddings=False),
    "gpt2-tied": dict(norm="layernorm", mlp="gelu", position="learned"),
    "gpt2-untied-bias": dict(norm="layernorm", mlp="gelu", position="learned", tie_embeddings=False, bias=True),
}


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
    from tasks.tokenizer.config import TokenizerConfig
    from tasks.tokenizer.train import build_tokenizer

    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    build_tokenizer(TokenizerConfig(vocab_size=512, min_frequency=1), TEXTS * 20).save(str(path))
    return path


def _werk(case: str, vocab: int, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab, block_size=96, n_layer=2, n_head=4, n_embd=64, **CASES[case]))
    with torch.no_grad():  # random, non-zero biases and norm weights: nothing is trivially equal
        for name, p in model.named_parameters():
            if name.endswith("bias") or "ln" in name:
                p.add_(torch.randn_like(p) * 0.1)
    return model.eval()


def _export(model: GPT, tokenizer_json, out, **kw):
    return hf_folder.write(model.state_dict(), model.config, tokenizer_json, out, card="---\nlicense: other\n---\n", **kw)


def _hf(folder):
    return transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32).eval()


HF_CASES = sorted(set(CASES) - {"llama-mqa-untied"})  # (the GGUF test's: GGUF has no biases)


@pytest.mark.parametrize("case", HF_CASES)
def test_transformers_loads_the_export_and_gives_werk_s_logits_and_greedy_text(case, tokenizer_json, tmp_path):
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(tokenizer_json)).get_vocab_size()
    model = _werk(case, vocab)
    _export(model, tokenizer_json, tmp_path / "hf")
    hf = _hf(tmp_path / "hf")
    assert type(hf).__name__ == ("LlamaForCausalLM" if case.startswith("llama") else "GPT2LMHeadModel")
    ids = torch.randint(0, vocab, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model(ids), atol=1e-4, rtol=1e-4)
    eos = hf.generation_config.eos_token_id
    for row in ids[:, :8]:  # an explicit mask: HF would otherwise mask any pad id in the random prompt
        theirs = hf.generate(row[None], attention_mask=torch.ones_like(row[None]), max_new_tokens=32, do_sample=False)
        ours = model.generate(row[None], 32, temperature=0, stop_token=eos)
        assert torch.equal(theirs, ours)


def test_the_tokenizer_and_the_special_ids_agree_across_the_three_files(tokenizer_json, tmp_path):
    from tokenizers import Tokenizer

    werk_tok = Tokenizer.from_file(str(tokenizer_json))
    model = _werk("llama-gqa-tied", werk_tok.get_vocab_size())
    files = _export(model, tokenizer_json, tmp_path / "hf")
    assert {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors",
            "special_tokens_map.json", "README.md"} == set(files) == {p.name for p in (tmp_path / "hf").iterdir()}
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "hf"))
    assert isinstance(hf_tok, transformers.PreTrainedTokenizerFast)  # (transformers 5 calls it TokenizersBackend)
    for text in TEXTS + ["<|endoftext|>two documents<|endoftext|>", "  leading spaces\nand\ttabs"]:
        ids = hf_tok(text)["input_ids"]
        assert ids == werk_tok.encode(text).ids  # no BOS added, the same pieces
        assert hf_tok.decode(ids) == werk_tok.decode(ids, skip_special_tokens=False)
    conf = json.loads((tmp_path / "hf" / "config.json").read_text())
    gen = json.loads((tmp_path / "hf" / "generation_config.json").read_text())
    eot, pad = werk_tok.token_to_id("<|endoftext|>"), werk_tok.token_to_id("<|pad|>")
    assert (conf["bos_token_id"], conf["eos_token_id"], conf["pad_token_id"]) == (eot, eot, pad)
    assert (gen["bos_token_id"], gen["eos_token_id"], gen["pad_token_id"]) == (eot, eot, pad)
    assert (hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token_id) == (eot, eot, pad)
    tok_conf = json.loads((tmp_path / "hf" / "tokenizer_config.json").read_text())
    assert tok_conf["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert json.loads((tmp_path / "hf" / "special_tokens_map.json").read_text())["pad_token"] == "<|pad|>"


def test_without_the_rotary_permutation_the_logits_are_wrong(tokenizer_json, tmp_path):
    """The negative control: the interleaved layout loaded as if it were HF's differs."""
    from tokenizers import Tokenizer

    vocab = Tokenizer.from_file(str(tokenizer_json)).get_vocab_size()
    model = _werk("llama-gqa-tied", vocab)
    _export(model, tokenizer_json, tmp_path / "wrong", rotary_permutation=False)
    ids = torch.randint(0, vocab, (2, 48), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        theirs, ours = _hf(tmp_path / "wrong")(ids).logits, model(ids)
    with pytest.raises(AssertionError, match="not close"):
        torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
    assert (theirs - ours).abs().max() > 10 * 1e-4  # far outside it, not a rounding difference


@pytest.mark.parametrize("case", HF_CASES)
def test_werk_to_hf_to_werk_is_exact_also_sharded(case, tokenizer_json, tmp_path):
    from tokenizers import Tokenizer

    model = _werk(case, Tokenizer.from_file(str(tokenizer_json)).get_vocab_size())
    files = _export(model, tokenizer_json, tmp_path / "hf", max_shard_bytes=64 * 1024)
    assert "model.safetensors.index.json" in files and sum(f.endswith(".safetensors") for f in files) > 2
    cfg, weights = hf_folder.read(tmp_path / "hf")
    assert hf_folder.read_config(tmp_path / "hf") == cfg  # the same answer without loading the weights
    plain = {**model.config.to_dict(), "norm_eps": model.config.eps,
             "mlp_hidden": model.config.hidden, "n_kv_head": model.config.n_kv_head}
    assert cfg.to_dict() == plain
    back = GPT(cfg)
    back.load_state_dict(weights)
    original = model.state_dict()
    assert set(back.state_dict()) == set(original)
    assert all(torch.equal(back.state_dict()[k], original[k]) for k in original)
    with torch.no_grad():  # sharded, transformers still loads it
        ids = torch.randint(0, cfg.vocab_size, (1, 16))
        torch.testing.assert_close(_hf(tmp_path / "hf")(ids).logits, model(ids), atol=1e-4, rtol=1e-4)


def test_a_block_no_hf_architecture_computes_is_refused(tokenizer_json, tmp_path):
    model = GPT(GPTConfig(vocab_size=400, block_size=16, n_layer=1, n_head=2, n_embd=16, norm="rmsnorm", mlp="gelu",
                          position="learned"))  # a mix: RMSNorm in a GPT-2 block
    with pytest.raises(ExportError, match="no Hugging Face architecture"):
        _export(model, tokenizer_json, tmp_path / "x")
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.partial-*"))


@pytest.mark.parametrize("case", ["llama-gqa-tied", "llama-mqa-untied"])
def test_the_gguf_file_reloads_through_transformers_with_werk_s_logits(case, tokenizer_json, tmp_path):
    from tokenizers import Tokenizer

    from tasks.export import gguf_file

    pytest.importorskip("gguf")
    werk_tok = Tokenizer.from_file(str(tokenizer_json))
    model = _werk(case, werk_tok.get_vocab_size())
    path = gguf_file.write(model.state_dict(), model.config, tokenizer_json, tmp_path / "model.gguf", "werk-test")
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=path.name,
                                                           dtype=torch.float32).eval()
    ids = torch.randint(0, werk_tok.get_vocab_size(), (2, 48), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(hf(ids).logits, model(ids), atol=1e-4, rtol=1e-4)
    # The tokenizer inside the file: the same ids as Werk's.
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    assert tok(TEXTS[0], add_special_tokens=False)["input_ids"] == werk_tok.encode(TEXTS[0]).ids
    gpt2 = _werk("gpt2-tied", werk_tok.get_vocab_size())
    with pytest.raises(ExportError, match="tanh GELU"):
        gguf_file.write(gpt2.state_dict(), gpt2.config, tokenizer_json, tmp_path / "gpt2.gguf", "x")


def test_a_gpt2_whose_only_biases_are_the_attention_s_comes_back_with_them(tokenizer_json, tmp_path):
    """Zero biases everywhere but c_attn's: the import must not mistake c_attn.bias for the
    causal-mask buffer old transformers saved as `attn.bias`, nor drop the biases."""
    model = _werk("gpt2-untied-bias", 512)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and "attn.qkv" not in name:
                p.zero_()
    _export(model, tokenizer_json, tmp_path / "hf")
    cfg, weights = hf_folder.read(tmp_path / "hf")
    assert cfg.bias and torch.equal(weights["blocks.0.attn.qkv.bias"], model.state_dict()["blocks.0.attn.qkv.bias"])


def test_the_export_is_readable_by_others_as_the_umask_allows(tokenizer_json, tmp_path):
    """Not private like a temporary folder: a serving process of another user must read it."""
    from tasks.export import gguf_file

    probe = tmp_path / "probe"
    probe.write_text("")
    file_mode = probe.stat().st_mode & 0o777  # what the umask gives a new file here
    model = _werk("llama-gqa-tied", 512)
    _export(model, tokenizer_json, tmp_path / "hf")
    assert (tmp_path / "hf").stat().st_mode & 0o777 == file_mode | (file_mode & 0o444) >> 2
    path = gguf_file.write(model.state_dict(), model.config, tokenizer_json, tmp_path / "m.gguf", "m")
    assert path.stat().st_mode & 0o777 == file_mode


# Run by transformers 4 (the subprocess below): loads each folder, prints what it computed.
_TRANSFORMERS4_CHECK = r"""
import json, sys, torch, transformers
out = {"version": transformers.__version__}
ids = torch.load(sys.argv[1] + "/ids.pt")
for folder in sys.argv[2:]:
    tok = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    texts = json.load(open(sys.argv[1] + "/texts.json"))
    with torch.no_grad():
        torch.save(model(ids).logits, folder + ".logits.pt")
        greedy = model.generate(ids[:1, :8], attention_mask=torch.ones_like(ids[:1, :8]), max_new_tokens=32,
                                do_sample=False)
    out[folder] = {"tokenizer": type(tok).__name__, "model": type(model).__name__,
                   "ids": [tok(t)["input_ids"] for t in texts], "greedy": greedy[0].tolist(),
                   "eos": [tok.eos_token_id, model.generation_config.eos_token_id, model.config.eos_token_id]}
print(json.dumps(out))
"""


def test_transformers_4_loads_the_exports_as_transformers_5_does(tokenizer_json, tmp_path):
    """Teams fine-tune and serve on transformers 4 too: it must read the tokenizer files (not the
    class names transformers 5 writes) and compute the same logits, greedy text and ids."""
    import subprocess
    import sys
    from pathlib import Path

    from tokenizers import Tokenizer

    older = Path(sys.prefix) / "transformers4"
    assert (older / ".stamp").exists(), f"{older} is missing: `make install-dev` installs transformers 4 there"
    werk_tok = Tokenizer.from_file(str(tokenizer_json))
    vocab = werk_tok.get_vocab_size()
    ids = torch.randint(0, vocab, (2, 48), generator=torch.Generator().manual_seed(4))
    torch.save(ids, tmp_path / "ids.pt")
    texts = TEXTS + ["<|endoftext|>two documents<|endoftext|>"]
    (tmp_path / "texts.json").write_text(json.dumps(texts))
    models = {}
    for case in CASES:
        models[case] = _werk(case, vocab)
        _export(models[case], tokenizer_json, tmp_path / case)
    env = {**__import__("os").environ, "PYTHONPATH": str(older)}
    done = subprocess.run([sys.executable, "-c", _TRANSFORMERS4_CHECK, str(tmp_path),
                           *[str(tmp_path / c) for c in CASES]], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["version"].startswith("4.")
    eot = werk_tok.token_to_id("<|endoftext|>")
    for case, model in models.items():
        got = seen[str(tmp_path / case)]
        assert got["tokenizer"] == "PreTrainedTokenizerFast", case  # not LlamaTokenizerFast, which adds a BOS
        assert got["model"] == ("LlamaForCausalLM" if case.startswith("llama") else "GPT2LMHeadModel")
        assert got["ids"] == [werk_tok.encode(t).ids for t in texts], case
        assert got["eos"] == [eot, eot, eot], case
        with torch.no_grad():
            torch.testing.assert_close(torch.load(tmp_path / f"{case}.logits.pt"), model(ids), atol=1e-4, rtol=1e-4)
            ours = model.generate(ids[:1, :8], 32, temperature=0, stop_token=eot)
        assert got["greedy"] == ours[0].tolist(), case
