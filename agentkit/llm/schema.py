"""JSON schemas the way OpenAI's strict structured outputs want them, made from pydantic models."""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from pydantic import BaseModel

from agentkit.llm.errors import LlmUsageError

_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def schema_name(name: str) -> str:
    """A response-format name the API accepts: letters, digits, _ and -, at most 64."""
    return _NAME_CHARS.sub("_", name)[:64] or "answer"


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``model``'s JSON schema made strict: every property required, no others allowed.

    A field with a default becomes required too (the model must then say its
    value); an optional field keeps its ``anyOf`` with null, which is how strict
    mode spells "may be empty". ``$ref`` next to other keys is inlined, since
    strict mode refuses siblings of a ``$ref``. Made once per model (pydantic
    generates a schema in about 0.4 ms, ten times what a copy costs); each call
    gets its own copy.
    """
    return copy.deepcopy(_strict_schema(model))


@functools.lru_cache(maxsize=256)
def _strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    root = copy.deepcopy(model.model_json_schema(mode="validation"))
    strict: dict[str, Any] = _strict(root, root)
    return strict


def _strict(node: Any, root: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_strict(item, root) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1:
        merged = {**_resolve(ref, root), **{k: v for k, v in node.items() if k != "$ref"}}
        return _strict(merged, root)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "default":
            continue
        if key in ("properties", "$defs"):
            out[key] = {name: _strict(sub, root) for name, sub in value.items()}
        else:
            out[key] = _strict(value, root)
    if out.get("type") == "object" or "properties" in out:
        properties = out.setdefault("properties", {})
        if not properties and out.get("additionalProperties") not in (None, False):
            raise LlmUsageError(
                "a free-form mapping cannot be asked for in strict mode: "
                "give the extract schema named fields instead of a dict"
            )
        out["required"] = list(properties)
        out["additionalProperties"] = False
    return out


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise LlmUsageError(f"cannot resolve the schema reference {ref!r}: only local ones work")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    if not isinstance(node, dict):
        raise LlmUsageError(f"the schema reference {ref!r} is not an object")
    return dict(node)
