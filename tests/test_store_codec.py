"""Tests of the Store's encoding without SQLite: NaN and -0.0 in the ``special`` column, canonical JSON, the real-number
check, CSV cells and the config diff that names what changed between two studies."""

from __future__ import annotations

import json
import math
import struct

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from initlab.store.codec import (
    canonical_json,
    config_diff,
    csv_cell,
    decode_float,
    encode_floats,
    flatten_config,
    parse_json,
    real,
)

NAN, INF = float("nan"), float("inf")


def bits(x: float) -> bytes:
    """The IEEE double of ``x``: tells -0.0 from 0.0, which ``==`` does not."""
    return struct.pack("<d", x)


def in_real_column(x: float | None) -> float | None:
    """What SQLite keeps of ``x`` in a REAL column: NaN becomes NULL and -0.0 becomes 0.0."""
    if x is None or math.isnan(x):
        return None
    return 0.0 if x == 0.0 else x


def round_trip(values: dict[str, float | None]) -> dict[str, float | None]:
    """Encode ``values`` as a row would be stored and decode them again, the ``special`` JSON going through text."""
    columns, special = encode_floats(values)
    sp = parse_json(special) or {}
    return {name: decode_float(name, in_real_column(col), sp) for name, col in zip(values, columns, strict=True)}


# -- floats and the special column ---------------------------------------------------------------------------------
def test_encode_floats_moves_nan_and_negative_zero_into_special() -> None:
    columns, special = encode_floats({"a": NAN, "b": -0.0, "c": INF, "d": -INF, "e": None, "f": 0.5, "g": 0.0})
    # What a REAL column holds: NULL for NaN, 0.0 for -0.0; inf and -inf fit as they are.
    assert columns[0] is None
    assert bits(columns[1]) == bits(0.0)  # type: ignore[arg-type]
    assert columns[2:] == [INF, -INF, None, 0.5, 0.0]
    assert bits(columns[6]) == bits(0.0)  # type: ignore[arg-type]
    assert special == '{"a": "nan", "b": "-0.0"}'  # the stored text, keys sorted


def test_encode_floats_without_special_values_stores_no_json() -> None:
    assert encode_floats({"x": 1.0, "y": None, "z": -INF}) == ([1.0, None, -INF], None)
    assert encode_floats({}) == ([], None)


def test_special_values_round_trip() -> None:
    out = round_trip({"nan": NAN, "neg0": -0.0, "inf": INF, "ninf": -INF, "none": None, "zero": 0.0})
    assert math.isnan(out["nan"])  # type: ignore[arg-type]
    assert bits(out["neg0"]) == bits(-0.0)  # type: ignore[arg-type]
    assert bits(out["zero"]) == bits(0.0)  # type: ignore[arg-type]
    assert out["inf"] == INF
    assert out["ninf"] == -INF
    assert out["none"] is None


def test_decode_float_tells_missing_from_nan() -> None:
    assert decode_float("val_loss", None, {}) is None  # NULL without an entry: a missing value
    assert math.isnan(decode_float("val_loss", None, {"val_loss": "nan"}))  # type: ignore[arg-type]
    assert bits(decode_float("x", 0.0, {"x": "-0.0"})) == bits(-0.0)  # type: ignore[arg-type]
    assert decode_float("x", 2.5, {"other": "nan"}) == 2.5
    assert type(decode_float("x", 3, {})) is float  # an INTEGER read back from a REAL column is a float


@given(st.floats(allow_nan=False, allow_infinity=True))
@example(-0.0)
@example(0.0)
@example(5e-324)
def test_any_number_round_trips_bit_for_bit(x: float) -> None:
    assert bits(round_trip({"v": x})["v"]) == bits(x)  # type: ignore[arg-type]


@given(st.floats(allow_nan=True, allow_infinity=True))
@example(-0.0)
@example(NAN)
@example(-NAN)
def test_what_a_real_column_gets_never_needs_nan_or_negative_zero(x: float) -> None:
    (column,), special = encode_floats({"v": x})
    # SQLite turns NaN into NULL and -0.0 into 0.0, so neither may reach a REAL column.
    assert column is None or (not math.isnan(column) and bits(column) != bits(-0.0))
    decoded = round_trip({"v": x})["v"]
    assert decoded is not None
    assert math.isnan(decoded) if math.isnan(x) else bits(decoded) == bits(x)
    assert (special is not None) == (math.isnan(x) or bits(x) == bits(-0.0))


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.none() | st.floats(), max_size=6))
def test_a_row_of_floats_round_trips(values: dict[str, float | None]) -> None:
    out = round_trip(values)
    assert list(out) == list(values)
    for name, x in values.items():
        y = out[name]
        if x is None:
            assert y is None
        else:
            assert y is not None
            assert math.isnan(y) if math.isnan(x) else bits(y) == bits(x)


# -- JSON ----------------------------------------------------------------------------------------------------------
def test_canonical_json_is_sorted_compact_and_keeps_non_finite_tokens() -> None:
    text = canonical_json({"b": [1, 2.5, None, (3, 4)], "a": {"y": -0.0, "x": INF, "z": NAN}}, "config")
    assert text == '{"a":{"x":Infinity,"y":-0.0,"z":NaN},"b":[1,2.5,null,[3,4]]}'
    value = parse_json(text)
    assert math.isnan(value["a"]["z"])
    assert bits(value["a"]["y"]) == bits(-0.0)
    assert value["a"]["x"] == INF


