"""`werk generate` with the KV cache against `transformers`' `generate` on the exported model.

A model of the modern block (Llama-style, GQA) with random weights and a Werk tokenizer is
exported with `werk export`'s writer and loaded by `transformers`; both generate greedily from the
same prompt, the same number of new tokens (no early stop), alternately, several rounds. Werk
without its cache (every token recomputes the whole context, as before the cache) is measured in
the same rounds. The outputs are checked to be identical first.

Tokens generated per second; the ratio is Werk (cache) / transformers. Goal: >= 1.0.

    .venv/bin/python benchmarks/generate.py [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, report  # noqa: E402

TEXT = ("Der Ausschuss tagte am Dienstag. The committee met on Tuesday to discuss the budget. "
        "Le comité s'est réuni mardi. El comité se reunió el martes para hablar del presupuesto. ")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    import transformers

    from models.gpt import GPT, GPTConfig
    from tasks.export import hf_folder
    from tasks.tokenizer.config import TokenizerConfig
    from tasks.tokenizer.train import build_tokenizer

    new_tokens = 96 if args.quick else 192
    with tempfile.TemporaryDirectory() as tmp:
        tok = build_tokenizer(TokenizerConfig(vocab_size=2048, min_frequency=1), [TEXT * 4] * 200)
        tok.save(str(Path(tmp) / "tokenizer.json"))
        torch.manual_seed(0)
        cfg = GPTConfig(vocab_size=tok.get_vocab_size(), block_size=512, n_layer=6, n_head=8, n_kv_head=2, n_embd=384,
                        norm="rmsnorm", mlp="swiglu", position="rope")
        model = GPT(cfg).eval()
        hf_folder.write(model.state_dict(), cfg, Path(tmp) / "tokenizer.json", Path(tmp) / "hf")
        hf = transformers.AutoModelForCausalLM.from_pretrained(str(Path(tmp) / "hf"), dtype=torch.float32).eval()
        prompt = torch.tensor([tok.encode(TEXT).ids[:64]])
        gen_config = transformers.GenerationConfig(do_sample=False, max_new_tokens=new_tokens,
                                                   min_new_tokens=new_tokens, eos_token_id=cfg.vocab_size - 1,
                                                   pad_token_id=cfg.vocab_size - 1)
        mask = torch.ones_like(prompt)

        def theirs() -> torch.Tensor:
            with torch.no_grad():
                return hf.generate(prompt, attention_mask=mask, generation_config=gen_config)

        def ours(use_cache: bool = True) -> torch.Tensor:
            return model.generate(prompt, new_tokens, temperature=0, use_cache=use_cache)

        assert torch.equal(theirs(), ours()) and torch.equal(ours(), ours(use_cache=False))

        def rate(fn) -> float:
            t = time.perf_counter()
            fn()
            return new_tokens / (time.perf_counter() - t)

        no_cache: list[float] = []

        def werk() -> float:
            no_cache.append(rate(lambda: ours(False)))
            return rate(ours)

        w, b = alternate(werk, lambda: rate(theirs), 3 if args.quick else 5)
        print(f"werk without the cache: {statistics.median(no_cache):,.0f} tokens/s (runs {[round(x) for x in no_cache]})")
        report("generate_kv_cache", "tokens/s", w, b, werk_no_cache=round(statistics.median(no_cache), 2),
               cache_speedup=round(statistics.median(w) / statistics.median(no_cache), 2),
               new_tokens=new_tokens, prompt_tokens=prompt.size(1), threads=torch.get_num_threads())


if __name__ == "__main__":
    main()
