"""How the model is spread over the workers and made faster: the Lightning strategy (DDP or FSDP),
activation checkpointing and torch.compile. Kept beside the model, never inside it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import nn

from models.gpt import GPT, Block

if TYPE_CHECKING:
    from tasks.training.config import ComputeConfig, TrainConfig


def apply_activation_checkpointing(model: GPT) -> None:
    """Recompute each block's activations during the backward pass instead of storing them."""
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    # The wrapper's state-dict hooks drop its prefix, so checkpoints keep the plain parameter names.
    for i, block in enumerate(model.blocks):
        model.blocks[i] = checkpoint_wrapper(block)


def apply_compile(model: GPT) -> None:
    """Compile each transformer block in place: one graph reused by every layer, and
    `nn.Module.compile` keeps the parameter names, so checkpoints stay interchangeable."""
    for block in model.blocks:
        block.compile()


def prepare(model: GPT, train: TrainConfig, compute: ComputeConfig) -> nn.Module:
    if train.activation_checkpointing and compute.strategy != "fsdp":  # FSDP applies its own, per block
        apply_activation_checkpointing(model)
    if train.compile:
        apply_compile(model)
    return model


def strategy(train: TrainConfig, compute: ComputeConfig):
    from ray.train.lightning import RayDDPStrategy, RayFSDPStrategy

    if compute.strategy == "fsdp":
        return RayFSDPStrategy(
            auto_wrap_policy={Block},
            activation_checkpointing_policy={Block} if train.activation_checkpointing else None,
            sharding_strategy="FULL_SHARD",
            state_dict_type="full",
            use_orig_params=True,  # keeps parameter names for the decay groups and allows torch.compile
            limit_all_gathers=True,
        )
    return RayDDPStrategy()


WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")


def plain_name(name: str) -> str:
    """A parameter's name as in the bare model, whatever wrappers (FSDP, checkpointing, compile) add."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name