def test_parse_json_of_null_column_is_none() -> None:
    assert parse_json(None) is None
    assert parse_json("null") is None
    assert parse_json('{"a":1}') == {"a": 1}


def test_canonical_json_names_the_value_that_is_not_serializable() -> None:
    with pytest.raises(TypeError, match=r"scheme of run 'a/s0' must be JSON-serializable .*object"):
        canonical_json({"init": object()}, "scheme of run 'a/s0'")
    with pytest.raises(TypeError, match="config must be JSON-serializable"):
        canonical_json({1.5: "x", "a": 1}, "config")  # mixed key types cannot be sorted


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_json_round_trips_exactly(value: object) -> None:
    text = canonical_json(value, "value")
    assert parse_json(text) == value
    assert canonical_json(parse_json(text), "value") == text  # stable: equal values, equal text


@given(st.dictionaries(st.text(max_size=5), json_values, max_size=6))
def test_canonical_json_does_not_depend_on_key_order(value: dict[str, object]) -> None:
    reordered = dict(reversed(list(value.items())))
    assert canonical_json(reordered, "value") == canonical_json(value, "value")


# -- real numbers --------------------------------------------------------------------------------------------------
def test_real_accepts_numbers_as_float() -> None:
    assert type(real("x", 3)) is float
    assert real("x", 3) == 3.0
    assert bits(real("x", -0.0)) == bits(-0.0)  # type: ignore[arg-type]
    assert math.isnan(real("x", NAN))  # type: ignore[arg-type]
    assert real("x", -INF) == -INF
    assert real("x", None, optional=True) is None


@pytest.mark.parametrize(
    ("value", "optional", "message"),
    [
        (True, False, "train_loss must be a real number, got True of type bool."),
        ("0.5", False, "train_loss must be a real number, got '0.5' of type str."),
        (None, False, "train_loss must be a real number, got None of type NoneType."),
        (1j, True, "train_loss must be a real number or None, got 1j of type complex."),
    ],
)
def test_real_rejects_non_numbers_with_the_value_named(value: object, optional: bool, message: str) -> None:
    with pytest.raises(TypeError) as info:
        real("train_loss", value, optional=optional)
    assert str(info.value) == message


# -- CSV cells -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "cell"),
    [
        (None, ""),
        (0.1 + 0.2, "0.30000000000000004"),
        (NAN, "nan"),
        (INF, "inf"),
        (-INF, "-inf"),
        (-0.0, "-0.0"),
        (1e-300, "1e-300"),
        (7, "7"),
        (True, "True"),
        ("glorot/s0", "glorot/s0"),
        ({"b": 1, "a": [1.5, None]}, '{"a":[1.5,null],"b":1}'),
        ([NAN], "[NaN]"),
    ],
)
def test_csv_cell(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


@given(st.floats())
@example(-0.0)
@example(5e-324)
def test_csv_cell_of_a_float_reads_back_with_float(x: float) -> None:
    y = float(csv_cell(x))
    assert math.isnan(y) if math.isnan(x) else bits(y) == bits(x)


# -- config flatten and diff ---------------------------------------------------------------------------------------
def test_flatten_config() -> None:
    config = {"model": {"h": 256, "act": {"name": "relu"}}, "lr": 0.1, "tags": [], "opts": {}}
    assert flatten_config(config) == {"model.h": 256, "model.act.name": "relu", "lr": 0.1, "tags": [], "opts": {}}
    assert flatten_config(5) == {"(config)": 5}
    assert flatten_config({}) == {"(config)": {}}


def test_config_diff_names_changed_added_and_removed_settings() -> None:
    old = {"lr": 0.1, "model": {"h": 256, "depth": 3}, "seeds": [0, 1]}
    new = {"lr": 0.01, "model": {"h": 256, "dropout": 0.5}, "seeds": [0, 1]}
    assert config_diff(old, new) == "lr: 0.1 -> 0.01; model.depth: 3 -> (absent); model.dropout: (absent) -> 0.5"
    assert config_diff(old, old) == ""
    assert config_diff({"name": "a"}, {"name": "b"}) == "name: 'a' -> 'b'"


def test_config_diff_stops_at_the_limit() -> None:
    old = {f"k{i}": i for i in range(8)}
    new = {f"k{i}": i + 1 for i in range(8)}
    assert config_diff(old, new, limit=3) == "k0: 0 -> 1; k1: 1 -> 2; k2: 2 -> 3; and 5 more"
    assert config_diff(old, new).endswith("k4: 4 -> 5; and 3 more")
    assert config_diff(old, new, limit=7).endswith("k6: 6 -> 7; and 1 more")
    assert config_diff(old, new, limit=8).endswith("k7: 7 -> 8")  # all shown: no "more"


def test_config_diff_of_a_json_round_trip_is_empty() -> None:
    config = {"arms": ["glorot_uniform", "he_normal"], "model": {"h": 256}, "lr": 1e-3}
    assert config_diff(config, json.loads(canonical_json(config, "config"))) == ""
