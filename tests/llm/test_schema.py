"""Strict JSON schemas from pydantic models."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from agentkit.llm import LlmUsageError, strict_schema
from agentkit.llm.schema import schema_name


class Item(BaseModel):
    sku: str
    quantity: int = 1


class Order(BaseModel):
    customer: str = Field(description="who ordered")
    items: list[Item]
    note: str | None = None
    channel: Literal["phone", "web"] = "phone"
    gift: Item | None = None


def test_every_property_is_required() -> None:
    """Fields with defaults become required too, and no other property is allowed."""
    schema = strict_schema(Order)
    assert schema["required"] == ["customer", "items", "note", "channel", "gift"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["customer"]["description"] == "who ordered"


def test_optional_fields_may_be_null() -> None:
    """An optional field is an anyOf with null, and carries no default."""
    note = strict_schema(Order)["properties"]["note"]
    assert note["anyOf"] == [{"type": "string"}, {"type": "null"}]
    assert "default" not in note


def test_nested_models_are_strict() -> None:
    """Models reached through $defs are strict as well."""
    item = strict_schema(Order)["$defs"]["Item"]
    assert item["required"] == ["sku", "quantity"]
    assert item["additionalProperties"] is False


def test_answer_validates_against_the_model() -> None:
    """A JSON answer fitting the strict schema validates into the model."""
    order = Order.model_validate_json(
        '{"customer": "Ana", "items": [{"sku": "A1", "quantity": 2}], "note": null, '
        '"channel": "web", "gift": null}'
    )
    assert order.items[0].quantity == 2


def test_free_form_mapping_is_refused() -> None:
    """A dict field cannot be expressed in strict mode, so it is refused with advice."""

    class Loose(BaseModel):
        extra: dict[str, str]

    with pytest.raises(LlmUsageError, match="named fields"):
        strict_schema(Loose)


def test_schema_names_are_sanitised() -> None:
    """Response-format names keep to letters, digits, _ and -, at most 64 characters."""
    assert schema_name("Voicemail Triage!") == "Voicemail_Triage_"
    assert len(schema_name("x" * 100)) == 64
