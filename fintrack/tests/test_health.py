"""GET /api/health checks the database and the broker."""

import pytest

from fintrack.celery import app as celery_app


@pytest.mark.django_db
def test_health_is_ok_when_database_and_broker_answer(api_client):
    response = api_client.get("/api/health")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_health_is_503_naming_the_broker_when_it_is_down(api_client, monkeypatch):
    # A Redis URL on a port nothing listens on: the broker is down.
    original = celery_app.connection_for_write
    monkeypatch.setattr(
        celery_app,
        "connection_for_write",
        lambda: original(url="redis://127.0.0.1:1/0", transport_options={}),
    )

    response = api_client.get("/api/health")

    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "service_unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["broker"].startswith("failed")
    assert "broker" in body["message"]
