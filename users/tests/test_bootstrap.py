"""The bootstrap command: the demo user is a demo client at every bank, ready to connect."""

import pytest
from django.core.management import call_command

from banking.models import BankConnection, ConnectionStatus
from users.models import User


@pytest.mark.django_db
def test_the_demo_user_gets_a_demo_client_at_every_bank_once(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    settings.DEMO_BANK_CLIENTS = True

    call_command("bootstrap")
    first = capsys.readouterr().out
    call_command("bootstrap")
    second = capsys.readouterr().out

    demo = User.objects.get(email="demo@fintrack.local")
    clients = set(
        BankConnection.objects.filter(user=demo).values_list(
            "bank_code", "client_id", "client_id_is_demo", "status"
        )
    )
    assert clients == {
        (code, "team260-1", True, ConnectionStatus.NOT_CONNECTED) for code in settings.BANKS
    }
    assert "bank clients vbank team260-1, abank team260-1, sbank team260-1" in first
    assert "bank clients vbank team260-1, abank team260-1, sbank team260-1" in second
    assert BankConnection.objects.count() == len(settings.BANKS)  # the admin connects nothing


@pytest.mark.django_db
def test_without_demo_clients_bootstrap_says_how_to_connect(settings, tmp_path, capsys):
    settings.VAR_DIR = tmp_path
    settings.DEMO_BANK_CLIENTS = False

    call_command("bootstrap")

    assert "POST /api/banks/{code}/connect" in capsys.readouterr().out
    assert not BankConnection.objects.exists()
