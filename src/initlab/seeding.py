"""Seeds and generators: the one place where initlab turns a ``seed`` argument into a ``torch.Generator``.

A seed is ``None`` (draw from torch's default generator for the device, so fresh values on every call and
``torch.manual_seed`` is honoured), an ``int`` (a new CPU generator seeded with it: the same values on every call, in
every process and on every device), or a ``torch.Generator`` (used as given, and advanced by the draw).
"""

from __future__ import annotations

import torch

Seed = int | torch.Generator | None


def make_generator(seed: Seed) -> torch.Generator | None:
    """Return the generator to draw from, or ``None`` for torch's default generator."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be None, an int or a torch.Generator, got {seed!r} of type {type(seed).__name__}.")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}.")
    return torch.Generator(device="cpu").manual_seed(seed)


def derive_seed(seed: int, *keys: int | str) -> int:
    """A child seed for ``keys`` (e.g. a parameter's index) that is stable across processes and Python versions.

    Uses BLAKE2b over the decimal text, not ``hash()``, which is salted per process for strings.
    """
    import hashlib

    text = "/".join([str(seed), *map(str, keys)]).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")
