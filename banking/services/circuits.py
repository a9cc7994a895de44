"""The banks' circuit breakers as the admin sees them: each change of state recorded in
BankCircuitState (the state itself lives in the cache, banking/clients/circuit.py), and "close
now". The transport hands every change to `bank_circuit_state_record` (wired in
banking.services.clients); nothing here runs on each call."""

from datetime import UTC, datetime

from django.utils import timezone

from banking.clients.circuit import CircuitState, CircuitTransition, circuit_close, circuit_state
from banking.models import BankCircuitState


def _aware(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, tz=UTC)


def bank_circuit_state_record(transition: CircuitTransition) -> BankCircuitState:
    """Store a change of a bank's circuit (open, half-open, closed) for the admin."""
    row, _created = BankCircuitState.objects.update_or_create(
        bank_code=transition.bank_code,
        defaults={
            "status": str(transition.status),
            "failures": transition.failures,
            "trips": transition.trips,
            "opened_at": _aware(transition.opened_at),
            "next_probe_at": _aware(transition.open_until),
            "reason": transition.reason[:255],
            "changed_at": timezone.now(),
        },
    )
    return row


def bank_circuit_close(*, bank_code: str) -> BankCircuitState:
    """Close the bank's circuit now (calls go through again), whatever the cache held, and
    record it: the admin's "close now" after the bank is known to be back."""
    transition = circuit_close(bank_code)
    if transition is None:
        transition = CircuitTransition(
            bank_code,
            circuit_state(bank_code).status,
            failures=0,
            trips=0,
            opened_at=None,
            open_until=None,
            reason="closed by hand (it was closed already)",
        )
    return bank_circuit_state_record(transition)


def bank_circuit_live(*, bank_code: str) -> CircuitState:
    """The circuit as the cache holds it now (the row may lag: it changes on transitions)."""
    return circuit_state(bank_code)
