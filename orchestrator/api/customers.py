"""`/v1/customers/{id}`: journey state and profile data (operator, auditor).

Personal profile fields are masked for operators without the `pii` grant. Each read of the
customer's data (profile, consent) is recorded as a `data_access` interaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Security
from pydantic import BaseModel

from orchestrator.api.access import authorize
from orchestrator.api.errors import ApiError, error_responses
from orchestrator.api.state import AppState, app_state
from orchestrator.control.customers import journey_view, read_customer
from orchestrator.control.keys import ApiKey
from orchestrator.control.records import data_access_record, send_records
from orchestrator.engine.state import CustomerState
from orchestrator.timefmt import format_instant

__all__ = ["router"]

router = APIRouter(
    prefix="/v1/customers",
    tags=["customers"],
    dependencies=[Security(authorize)],
    responses=error_responses({404: "No state stored for the customer"}),
)


class JourneyInstance(BaseModel):
    """One active journey instance."""

    journey: str
    version: int
    instance_id: str
    step: str | None
    waiting_for: str | None
    timer_due_at: str | None
    expires_at: str | None
    entered_at: str
    variant: str | None


class CustomerJourneys(BaseModel):
    """The journeys a customer is in now."""

    customer_id: str
    journeys: list[JourneyInstance]


class CustomerData(CustomerJourneys):
    """Also the customer's profile and consent per channel."""

    profile: dict[str, Any]
    consent: dict[str, str]


async def _state(state: AppState, customer_id: str) -> CustomerState:
    async with state.redis_call():
        stored = await read_customer(state.redis, state.keys, customer_id)
    if stored is None:
        raise ApiError(
            404, "customer_not_found", f"no state is stored for customer {customer_id!r}"
        )
    return stored


@router.get("/{customer_id}/journeys", name="customer_journeys", response_model=CustomerJourneys)
async def customer_journeys(
    customer_id: str, state: Annotated[AppState, Depends(app_state)]
) -> CustomerJourneys:
    """Active instances: journey, version, step, what it waits for, when its timer is due."""
    stored = await _state(state, customer_id)
    return CustomerJourneys(
        customer_id=customer_id,
        journeys=[JourneyInstance(**view) for view in journey_view(stored)],
    )


@router.get("/{customer_id}", name="customer_data", response_model=CustomerData)
async def customer_data(
    customer_id: str,
    state: Annotated[AppState, Depends(app_state)],
    caller: Annotated[ApiKey, Security(authorize)],
) -> CustomerData:
    """Profile (personal fields masked unless the caller may see them), consent per channel
    and active journeys; the read is recorded."""
    stored = await _state(state, customer_id)
    record = data_access_record(
        customer_id,
        format_instant(state.clock.now()),
        state.operator_name(caller.name, caller.key_id),
        ["profile", "consent", "journeys"],
    )
    # Recorded before answering: a read that cannot be recorded is not served.
    async with state.call():
        publisher = await state.publisher()
        await send_records(state.settings, [record], publisher.producer)
    return CustomerData(
        customer_id=customer_id,
        journeys=[JourneyInstance(**view) for view in journey_view(stored)],
        profile=state.redactor.for_caller(caller, stored.profile),
        consent=stored.consent,
    )
