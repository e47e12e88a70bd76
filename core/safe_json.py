"""JSON from clients, parsed without letting hostile input reach a 500 (issue 11).

`json.loads` recurses once per nesting level, so a 4 KB body of `[[[[...` raises
`RecursionError`; and a `"\\ud800"` escape gives a string with a lone UTF-16 surrogate that
cannot be encoded as UTF-8, so it fails later when an error message echoing it is rendered or
when it is written to the database. `safe_json_loads` refuses both before anything else sees
the value. Pure Python, no Django: services (webhooks), the DRF parser and the idempotency
fingerprint all use it.
"""

import json
import re

MAX_JSON_DEPTH = 32  # arrays and objects; the deepest real body (an order) is 3

# A JSON string, unrolled so that it never backtracks: quote, plain runs, escapes, quote.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_SURROGATE = re.compile("[\ud800-\udfff]")


class UnsafeJson(ValueError):
    """JSON refused for its shape rather than its syntax; `code` is `invalid_json`."""

    code = "invalid_json"

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


def safe_json_loads(data: bytes | str, *, max_depth: int = MAX_JSON_DEPTH):
    """`data` (UTF-8 bytes or text) parsed as JSON, like `json.loads`.

    Raises `UnsafeJson` (a `ValueError`) when arrays/objects nest deeper than `max_depth` —
    found by scanning the text before parsing, so no recursion ever happens — or when a key or
    string value holds a lone UTF-16 surrogate; `ValueError` (`UnicodeDecodeError`,
    `json.JSONDecodeError`) for bytes that are not UTF-8 or text that is not JSON, including
    `NaN` and `Infinity`, which are not JSON either.
    """
    text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    _check_depth(text, max_depth)
    value = json.loads(text, parse_constant=_refuse_constant)
    _check_strings(value)
    return value


def _check_depth(text: str, max_depth: int) -> None:
    depth = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > max_depth:
            raise UnsafeJson(f"JSON is nested more than {max_depth} levels deep.")


def _check_strings(value) -> None:
    # Iterative: the depth is already capped, but a wide body must not cost a frame per item.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                raise UnsafeJson("JSON text holds a lone UTF-16 surrogate (\\ud800-\\udfff).")
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number.")
