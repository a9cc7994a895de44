"""Banking admin: token hidden, raw JSON beside ours (connections' "sync now": sync/tests)."""

from datetime import timedelta

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from banking.models import BankToken, Transaction
from banking.tests import factories


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_superuser(
        email="ops@example.com", password="Ops-pass-2026"
    )


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def test_the_bank_token_is_never_shown(staff_client):
    token = BankToken.objects.create(
        bank_code="vbank",
        access_token="eyJhbGciOiJIUzI1NiJ9.the-team-token.signature",
        expires_at=timezone.now() + timedelta(hours=2),
        last_refreshed_at=timezone.now(),
    )

    changelist = staff_client.get(reverse("admin:banking_banktoken_changelist"))
    change = staff_client.get(reverse("admin:banking_banktoken_change", args=[token.pk]))

    for page in (changelist, change):
        assert page.status_code == 200
        assert "the-team-token" not in page.content.decode()
        assert "access_token" not in page.content.decode()
    assert "expires at" in change.content.decode().lower()


def test_transaction_page_shows_the_raw_bank_json_beside_the_normalised_fields(staff_client, user):
    account = factories.make_account(user=user)
    transaction = factories.make_transaction(
        account=account, amount="-349.90", booking_date="2025-11-20", merchant_name="Пятёрочка"
    )
    Transaction.objects.filter(pk=transaction.pk).update(
        raw_json={
            "transactionId": transaction.bank_transaction_id,
            "amount": {"amount": "349.90", "currency": "RUB"},
            "creditDebitIndicator": "Debit",
            "transactionInformation": "<script>alert('x')</script>",
        }
    )

    page = staff_client.get(reverse("admin:banking_transaction_change", args=[transaction.pk]))

    html = page.content.decode()
    assert page.status_code == 200
    assert "How we interpret it (normalised)" in html
    assert "Raw bank JSON that produced this row" in html
    assert html.index("How we interpret it") < html.index("Raw bank JSON that produced")
    assert "-349.90" in html
    assert "&quot;creditDebitIndicator&quot;: &quot;Debit&quot;" in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<script>alert(" not in html


def test_synced_rows_cannot_be_edited_or_deleted_through_admin(staff_client, user):
    transaction = factories.make_transaction(
        account=factories.make_account(user=user), amount="-10.00", booking_date="2025-11-20"
    )
    change_url = reverse("admin:banking_transaction_change", args=[transaction.pk])

    edit = staff_client.post(change_url, {"amount": "999.00"})
    delete = staff_client.post(
        reverse("admin:banking_transaction_delete", args=[transaction.pk]), {"post": "yes"}
    )

    assert (edit.status_code, delete.status_code) == (403, 403)
    assert Transaction.objects.get(pk=transaction.pk).amount == transaction.amount


def test_transaction_changelist_leaves_raw_json_out_of_its_query(staff_client, user):
    factories.make_transaction(
        account=factories.make_account(user=user), amount="-10.00", booking_date="2025-11-20"
    )

    with CaptureQueriesContext(db_connection) as queries:
        page = staff_client.get(reverse("admin:banking_transaction_changelist"))

    assert page.status_code == 200
    selects = [q["sql"] for q in queries.captured_queries if 'FROM "transactions"' in q["sql"]]
    assert selects
    assert all('"transactions"."raw_json"' not in sql for sql in selects)
    assert all("COUNT(*)" not in sql or "LIMIT" in sql for sql in selects)
    # No list filter scans the table for its options.
    assert not [sql for sql in selects if sql.startswith('SELECT DISTINCT "transactions".')]
