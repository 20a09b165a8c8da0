"""``/v1/users``."""

from __future__ import annotations

from agentkit.odygy.models import Role, User, UserCreate, UserUpdate
from agentkit.odygy.pagination import Paginator
from agentkit.odygy.resources._base import NOT_GIVEN, NotGiven, Resource, build, segment


class UsersResource(Resource):
    def list(self, *, limit: int | None = None) -> Paginator[User]:
        """Every user, a page of ``limit`` at a time."""
        return Paginator(self._transport, "/users", User.model_validate, limit=limit)

    async def create(
        self,
        *,
        name: str,
        email: str,
        extension: str,
        role: Role | NotGiven = NOT_GIVEN,
        caller_id_number: str | NotGiven = NOT_GIVEN,
    ) -> User:
        """Create a user. Email and extension must be unique (else ConflictError)."""
        body = build(
            UserCreate,
            {
                "name": name,
                "email": email,
                "extension": extension,
                "role": role,
                "caller_id_number": caller_id_number,
            },
        )

        async def reconcile(since: float) -> User | None:
            async for user in self.list(limit=100):
                if user.email.lower() == email.lower():
                    return user
            return None

        return await self._transport.create(
            "/users", body, parse=User.model_validate, reconcile=reconcile
        )

    async def retrieve(self, user_id: str) -> User:
        answer = await self._transport.request("GET", f"/users/{segment(user_id, 'user_id')}")
        return User.model_validate(answer)

    async def update(
        self,
        user_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        email: str | NotGiven = NOT_GIVEN,
        extension: str | NotGiven = NOT_GIVEN,
        role: Role | NotGiven = NOT_GIVEN,
        caller_id_number: str | NotGiven | None = NOT_GIVEN,
    ) -> User:
        """Change the fields given; ``caller_id_number=None`` clears it."""
        body = build(
            UserUpdate,
            {
                "name": name,
                "email": email,
                "extension": extension,
                "role": role,
                "caller_id_number": caller_id_number,
            },
        )
        answer = await self._transport.request(
            "PATCH", f"/users/{segment(user_id, 'user_id')}", json=body
        )
        return User.model_validate(answer)

    async def delete(self, user_id: str) -> None:
        await self._transport.delete(f"/users/{segment(user_id, 'user_id')}")
