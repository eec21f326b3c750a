"""initlab.data.sequences: token tasks generated with a seed, registered with the loader, never normalized."""

from __future__ import annotations

import pytest
import torch

from initlab import data
from initlab.data import sequences

SMALL = {
    "modadd": {"p": 13},
    "copy": {"n_samples": 200, "length": 5, "symbols": 6},
    "reverse": {"n_samples": 200, "length": 5, "symbols": 6},
    "recall": {"n_samples": 200, "pairs": 3, "keys": 5, "values": 4},
}


@pytest.mark.parametrize("name", sequences.SEQUENCE_NAMES)
def test_tokens_are_int64_ids_below_the_vocabulary(name: str) -> None:
    ds = data.load(name, split="train", **SMALL[name])
    assert ds.x.dtype == torch.int64
    assert ds.y.dtype == torch.int64
    assert ds.x.shape == (len(ds), *ds.input_shape)
    assert ds.y.shape == (len(ds),)
    assert int(ds.x.min()) >= 0
    assert int(ds.x.max()) < ds.num_classes
    assert int(ds.y.min()) >= 0
    assert int(ds.y.max()) < ds.num_classes
    assert ds.normalization.kind is None  # token ids are categories, even when a study asks to standardize
    assert data.info(name).tokens


@pytest.mark.parametrize("name", sequences.SEQUENCE_NAMES)
def test_the_registry_describes_the_default_options(name: str) -> None:
    info = data.info(name)
    ds = data.load(name, split="val")
    assert ds.input_shape == info.input_shape
    assert ds.num_classes == info.num_classes
    if info.split_sizes is not None:
        assert len(ds) == info.split_sizes["val"]


@pytest.mark.parametrize("name", sequences.SEQUENCE_NAMES)
def test_a_seed_gives_the_same_tokens_and_another_seed_others(name: str) -> None:
    a = data.load(name, split="train", seed=3, **SMALL[name])
    b = data.load(name, split="train", seed=3, **SMALL[name])
    c = data.load(name, split="train", seed=4, **SMALL[name])
    assert torch.equal(a.x, b.x)
    assert torch.equal(a.y, b.y)
    assert not torch.equal(a.x, c.x)
    again = data.load(**a.config())  # what a study records rebuilds the split
    assert torch.equal(a.x, again.x)
    assert torch.equal(a.y, again.y)
    both = data.load(name, split="train+val", seed=3, **SMALL[name])
    val = data.load(name, split="val", seed=3, **SMALL[name])
    assert torch.equal(both.x, torch.cat([a.x, val.x]))


def test_modadd_splits_partition_every_pair_and_answer_the_sum() -> None:
    p = 13
    splits = {s: data.load("modadd", split=s, p=p, train_fraction=0.6) for s in ("train", "val", "test")}
    assert [len(d) for d in splits.values()] == [101, 34, 34]  # round(0.6 · 169), then the rest halved
    pairs = [tuple(row) for d in splits.values() for row in d.x[:, :2].tolist()]
    assert len(pairs) == len(set(pairs)) == p * p  # no pair in two splits, none left out
    for d in splits.values():
        assert torch.equal(d.y, (d.x[:, 0] + d.x[:, 1]) % p)
        assert (d.x[:, 2] == p).all()  # the '=' token
    assert splits["train"].num_classes == p + 1


@pytest.mark.parametrize("name", ["copy", "reverse"])
def test_copy_and_reverse_ask_for_the_next_token_of_the_answer(name: str) -> None:
    o = SMALL[name]
    length, sep, pad = o["length"], o["symbols"], o["symbols"] + 1
    ds = data.load(name, split="test", **o)
    assert ds.input_shape == (2 * length,)
    assert ds.num_classes == o["symbols"] + 2
    seen_k = set()
    for row, y in zip(ds.x.tolist(), ds.y.tolist(), strict=True):
        pads = row.count(pad)
        body = row[pads:]
        assert pad not in body
        assert body[length] == sep
        source, prefix = body[:length], body[length + 1 :]
        answer = source[::-1] if name == "reverse" else source
        k = len(prefix) + 1
        assert prefix == answer[: k - 1]
        assert y == answer[k - 1]
        seen_k.add(k)
    assert seen_k == set(range(1, length + 1))  # every position of the answer is asked


def test_recall_asks_for_the_value_of_one_of_the_keys() -> None:
    o = SMALL["recall"]
    ds = data.load("recall", split="train", **o)
    assert ds.input_shape == (2 * o["pairs"] + 1,)
    assert ds.num_classes == o["keys"] + o["values"]
    for row, y in zip(ds.x.tolist(), ds.y.tolist(), strict=True):
        keys, values, query = row[0:-1:2], row[1:-1:2], row[-1]
        assert len(set(keys)) == len(keys)
        assert all(k < o["keys"] for k in keys)
        assert all(v >= o["keys"] for v in values)
        assert y == values[keys.index(query)]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "modadd", "p": 1}, r"p must be >= 2"),
        ({"name": "modadd", "train_fraction": 1.0}, r"train_fraction must be a number in \(0, 1\)"),
        ({"name": "modadd", "p": 2, "train_fraction": 0.9}, r"leaves an empty split"),
        ({"name": "copy", "lenght": 4}, r"copy has no option 'lenght'.*Did you mean 'length'"),
        ({"name": "reverse", "symbols": 1}, r"symbols must be >= 2"),
        ({"name": "recall", "pairs": 6, "keys": 5}, r"pairs=6 needs at least as many keys, got keys=5"),
        ({"name": "recall", "n_samples": 0}, r"n_samples must be >= 1"),
        ({"name": "modadd", "n_samples": 10}, r"modadd has no option 'n_samples'"),
    ],
)
def test_bad_options_say_what_is_allowed(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        data.load(split="train", **kwargs)
