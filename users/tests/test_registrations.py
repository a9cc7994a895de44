"""Registration depends on no pool of bank clients: a thousand users register, and the last one
still connects a bank as a demo client FinTrack proposes (far past the team's ten) and syncs."""

import pytest

from banking.models import Account, BankConnection, ConnectionStatus
from sync.models import SyncRun, SyncStatus
from sync.tests.ground_truth import assert_equals_ground_truth
from users.models import User

REGISTRATIONS = 1000
PASSWORD = "A-strong-pass-2026"


@pytest.fixture
def fast_hashing(settings):
    """Password hashing is slow on purpose; a thousand registrations do not measure it."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _client_address(number: int) -> str:
    """A distinct client IP per registration: the per-IP registration throttle stays as it is."""
    return f"10.{number // 65536}.{number // 256 % 256}.{number % 256}"


@pytest.mark.django_db(transaction=True)
def test_a_thousand_registrations_need_no_pool_and_the_last_user_connects_and_syncs(
    sandbox_banks, api_client, fast_hashing
):
    from sandbox import clock
    from sandbox.live import persona_of
    from sandbox.volume import data_key

    answers = [
        api_client.post(
            "/api/auth/register",
            {"email": f"user{number}@example.com", "password": PASSWORD},
            format="json",
            REMOTE_ADDR=_client_address(number),
        )
        for number in range(1, REGISTRATIONS + 1)
    ]

    assert [answer.status_code for answer in answers] == [201] * REGISTRATIONS
    user_ids = [answer.json()["user_id"] for answer in answers]
    assert len(set(user_ids)) == REGISTRATIONS == User.objects.count()
    assert not BankConnection.objects.exists()  # registering touches no bank identity

    # Every earlier user holds a demo client at every bank (as their connects would have made
    # them): the last one's proposal is the next number, far past the team's ten test clients.
    earlier = User.objects.exclude(pk=user_ids[-1]).order_by("pk")
    held = [
        BankConnection(
            user=user, bank_code=code, client_id=f"team260-{number}", client_id_is_demo=True
        )
        for number, user in enumerate(earlier, start=1)
        for code in sandbox_banks
    ]
    BankConnection.objects.bulk_create(held)
    last = answers[-1].json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {last['tokens']['access']}")
    proposed = f"team260-{REGISTRATIONS}"
    persona = persona_of(data_key(proposed, clock.state().anchor))
    bank_code = next(code for code in ("vbank", "abank") if code in persona.banks)

    banks = {bank["bank_code"]: bank for bank in api_client.get("/api/banks").json()}
    assert banks[bank_code]["client_id"] == ""
    assert banks[bank_code]["proposed_client_id"] == proposed
    response = api_client.post(f"/api/banks/{bank_code}/connect", REMOTE_ADDR="10.9.9.9")

    assert response.status_code == 202, response.content
    assert response.json()["sync_started"] is True
    connection = BankConnection.objects.get(user_id=last["user_id"], bank_code=bank_code)
    assert (connection.client_id, connection.client_id_is_demo) == (proposed, True)
    assert connection.status == ConnectionStatus.READY, connection.last_error
    assert SyncRun.objects.get(connection=connection).status == SyncStatus.SUCCEEDED
    user = User.objects.get(pk=last["user_id"])
    assert Account.objects.filter(user=user).exists()
    assert_equals_ground_truth(user=user, bank_code=bank_code)
