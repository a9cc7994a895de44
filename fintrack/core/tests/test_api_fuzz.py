"""Schema fuzzing of every API operation with schemathesis, through the WSGI app, with valid tokens.

Positive and negative cases for each operation from the OpenAPI schema (bounded, derandomised so
a run is reproducible), then positive cases again with the path pointing at the caller's real
objects. Banks are the sandbox on live_server, so operations that call a bank reach one.
Asserted: no 5xx at all, and every 4xx body in the standard shape {"code", "message", "extra"}.
"""

import itertools
import json
from collections import Counter
from dataclasses import dataclass, field

import pytest

pytestmark = pytest.mark.django_db(transaction=True)

EXAMPLES_PER_OPERATION = 25
STAFF_PATHS = ("/api/admin/",)


@dataclass
class FuzzReport:
    """What the fuzzing sent and what came back, for the assertions and the printed summary."""

    cases: int = 0
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    bad_error_bodies: list[str] = field(default_factory=list)
    unsatisfiable: list[str] = field(default_factory=list)

    def record(self, case, response) -> None:
        self.cases += 1
        self.statuses[response.status_code] += 1
        label = f"{case.method} {case.formatted_path} query={case.query!r} body={case.body!r}"[:400]
        if response.status_code >= 500:
            self.server_errors.append(f"{response.status_code} {label}")
            return
        if 400 <= response.status_code < 500:
            try:
                body = json.loads(response.content)
            except ValueError:
                body = None
            if not (
                isinstance(body, dict)
                and set(body) == {"code", "message", "extra"}
                and isinstance(body["code"], str)
                and body["code"]
                and isinstance(body["message"], str)
                and isinstance(body["extra"], dict)
            ):
                self.bad_error_bodies.append(f"{response.status_code} {label} → {body!r}"[:600])


@pytest.fixture
def fuzz_world(sandbox_banks, settings, make_user):
    """A user and a staff user, banks on the sandbox, throttles out of the fuzzer's way."""
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    from users.services import token_pair_for

    rates = dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "100000/min")
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES

    user = make_user(email="anna@example.com")
    staff = make_user(email="ops@example.com", is_staff=True)
    yield {
        "user": user,
        "user_token": token_pair_for(user)["access"],
        "staff_token": token_pair_for(staff)["access"],
    }
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK}
    api_settings.reload()
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES


def _connect_and_sync(user, bank_code: str) -> None:
    from banking.services.connections import (
        connection_demo_client_id_assign,
        connection_get_or_create,
    )
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sync.models import SyncStatus, SyncTrigger
    from users.onboarding.services import bank_connect

    # Who the user is at the bank: the demo client a connect without a client id proposes.
    connection_demo_client_id_assign(
        connection=connection_get_or_create(user=user, bank_code=bank_code)
    )
    for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
        consent = consent_services.consent_ensure(user=user, bank_code=bank_code, kind=kind)
        if consent.status == ConsentStatus.PENDING:
            consent_services.consent_approve_demo(consent=consent)
    result = bank_connect(
        user=user, bank_code=bank_code, trigger=SyncTrigger.USER, already_connected_ok=True
    )
    result.sync_run.refresh_from_db()
    assert result.sync_run.status == SyncStatus.SUCCEEDED, result.sync_run.error


def _own_ids(user) -> dict[str, int]:
    from banking.models import Account, Transaction
    from consents.models import Consent
    from sync.models import SyncRun

    return {
        "account_id": Account.objects.filter(user=user).values_list("pk", flat=True).first(),
        "transaction_id": Transaction.objects.filter(user=user)
        .values_list("pk", flat=True)
        .first(),
        "consent_id": Consent.objects.filter(user=user).values_list("pk", flat=True).first(),
        "sync_run_id": SyncRun.objects.filter(user=user).values_list("pk", flat=True).first(),
        "bank_code": "vbank",
    }


def _fuzz(operation, *, mode, headers: dict, report: FuzzReport, path_parameters=None) -> None:
    from hypothesis import HealthCheck, Phase, given
    from hypothesis import settings as hypothesis_settings
    from hypothesis.errors import Unsatisfiable

    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)

    @hypothesis_settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        report.record(case, case.call(headers=headers))

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid (no parameters, no body): the positive cases cover it.
        report.unsatisfiable.append(f"{mode} {operation.label}")


