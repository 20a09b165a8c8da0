"""``/v1/account``."""

from __future__ import annotations

from agentkit.odygy.models import Account
from agentkit.odygy.resources._base import Resource


class AccountResource(Resource):
    async def retrieve(self) -> Account:
        """The account the API key belongs to."""
        return Account.model_validate(await self._transport.request("GET", "/account"))
