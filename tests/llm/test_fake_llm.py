"""The fake model server itself: OpenAI's shapes, scripting, minimal answers."""

from __future__ import annotations

import json

import openai

from agentkit.testing import FakeLlm
from agentkit.testing.fake_llm import minimal_instance


async def test_speaks_the_openai_shape(fake_llm: FakeLlm) -> None:
    """The real openai client reads its answers, usage included, and lists its model."""
    fake_llm.reply(lambda body: {"echo": body["messages"][0]["content"]})
    async with openai.AsyncOpenAI(api_key="k", base_url=fake_llm.base_url) as client:
        completion = await client.chat.completions.create(
            model="fake-model", messages=[{"role": "user", "content": "ping"}]
        )
        models = await client.models.list()
    assert json.loads(completion.choices[0].message.content or "") == {"echo": "ping"}
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert [m.id for m in models.data] == ["fake-model"]
    assert fake_llm.requests[0]["messages"] == [{"role": "user", "content": "ping"}]


def test_minimal_instance_of_a_schema() -> None:
    """Enums take their first value, strings "", numbers 0, null where allowed, refs resolved."""
    schema = {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["b", "a"]},
            "text": {"type": "string"},
            "score": {"type": "number"},
            "count": {"type": "integer"},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}},
            "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "child": {"$ref": "#/$defs/Child"},
        },
        "$defs": {"Child": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    }
    assert minimal_instance(schema, schema) == {
        "label": "b", "text": "", "score": 0, "count": 0, "flag": False, "tags": [],
        "maybe": None, "child": {"n": 0},
    }
