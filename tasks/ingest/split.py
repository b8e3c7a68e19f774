"""A deterministic train/validation split by document.

The split depends only on a document's content hash, so it is the same on every machine, for any
order of inputs and any number of workers, and a document never appears in both splits.
"""

from __future__ import annotations


def is_validation(sha256_hex: str, val_fraction: float) -> bool:
    bucket = int(sha256_hex[:15], 16) / float(1 << 60)
    return bucket < val_fraction
