"""Sandbox test helpers: a frozen clock and a small client that speaks to the banks like ours."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings

from sandbox import clock

EXAMPLES = Path(__file__).parent / "contract_examples"
FROZEN_AT = datetime(2025, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)
PERMISSIONS = ["ReadAccountsDetail", "ReadBalances", "ReadTransactionsDetail"]


def example(name: str):
    return json.loads((EXAMPLES / name).read_text())


@pytest.fixture
def examples_style(settings):
    """The older data shaped like ../shared/bank-api/examples, for the tests written against it."""
    settings.SANDBOX_DATA_STYLE = "examples"


@pytest.fixture(autouse=True)
def frozen_clock(db):
    """Every sandbox test starts at the same instant with history anchored on that day."""
    clock.reset(at=FROZEN_AT)
    return FROZEN_AT


class Bank:
    """Calls one sandbox bank through Django's test client, the way FinTrack's client would."""

    def __init__(self, client, code: str):
        self.client = client
        self.code = code
        self.base = f"/sandbox/{code}"
        self.team = settings.BANK_TEAM_ID

    def post(self, path, body=None, headers=None, **query):
        data = json.dumps(body) if body is not None else ""
        url = self.base + path
        if query:
            url += "?" + "&".join(f"{k}={v}" for k, v in query.items())
        return self.client.post(url, data=data, content_type="application/json",
                                headers=headers or {})  # fmt: skip

    def get(self, path, headers=None, **query):
        return self.client.get(self.base + path, query, headers=headers or {})

    def delete(self, path, headers=None):
        return self.client.delete(self.base + path, headers=headers or {})

    def token(self) -> str:
        response = self.post("/auth/bank-token", client_id=self.team,
                             client_secret=settings.BANK_TEAM_SECRET)  # fmt: skip
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    def auth(self, token=None) -> dict:
        return {"Authorization": f"Bearer {token or self.token()}"}

    def interbank(self, consent_id: str, token=None) -> dict:
        return {**self.auth(token), "X-Requesting-Bank": self.team, "X-Consent-Id": consent_id}

    def login(self, client_id: str) -> str:
        response = self.post("/auth/login", {"username": client_id,
                                             "password": settings.BANK_TEAM_SECRET})  # fmt: skip
        assert response.status_code == 200, response.content
        return response.json()["access_token"]

    def consent(self, client_id: str, permissions=None) -> str:
        """An active account consent id (self-signing when the bank wants manual approval)."""
        body = {"client_id": client_id, "permissions": permissions or PERMISSIONS,
                "reason": "test", "requesting_bank": self.team,
                "requesting_bank_name": "FinTrack"}  # fmt: skip
        headers = {**self.auth(), "X-Requesting-Bank": self.team}
        response = self.post("/account-consents/request", body, headers=headers)
        assert response.status_code == 200, response.content
        data = response.json()
        if data["status"] == "approved":
            return data["consent_id"]
        signed = self.post("/account-consents/sign",
                           {"request_id": data["request_id"], "action": "approve",
                            "signature": "password"},
                           headers=self.auth(self.login(client_id)))  # fmt: skip
        assert signed.status_code == 200, signed.content
        return signed.json()["consent_id"]

    def product_consent(self, client_id: str) -> str:
        body = {"requesting_bank": self.team, "client_id": client_id,
                "read_product_agreements": True}  # fmt: skip
        response = self.post("/product-agreement-consents/request", body,
                             headers=self.auth(), client_id=client_id)  # fmt: skip
        assert response.status_code == 200, response.content
        return response.json()["consent_id"]

    def all_transactions(self, account_id: str, headers: dict, limit: int = 100) -> list[dict]:
        items, page = [], 1
        while True:
            response = self.get(f"/accounts/{account_id}/transactions", headers=headers,
                                page=page, limit=limit)  # fmt: skip
            assert response.status_code == 200, response.content
            body = response.json()
            items += body["data"]["transaction"]
            if "next" not in body["links"]:
                return items
            page += 1


@pytest.fixture
def bank(client):
    """A factory: bank("vbank") → Bank helper."""
    return lambda code: Bank(client, code)
