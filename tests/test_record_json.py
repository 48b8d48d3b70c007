"""``loads_exact`` / ``dumps_exact``: JSON in and out with every value kept, where orjson alone
would turn an integer past 64 bits into a float, or refuse 1e999, or refuse to write them."""

import json

import pytest

from sluiceway.record import dumps_exact, loads_exact

BIG = 123456789012345678901234567890


@pytest.mark.parametrize("text, value", [
    (b'{"n": 123456789012345678901234567890}', {"n": BIG}),
    ('{"n": -9223372036854775809}', {"n": -9223372036854775809}),
    (b'{"n": 18446744073709551615, "s": "12345678901234567890123"}', {"n": 18446744073709551615,
                                                                     "s": "12345678901234567890123"}),
    (b'{"n": 1e999}', {"n": float("inf")}),
    (bytearray(b'[1, 2.5, "x"]'), [1, 2.5, "x"]),
])
def test_loads_exact_keeps_every_value(text, value):
    got = loads_exact(text)
    assert got == value and type(got) is type(value)
    if isinstance(value, dict) and "n" in value:
        assert isinstance(got["n"], type(value["n"])) and type(got["n"]) is not bool


@pytest.mark.parametrize("text", [
    b'{"a": NaN}', b'{"n": 1e999, "b": NaN}', b'{"n": 123456789012345678901234567890, "b": Infinity}',
    b'{"a": "\xff"}', b'{"a": "\\ud800", "n": 123456789012345678901234567890}', b"[1, 2", b"",
])
def test_loads_exact_refuses_what_orjson_refuses_with_a_json_error(text):
    with pytest.raises(json.JSONDecodeError):
        loads_exact(text)


def test_dumps_exact_writes_what_orjson_cannot():
    assert dumps_exact({"n": BIG, "f": float("inf"), "l": [BIG]}) == b'{"n":123456789012345678901234567890,"f":null,"l":[123456789012345678901234567890]}'
    assert dumps_exact({"a": "é"}) == '{"a":"é"}'.encode()
    deep: list = []
    for _ in range(300):  # past orjson's 254 levels, within Python's recursion limit
        deep = [deep]
    assert dumps_exact(deep) == b"[" * 301 + b"]" * 301


def test_numbers_past_a_double_keep_their_text():
    """1e999 reads as inf (a ``HugeNumber``) and is written back as sent; other infinities
    are written as null. A string that looks like the stand-in is left alone."""
    doc = loads_exact(b'[{"n": 1e999, "m": [-1E+400, 1.5, 123456789012345678901234567890]}, "\\u0001x0\\u0001"]')
    assert doc[0]["n"] == float("inf") and doc[0]["m"][0] == float("-inf")
    assert dumps_exact(doc) == b'[{"n":1e999,"m":[-1E+400,1.5,123456789012345678901234567890]},"\\u0001x0\\u0001"]'
    assert dumps_exact([float("inf"), doc[0]["n"]]) == b"[null,1e999]"
