"""Model FLOPs utilisation: the share of the devices' peak that the model's arithmetic uses.

Training FLOPs per token follow the PaLM appendix (as nanoGPT does): 6·N for the matrix
multiplications of the forward and backward pass, plus 12·L·H·Q·T for attention scores, with N
the parameters that take part in a matmul (position and untied input embeddings are lookups).
"""

from __future__ import annotations

# Peak dense bf16 TFLOP/s per device, from the vendors' data sheets (no sparsity).
PEAK_BF16_TFLOPS: dict[str, float] = {
    "H200": 989.0,
    "GH200": 989.0,
    "H100 NVL": 835.0,
    "H100 PCIe": 756.0,
    "H100": 989.0,  # SXM; matched after the PCIe/NVL names
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "MI300X": 1307.0,
    "MI250X": 383.0,
}


def matmul_parameters(model) -> int:
    n = sum(p.numel() for p in model.parameters())
    if model.wpe is not None:
        n -= model.wpe.weight.numel()
    if not model.config.tie_embeddings:
        n -= model.wte.weight.numel()
    return n


def flops_per_token(model) -> float:
    cfg = model.config
    head_dim = cfg.n_embd // cfg.n_head
    return 6.0 * matmul_parameters(model) + 12.0 * cfg.n_layer * cfg.n_head * head_dim * cfg.block_size


def device_peak_tflops(device_name: str) -> float | None:
    """Peak bf16 TFLOP/s of a GPU named like `torch.cuda.get_device_name()`, or None if unknown."""
    for key, tflops in PEAK_BF16_TFLOPS.items():
        if key in device_name:
            return tflops
    return None
