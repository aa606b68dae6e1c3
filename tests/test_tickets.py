"""The ticket state machine, without a server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dispatch.tickets import Feedback, IllegalTransition, Ticket, TicketState

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def new_ticket() -> Ticket:
    return Ticket(id=1, incident_id=7, subcentre_id=3, department="fire", state=TicketState.CREATED, created_at=T0)


def test_a_ticket_goes_from_created_to_closed_with_each_timestamp() -> None:
    ticket = new_ticket().deliver(T0 + timedelta(seconds=1))
    ticket = ticket.acknowledge(T0 + timedelta(seconds=5))
    ticket = ticket.report_back(Feedback("fire out", people_affected=2), T0 + timedelta(minutes=40))
    assert ticket.state is TicketState.CLOSED
    assert (ticket.delivered_at, ticket.acknowledged_at, ticket.closed_at) == (
        T0 + timedelta(seconds=1), T0 + timedelta(seconds=5), T0 + timedelta(minutes=40))
    assert ticket.feedback == Feedback("fire out", people_affected=2)
    assert ticket.state.finished


def test_acknowledging_an_undelivered_ticket_records_delivery_too() -> None:
    ticket = new_ticket().acknowledge(T0 + timedelta(seconds=3))
    assert ticket.state is TicketState.ACKNOWLEDGED
    assert ticket.delivered_at == ticket.acknowledged_at == T0 + timedelta(seconds=3)


@pytest.mark.parametrize("steps, illegal", [
    (["acknowledge"], "acknowledge"),                 # acknowledging twice
    ([], "report_back"),                              # feedback before anyone acknowledged
    (["deliver"], "deliver"),                         # delivered twice is not a transition
    (["acknowledge", "report_back"], "cancel"),       # a closed ticket stays closed
    (["cancel"], "acknowledge"),                      # a cancelled ticket cannot be acknowledged
    (["reject"], "acknowledge"),                      # a rejected ticket goes back to the dispatcher
])
def test_illegal_transitions_are_refused(steps: list[str], illegal: str) -> None:
    ticket = new_ticket()
    for step in [*steps, illegal]:
        before = ticket
        try:
            ticket = _do(ticket, step)
        except IllegalTransition as error:
            assert step == illegal
            assert error.state is before.state
            return
    pytest.fail(f"{illegal} after {steps} was allowed")


def test_a_rejected_ticket_can_be_cancelled_by_the_dispatcher() -> None:
    ticket = new_ticket().reject("not our area", T0).cancel("re-dispatched", T0)
    assert ticket.state is TicketState.CANCELLED
    assert ticket.reason == "re-dispatched"
    assert not TicketState.REJECTED.finished


def _do(ticket: Ticket, step: str) -> Ticket:
    if step == "deliver":
        return ticket.deliver(T0)
    if step == "acknowledge":
        return ticket.acknowledge(T0)
    if step == "report_back":
        return ticket.report_back(Feedback("done"), T0)
    if step == "reject":
        return ticket.reject("not ours", T0)
    return ticket.cancel("duplicate", T0)
