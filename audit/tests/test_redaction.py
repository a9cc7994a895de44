"""Redaction of what the raw API log stores."""

from audit.redaction import (
    REDACTED,
    is_sensitive_key,
    might_contain_secrets,
    redact_headers,
    redact_json,
    redact_query,
    redact_query_string,
    redact_text,
)

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ0ZWFtMjYwIiwiZXhwIjoxNzY0MjAzNDAwfQ"
    ".FAKE-SIGNATURE"
)


def test_sensitive_keys_are_recognised_in_any_spelling():
    for key in [
        "Authorization",
        "proxy-authorization",
        "access_token",
        "refresh_token",
        "client_secret",
        "CLIENT-SECRET",
        "password",
        "signature",
        "X-Api-Key",
        "Cookie",
        "team_secret_value",
    ]:
        assert is_sensitive_key(key), key
    for key in ["client_id", "token_type", "expires_in", "consent_id", "request_id", "amount"]:
        assert not is_sensitive_key(key), key


def test_headers_lose_authorization_and_cookies_but_keep_the_rest():
    headers = {
        "Authorization": f"Bearer {JWT}",
        "X-Consent-Id": "consent-1",
        "X-Requesting-Bank": "team260",
        "Set-Cookie": "session=abc",
    }

    assert redact_headers(headers) == {
        "Authorization": REDACTED,
        "X-Consent-Id": "consent-1",
        "X-Requesting-Bank": "team260",
        "Set-Cookie": REDACTED,
    }


def test_query_parameters_lose_secrets():
    assert redact_query({"client_id": "team260", "client_secret": "s3cr3t"}) == {
        "client_id": "team260",
        "client_secret": REDACTED,
    }
    assert redact_query_string("client_id=team260&client_secret=s3cr3t&page=2") == (
        "client_id=team260&client_secret=[REDACTED]&page=2"
    )


def test_nested_json_keys_and_jwt_values_are_redacted_without_touching_the_input():
    body = {
        "access_token": JWT,
        "token_type": "bearer",
        "data": {
            "items": [{"password": "pw-1", "note": f"token was {JWT}", "amount": "1.00"}],
            "signature": "password",
        },
        "message": "use Bearer abc.def-123 next time",
    }

    redacted = redact_json(body)

    assert redacted == {
        "access_token": REDACTED,
        "token_type": "bearer",
        "data": {
            "items": [{"password": REDACTED, "note": f"token was {REDACTED}", "amount": "1.00"}],
            "signature": REDACTED,
        },
        "message": f"use Bearer {REDACTED} next time",
    }
    assert body["access_token"] == JWT


def test_known_secret_values_are_cut_wherever_they_appear():
    assert redact_json({"echo": "secret is team-secret-xyz!"}, secrets=["team-secret-xyz"]) == {
        "echo": f"secret is {REDACTED}!"
    }
    assert redact_headers({"X-Debug": "team-secret-xyz"}, secrets=["team-secret-xyz"]) == {
        "X-Debug": REDACTED
    }


def test_text_redaction_handles_json_fragments_query_strings_and_jwts():
    text = (
        '{"access_token": "abc123", "client_secret":"x\\"y", "ok": "fine"} '
        f"/auth/bank-token?client_id=team260&client_secret=s3cr3t {JWT}"
    )

    redacted = redact_text(text)

    assert "abc123" not in redacted
    assert "s3cr3t" not in redacted
    assert 'x\\"y' not in redacted
    assert "FAKE-SIGNATURE" not in redacted
    assert '"ok": "fine"' in redacted
    assert "client_id=team260" in redacted
    assert redacted.count(REDACTED) == 4


def test_the_precheck_finds_every_kind_of_secret_and_passes_plain_bank_data():
    assert not might_contain_secrets('{"transactionInformation": "🏪 Продукты", "amount": "1.00"}')
    for text in [
        '{"Access_Token": "x"}',
        "client_secret=1",
        '{"PASSWORD": "x"}',
        "Authorization: x",
        '{"X-API-Key": "x"}',
        JWT,
        "bearer abc",
    ]:
        assert might_contain_secrets(text), text
    assert might_contain_secrets("echo team-secret-xyz", secrets=["team-secret-xyz"])
    assert not might_contain_secrets("echo nothing", secrets=["team-secret-xyz"])
