"""The phone.systems client: typed models, one resource per API area, safe retries."""

from agentkit.odygy.client import OdygyClient
from agentkit.odygy.pagination import Paginator
from agentkit.odygy.ratelimit import RateLimits
from agentkit.odygy.resources._base import NOT_GIVEN
from agentkit.odygy.transport import ClientStats, RetryPolicy

__all__ = ["NOT_GIVEN", "ClientStats", "OdygyClient", "Paginator", "RateLimits", "RetryPolicy"]