def test_fuzzing_every_operation_finds_no_5xx_and_only_standard_error_bodies(fuzz_world):
    import schemathesis
    from schemathesis import GenerationMode

    from fintrack.wsgi import application

    _connect_and_sync(fuzz_world["user"], "vbank")  # real objects for the path parameters
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
    operations = [result.ok() for result in schema.get_all_operations()]
    own = {name: value for name, value in _own_ids(fuzz_world["user"]).items() if value is not None}
    report = FuzzReport()

    for operation in operations:
        token = fuzz_world[
            "staff_token" if operation.path.startswith(STAFF_PATHS) else "user_token"
        ]
        headers = {"Authorization": f"Bearer {token}"}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            _fuzz(operation, mode=mode, headers=headers, report=report)
        params = {
            p["name"]: own[p["name"]]
            for p in operation.definition.raw.get("parameters", [])
            if p.get("in") == "path" and p["name"] in own
        }
        if params:
            _fuzz(
                operation,
                mode=GenerationMode.POSITIVE,
                headers=headers,
                report=report,
                path_parameters=params,
            )

    print(
        f"\nfuzz: {len(operations)} operations, {report.cases} cases, "
        f"{len(report.server_errors)} 5xx, statuses {dict(sorted(report.statuses.items()))}"
    )
    assert all(label.startswith("negative") for label in report.unsatisfiable)
    assert len(operations) >= 30
    assert report.cases >= len(operations) * EXAMPLES_PER_OPERATION
    assert report.server_errors == []
    assert report.bad_error_bodies == []
    assert sum(n for status, n in report.statuses.items() if status < 300) > 0


def _schema_operations() -> list[tuple[str, str, list[dict]]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (method.upper(), path, spec.get("parameters", []))
        for path, item in schema["paths"].items()
        for method, spec in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


HOSTILE_VALUES = [
    "\x00",
    "a\x00b",
    "' OR 1=1 --",
    "9" * 400,
    "-1",
    "1e309",
    "NaN",
    "2026-02-30",
    "%",
    "\\",
    "Ω" * 300,
    "<script>alert(1)</script>",
]
HOSTILE_BODIES = [
    ("not json at all", "application/json"),
    ('{"a": ', "application/json"),
    ("[1, 2, 3]", "application/json"),
    ('"just a string"', "application/json"),
    ("null", "application/json"),
    ('{"login": {"$ne": null}, "password": ["x"]}', "application/json"),
    ('{"a": "\\u0000"}', "application/json"),
    ("[" * 5000 + "]" * 5000, "application/json"),
    ("login=a&password=b", "application/x-www-form-urlencoded"),
    ("<xml/>", "application/xml"),
]


def test_hostile_query_and_path_values_get_a_4xx_in_the_standard_shape(fuzz_world):
    from urllib.parse import quote

    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {fuzz_world['staff_token']}")
    report = FuzzReport()
    operations = _schema_operations()
    for value, (method, path, parameters) in itertools.product(HOSTILE_VALUES, operations):
        query = {p["name"]: value for p in parameters if p["in"] == "query"}
        url = path
        for p in parameters:
            if p["in"] == "path":
                url = url.replace("{" + p["name"] + "}", quote(value, safe=""))
        response = getattr(client, method.lower())(url, query if method == "GET" else None)
        if method != "GET" and query:
            response = getattr(client, method.lower())(
                f"{url}?{'&'.join(f'{k}={quote(value)}' for k in query)}", {}, format="json"
            )
        report.record(_Label(method, url, query), response)

    assert report.cases >= len(HOSTILE_VALUES) * len(operations)
    assert report.server_errors == []
    assert report.bad_error_bodies == []


def test_hostile_request_bodies_get_a_4xx_in_the_standard_shape(fuzz_world):
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {fuzz_world['user_token']}")
    report = FuzzReport()
    writes = [op for op in _schema_operations() if op[0] != "GET"]
    for (body, content_type), (method, path, _parameters) in itertools.product(
        HOSTILE_BODIES, writes
    ):
        url = path.replace("{bank_code}", "vbank")
        for name in ("account_id", "transaction_id", "consent_id", "sync_run_id"):
            url = url.replace("{" + name + "}", "1")
        response = getattr(client, method.lower())(url, data=body, content_type=content_type)
        report.record(_Label(method, url, body[:40]), response)

    assert report.cases == len(HOSTILE_BODIES) * len(writes)
    # Operations that read no body ignore it (202/404/409); the others refuse it, never crash.
    assert report.statuses[400] + report.statuses[415] > 0
    assert report.server_errors == []
    assert report.bad_error_bodies == []


@dataclass
class _Label:
    """What FuzzReport prints for a hand-written case."""

    method: str
    formatted_path: str
    query: object
    body: object = None
