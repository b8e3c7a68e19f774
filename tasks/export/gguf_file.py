"""A Werk model of the modern block as one GGUF file for llama.cpp (and `transformers`' GGUF loader).

Written with the `gguf` package's own writer (llama.cpp's converter script is not in the package,
and it refuses BPE pre-tokenizers it does not know). GGUF keeps the rotary q/k rows interleaved,
as Meta's checkpoints did, and that is Werk's own layout: the rows are written as trained, and
llama.cpp and transformers un-permute them when they load. Weights stay float32 (quantize with
llama.cpp's own tools afterwards).

The tokenizer is declared as GPT-2 style byte-level BPE (`tokenizer.ggml.model = gpt2`) with GPT-2's
pre-tokenizer regex (`pre = gpt-2`), which is what Werk trains; its merges and special tokens are
copied. llama.cpp does not apply Werk's NFC normalisation: text given to it should be NFC already
(most text is). The GPT-2 style block is refused: llama.cpp's GPT-2 uses the tanh GELU, Werk the
exact one, so its logits would differ.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import torch

from models.gpt import GPTConfig
from tasks.export.families import ExportError, family
from tasks.export.tokenizer_files import special_ids

ARCH = "llama"


def _tensors(weights: dict[str, torch.Tensor], cfg: GPTConfig) -> dict[str, torch.Tensor]:
    q_rows, kv_rows = cfg.n_embd, cfg.kv_heads * (cfg.n_embd // cfg.n_head)
    out = {"token_embd.weight": weights["wte.weight"], "output_norm.weight": weights["ln_f.weight"]}
    if not cfg.tie_embeddings:  # without output.weight llama.cpp reuses the token embedding
        out["output.weight"] = weights["lm_head.weight"]
    for i in range(cfg.n_layer):
        w, g = f"blocks.{i}.", f"blk.{i}."
        q, k, v = weights[w + "attn.qkv.weight"].split([q_rows, kv_rows, kv_rows])
        out.update({g + "attn_norm.weight": weights[w + "ln_1.weight"], g + "ffn_norm.weight": weights[w + "ln_2.weight"],
                    g + "attn_q.weight": q, g + "attn_k.weight": k, g + "attn_v.weight": v,
                    g + "attn_output.weight": weights[w + "attn.proj.weight"],
                    g + "ffn_gate.weight": weights[w + "mlp.fc.weight"], g + "ffn_up.weight": weights[w + "mlp.gate.weight"],
                    g + "ffn_down.weight": weights[w + "mlp.proj.weight"]})
    return out


def write(weights: dict[str, torch.Tensor], cfg: GPTConfig, tokenizer_json: Path, out: Path, name: str) -> Path:
    """Write `out` (a .gguf file), atomically."""
    import gguf

    if family(cfg) != "llama":
        raise ExportError("GGUF export is for the modern block: llama.cpp's GPT-2 computes the tanh GELU, not "
                          "Werk's exact one, so its logits would differ; export the HF format instead")
    if cfg.bias:
        raise ExportError("GGUF export of a model with biases is not supported by llama.cpp's llama architecture")
    if out.exists():
        raise ExportError(f"{out} exists: export into a new file")
    ids = special_ids(tokenizer_json)
    spec = json.loads(tokenizer_json.read_text())
    vocab: dict[str, int] = spec["model"]["vocab"]
    specials = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
    tokens = [""] * cfg.vocab_size
    types = [gguf.TokenType.UNUSED] * cfg.vocab_size  # ids past the tokenizer's (a padded vocabulary)
    for piece, i in {**vocab, **specials}.items():
        tokens[i] = piece
        types[i] = gguf.TokenType.CONTROL if piece in specials else gguf.TokenType.NORMAL
    for i, piece in enumerate(tokens):
        if not piece:
            tokens[i] = f"[PAD{i}]"
    merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]

    out.parent.mkdir(parents=True, exist_ok=True)
    # Created by the writer with the user's usual permissions (mkstemp's 0600 would keep a
    # llama.cpp service running as another user from reading it).
    tmp = str(out.parent / f".{out.name}.partial-{uuid.uuid4().hex}")
    try:
        writer = gguf.GGUFWriter(tmp, ARCH)
        writer.add_name(name)
        writer.add_file_type(gguf.LlamaFileType.ALL_F32)
        writer.add_vocab_size(cfg.vocab_size)
        writer.add_context_length(cfg.block_size)
        writer.add_embedding_length(cfg.n_embd)
        writer.add_block_count(cfg.n_layer)
        writer.add_feed_forward_length(cfg.hidden)
        writer.add_head_count(cfg.n_head)
        writer.add_head_count_kv(cfg.kv_heads)
        writer.add_rope_dimension_count(cfg.n_embd // cfg.n_head)
        writer.add_rope_freq_base(cfg.rope_theta)
        writer.add_layer_norm_rms_eps(cfg.eps)
        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(ids["bos"])
        writer.add_eos_token_id(ids["eos"])
        if ids["pad"] is not None:
            writer.add_pad_token_id(ids["pad"])
        writer.add_add_bos_token(False)
        writer.add_add_eos_token(False)
        for tensor_name, t in _tensors(weights, cfg).items():
            writer.add_tensor(tensor_name, t.detach().to(torch.float32).contiguous().numpy())
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out
