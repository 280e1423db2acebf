"""`/v1/keys` (admin): create, list and revoke API keys, as `orchestrator keys` does."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Security
from pydantic import BaseModel, Field

from orchestrator.api.access import authorize
from orchestrator.api.errors import error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.control.keys import ApiKey, Grant, Role
from orchestrator.control.keyservice import KeyService

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/keys",
    tags=["keys"],
    dependencies=[Security(authorize)],
    responses=error_responses({404: "No key has this id"}),
)


class KeyOut(BaseModel):
    """A key as listed: never its secret."""

    key_id: str
    name: str
    role: Role
    created_at: str
    revoked_at: str | None = None
    grants: list[Grant] = []


class KeyCreate(BaseModel):
    """A key to create; `grants: ["pii"]` lets an operator key see personal fields."""

    role: Role
    name: str = Field(min_length=1, max_length=200)
    grants: list[Grant] = []


class KeyCreated(KeyOut):
    """The new key with its secret: shown this once, stored only as a hash."""

    secret: str


async def _service(state: AppState, caller: ApiKey) -> KeyService:
    # The record of the change goes out on the process's long-lived producer.
    publisher = await state.publisher()
    return KeyService(
        state.settings,
        state.key_store,
        state.operator_name(caller.name, caller.key_id),
        publisher.producer,
    )


@router.get("", name="list_keys", response_model=list[KeyOut], summary="Every key")
async def list_keys(
    state: Annotated[AppState, Depends(app_state)],
) -> list[KeyOut]:
    """Every key, revoked ones included."""
    async with state.redis_call():
        keys = await state.key_store.list()
    return [KeyOut(**key.to_wire()) for key in keys]


@router.post("", name="create_key", status_code=201, response_model=KeyCreated, summary="A new key")
async def create_key(
    body: KeyCreate,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> KeyCreated:
    """Create a key; the answer holds its secret, shown only this once."""
    async with state.call():
        key, secret = await (await _service(state, caller)).create(
            body.role, body.name, body.grants
        )
    return KeyCreated(**key.to_wire(), secret=secret)


@router.delete("/{key_id}", name="revoke_key", response_model=KeyOut, summary="Revoke a key")
async def revoke_key(
    key_id: str,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> KeyOut:
    """Revoke a key at once: every API process refuses it from the next request."""
    async with state.call():
        key = await (await _service(state, caller)).revoke(key_id)
    return KeyOut(**key.to_wire())
