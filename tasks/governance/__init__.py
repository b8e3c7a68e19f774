"""Data protection: the erasure register, opt-outs, and what they do to outputs and models."""
