"""The model layer: the tasks bots ask (summarise, classify, extract, decide) and their prompts."""

from agentkit.llm.client import Completion, LlmClient, LlmConfig
from agentkit.llm.errors import (
    LlmError,
    LlmInvalidAnswer,
    LlmRequestError,
    LlmUnavailable,
    LlmUsageError,
    PromptError,
)
from agentkit.llm.prompts import PromptLibrary
from agentkit.llm.schema import strict_schema
from agentkit.llm.tasks import Classification, Decision, LlmTasks
from agentkit.llm.transcript import render_transcript
from agentkit.llm.usage import DEFAULT_PRICES, Usage

__all__ = [
    "DEFAULT_PRICES",
    "Classification",
    "Completion",
    "Decision",
    "LlmClient",
    "LlmConfig",
    "LlmError",
    "LlmInvalidAnswer",
    "LlmRequestError",
    "LlmTasks",
    "LlmUnavailable",
    "LlmUsageError",
    "PromptError",
    "PromptLibrary",
    "Usage",
    "render_transcript",
    "strict_schema",
]
