"""Hypothesis strategies for the JSON Schema subset an OpenAPI description uses.

Covers what the Breeze description needs: `$ref` to `#/components/schemas/...`, `anyOf`,
`type` (object, array, string, number, integer, boolean, null), `properties`, `required`
and `additionalProperties`. Optional properties are sometimes left out; extra properties
are sometimes added, as the contract allows.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text()
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)


def from_schema(schema: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid against `schema`, whose `$ref`s point into `document`."""
    if "$ref" in schema:
        target: Any = document
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return from_schema(target, document)
    if "anyOf" in schema:
        return st.one_of([from_schema(option, document) for option in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, document)
    if kind == "array":
        items = from_schema(schema.get("items", {}), document)
        return st.lists(items, max_size=schema.get("maxItems", 12))
    return _SCALARS.get(kind, ANY_JSON)


_SCALARS: dict[Any, st.SearchStrategy[Any]] = {
    "string": st.text(max_size=300),
    "number": st.one_of(st.integers(), st.floats(allow_nan=False, allow_infinity=False)),
    "integer": st.integers(),
    "boolean": st.booleans(),
    "null": st.none(),
}


def _object(schema: dict[str, Any], document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", []))
    fixed = {name: from_schema(sub, document) for name, sub in properties.items() if name in required}
    optional = {name: from_schema(sub, document) for name, sub in properties.items() if name not in required}
    known = st.fixed_dictionaries(fixed, optional=optional)
    if schema.get("additionalProperties") is False:
        return known
    extra = st.dictionaries(st.text(max_size=12).filter(lambda k: k not in properties), ANY_JSON, max_size=3)
    return st.tuples(known, extra).map(lambda both: {**both[1], **both[0]})
