"""Generated sequence tasks of token ids, for transformers: modular addition, copying, reversal, associative recall.

Every sample is a fixed-length sequence of int64 token ids ``x`` of shape ``(seq_len,)`` and one target token ``y``,
the answer to predict at the end of the sequence. Tokens and targets share one vocabulary of ``num_classes`` ids
(the answer is itself a token, as an LM head predicts one), so a transformer built for ``num_classes`` outputs
embeds ``num_classes`` tokens; some ids (separators, padding) are inputs only and never a target. Token ids are
categories: the loader never normalizes them.

- ``modadd``: ``a b =`` -> ``(a + b) mod p`` (Power et al. 2022, "Grokking: Generalization Beyond Overfitting on
  Small Algorithmic Datasets"). Tokens ``0..p-1`` are the numbers and ``p`` is ``=``; ``num_classes = p + 1``. The
  ``p²`` pairs are shuffled once with ``seed`` and cut into train (``train_fraction``), val and test (halves of
  the rest), so no pair is in two splits.
- ``copy`` and ``reverse``: ``s_1 … s_L SEP t_1 … t_{k-1}`` -> ``t_k``, where ``t`` is ``s`` (copy) or ``s``
  reversed, with ``k`` uniform in ``1..L``: the next token of the answer, teacher-forced (the one-target form of
  the sequence-to-sequence task; a causal decoder, ``task=lm``, learns it as next-token prediction). Symbols are
  ``0..symbols-1``, ``SEP = symbols``, ``PAD = symbols + 1`` fills the left so every sequence has length ``2L``;
  ``num_classes = symbols + 2``.
- ``recall``: ``k_1 v_1 … k_n v_n q`` -> the value of key ``q`` (associative recall: Ba et al. 2016, "Using Fast
  Weights to Attend to the Recent Past"; Fu et al. 2023, "Hungry Hungry Hippos"). ``pairs`` distinct keys from
  ``0..keys-1``, values from ``keys..keys+values-1`` (repeats allowed), ``q`` one of the keys; ``num_classes =
  keys + values``, sequence length ``2·pairs + 1``.

``copy``, ``reverse`` and ``recall`` draw each split independently (``n_samples`` each) with a seed derived from
``seed``, the task and the split (:func:`initlab.data.toy.split_seed`), like the toy sets; ``train+val`` is the train
draw followed by the val draw. The same arguments give the same tokens on every machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from initlab.checks import check_int
from initlab.data._base import RawSplit
from initlab.data.toy import split_seed

DEFAULT_SEED = 0
DEFAULT_N = 5000

SEQUENCE_NAMES: tuple[str, ...] = ("modadd", "copy", "reverse", "recall")

# The options each task takes, with their defaults.
OPTIONS: dict[str, dict[str, Any]] = {
    "modadd": {"p": 97, "train_fraction": 0.5},  # p = 97 as in Power et al. 2022
    "copy": {"n_samples": DEFAULT_N, "length": 8, "symbols": 10},
    "reverse": {"n_samples": DEFAULT_N, "length": 8, "symbols": 10},
    "recall": {"n_samples": DEFAULT_N, "pairs": 8, "keys": 16, "values": 16},
}

DESCRIPTIONS: dict[str, str] = {
    "modadd": "modular addition: tokens 'a b =' -> (a + b) mod p (Power et al. 2022)",
    "copy": "copy a sequence: 's SEP t_1..t_k-1' -> t_k, t = s",
    "reverse": "reverse a sequence: 's SEP t_1..t_k-1' -> t_k, t = s reversed",
    "recall": "associative recall: 'k1 v1 .. kn vn q' -> the value of key q",
}


def check_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a task's options (already merged with the defaults); return them normalized."""
    out = dict(options)
    if name == "modadd":
        out["p"] = check_int("p", out["p"], minimum=2)
        fraction = out["train_fraction"]
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ValueError(f"train_fraction must be a number in (0, 1), got {fraction!r}.")
        out["train_fraction"] = float(fraction)
        sizes = split_sizes(out)
        if min(sizes.values()) < 1:
            raise ValueError(f"p={out['p']} with train_fraction={fraction} leaves an empty split ({sizes}).")
        return out
    out["n_samples"] = check_int("n_samples", out["n_samples"], minimum=1)
    if name in ("copy", "reverse"):
        out["length"] = check_int("length", out["length"], minimum=1)
        out["symbols"] = check_int("symbols", out["symbols"], minimum=2)
    elif name == "recall":
        out["pairs"] = check_int("pairs", out["pairs"], minimum=1)
        out["keys"] = check_int("keys", out["keys"], minimum=1)
        out["values"] = check_int("values", out["values"], minimum=2)
        if out["pairs"] > out["keys"]:
            raise ValueError(f"pairs={out['pairs']} needs at least as many keys, got keys={out['keys']}.")
    else:
        raise ValueError(f"unknown sequence task {name!r}; the tasks are {', '.join(SEQUENCE_NAMES)}.")
    return out


