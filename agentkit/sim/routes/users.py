"""``/v1/users``."""

from __future__ import annotations

from quart import Blueprint, Response

from agentkit.odygy.models import User, UserCreate, UserUpdate
from agentkit.sim.gate import SimApiError
from agentkit.sim.routes._base import (
    body,
    dump,
    find,
    host,
    json_response,
    no_content,
    page,
    query,
    requires,
)
from agentkit.sim.state import utcnow

blueprint = Blueprint("users", __name__, url_prefix="/v1")


@blueprint.get("/users")
@requires("read:*")
async def list_users() -> Response:
    return page(list(host().state.users.values()), query(("limit", "cursor")))


@blueprint.post("/users")
@requires("users:write")
async def create_user() -> Response:
    query(())
    new = await body(UserCreate)
    _check_unique(new.email, new.extension, None)
    state = host().state
    user = User(id=state.ids.new("usr"), created_at=utcnow(), **new.model_dump())
    state.users[user.id] = user
    return json_response(dump(user), 201)


@blueprint.get("/users/<user_id>")
@requires("read:*")
async def get_user(user_id: str) -> Response:
    query(())
    return json_response(dump(find(host().state.users, user_id, "user")))


@blueprint.patch("/users/<user_id>")
@requires("users:write")
async def update_user(user_id: str) -> Response:
    query(())
    users = host().state.users
    user = find(users, user_id, "user")
    change = await body(UserUpdate)
    fields = change.model_dump(exclude_unset=True)
    _check_unique(fields.get("email"), fields.get("extension"), user_id)
    updated = user.model_copy(update=fields)
    users[user_id] = updated
    return json_response(dump(updated))


@blueprint.delete("/users/<user_id>")
@requires("users:write")
async def delete_user(user_id: str) -> Response:
    query(())
    users = host().state.users
    find(users, user_id, "user")
    del users[user_id]
    return no_content()


def _check_unique(email: str | None, extension: str | None, skip: str | None) -> None:
    """A 409 if another user than ``skip`` has this email or extension."""
    for user in host().state.users.values():
        if user.id == skip:
            continue
        if email and user.email.lower() == email.lower():
            raise SimApiError(409, "conflict", f"A user with email '{email}' already exists.")
        if extension and user.extension == extension:
            raise SimApiError(
                409, "conflict", f"Extension '{extension}' already belongs to {user.id}."
            )