def split_sizes(options: Mapping[str, Any]) -> dict[str, int]:
    """``modadd``'s train, val and test sizes: ``train_fraction`` of the p² pairs, the rest halved."""
    total = options["p"] ** 2
    train = round(options["train_fraction"] * total)
    val = (total - train) // 2
    return {"train": train, "val": val, "test": total - train - val}


def num_classes(name: str, options: Mapping[str, Any]) -> int:
    """The vocabulary size, which is also the number of classes (see the module docstring)."""
    if name == "modadd":
        return options["p"] + 1
    if name in ("copy", "reverse"):
        return options["symbols"] + 2
    return options["keys"] + options["values"]


def input_shape(name: str, options: Mapping[str, Any]) -> tuple[int, ...]:
    """One sample's shape: ``(seq_len,)``."""
    if name == "modadd":
        return (3,)
    if name in ("copy", "reverse"):
        return (2 * options["length"],)
    return (2 * options["pairs"] + 1,)


def _modadd(split: str, seed: int, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    p = o["p"]
    # One permutation of all pairs for every split (the seed does not depend on the split), then cut into three.
    order = np.random.default_rng(split_seed(seed, "modadd", "pairs")).permutation(p * p)
    sizes = split_sizes(o)
    start = {"train": 0, "val": sizes["train"], "test": sizes["train"] + sizes["val"]}[split]
    pick = order[start : start + sizes[split]]
    a, b = pick // p, pick % p
    x = np.stack([a, b, np.full_like(a, p)], axis=1)
    return x, (a + b) % p


def _copy_or_reverse(reverse: bool) -> Callable[[str, int, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]:
    def draw(split: str, seed: int, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        n, length, symbols = o["n_samples"], o["length"], o["symbols"]
        sep, pad = symbols, symbols + 1
        rng = np.random.default_rng(split_seed(seed, "reverse" if reverse else "copy", split))
        s = rng.integers(0, symbols, (n, length))
        t = s[:, ::-1] if reverse else s
        k = rng.integers(1, length + 1, n)  # predict t_k from s, SEP and t_1 .. t_{k-1}
        full = np.concatenate([s, np.full((n, 1), sep), t], axis=1)  # (n, 2L + 1)
        # Row i keeps the first L + k_i tokens, right-aligned in 2L positions and padded on the left.
        cols = np.arange(2 * length)[None, :] - (length - k)[:, None]
        x = np.where(cols >= 0, np.take_along_axis(full, np.clip(cols, 0, None), axis=1), pad)
        y = t[np.arange(n), k - 1]
        return x, y

    return draw


def _recall(split: str, seed: int, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    n, pairs, keys, values = o["n_samples"], o["pairs"], o["keys"], o["values"]
    rng = np.random.default_rng(split_seed(seed, "recall", split))
    k = np.argsort(rng.random((n, keys)), axis=1)[:, :pairs]  # distinct keys per sample
    v = keys + rng.integers(0, values, (n, pairs))
    asked = rng.integers(0, pairs, n)
    x = np.empty((n, 2 * pairs + 1), dtype=np.int64)
    x[:, 0:-1:2], x[:, 1:-1:2] = k, v
    x[:, -1] = k[np.arange(n), asked]
    return x, v[np.arange(n), asked]


_GENERATORS: dict[str, Callable[[str, int, Mapping[str, Any]], tuple[np.ndarray, np.ndarray]]] = {
    "modadd": _modadd,
    "copy": _copy_or_reverse(reverse=False),
    "reverse": _copy_or_reverse(reverse=True),
    "recall": _recall,
}


def read(name: str, split: str, seed: int, options: Mapping[str, Any]) -> RawSplit:
    """One split of a task as int64 tokens ``(n, seq_len)`` and int64 targets ``(n,)`` (``options`` checked)."""
    parts = ("train", "val") if split == "train+val" else (split,)
    drawn = [_GENERATORS[name](s, seed, options) for s in parts]
    x = torch.from_numpy(np.concatenate([d[0] for d in drawn]).astype(np.int64))
    y = torch.from_numpy(np.concatenate([d[1] for d in drawn]).astype(np.int64))
    return RawSplit(x, y, f"generated by initlab's {name} task (NumPy), seed {seed}")
