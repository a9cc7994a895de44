"""The endpoint matrix, built from the OpenAPI schema so a new endpoint is covered the day it lands:
no usable token → 401, staff-only → 403 for users, another user's object → 404 (and untouched),
no list leaks another user's rows, and login brute force is throttled per client address."""

import io
import zipfile
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.urls import resolve
from rest_framework.permissions import IsAdminUser
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from audit.models import AuditEvent
from banking.models import CategoryRule
from banking.tests.factories import make_account, make_agreement, make_connection, make_transaction
from consents.models import Consent, ConsentKind, ConsentStatus
from sync.models import SyncRun, SyncStatus
from users.models import ConnectRequest
from users.services import token_pair_for

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Deliberately public; a new public operation must be added here on purpose.
PUBLIC = {
    ("GET", "/api/health"),
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/register"),
    ("POST", "/api/auth/refresh"),
}
STAFF_ONLY = {("GET", "/api/admin/raw-logs")}
# Path parameters that name a per-user object (the matrix checks each for ownership)…
OBJECT_PARAMS = {
    "account_id",
    "transaction_id",
    "consent_id",
    "sync_run_id",
    "rule_id",
    "connect_request_id",
}
# …and those that do not (a bank code selects the caller's own connection).
NON_OBJECT_PARAMS = {"bank_code": "vbank"}
VICTIM_MARKER = "VICTIM-7f3a"


@dataclass(frozen=True)
class Operation:
    method: str
    template: str
    path_params: tuple[str, ...]
    public: bool

    def __str__(self) -> str:
        return f"{self.method} {self.template}"

    def url(self, **values) -> str:
        url = self.template
        for name in self.path_params:
            url = url.replace("{" + name + "}", str(values.get(name, NON_OBJECT_PARAMS.get(name))))
        return url


def _operations() -> list[Operation]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for template, item in schema["paths"].items():
        for method, spec in item.items():
            if method not in HTTP_METHODS:
                continue
            security = spec.get("security")
            public = not security or {} in security
            params = tuple(p["name"] for p in spec.get("parameters", []) if p["in"] == "path")
            operations.append(Operation(method.upper(), template, params, public))
    return operations


OPERATIONS = _operations()
PROTECTED = [op for op in OPERATIONS if not op.public]
WITH_OBJECT = [op for op in OPERATIONS if OBJECT_PARAMS & set(op.path_params)]


def _call(client: APIClient, op: Operation, url: str | None = None, **headers):
    url = url or op.url(**dict.fromkeys(OBJECT_PARAMS, 1))
    return getattr(client, op.method.lower())(url, {} if op.method != "GET" else None,
                                              format="json" if op.method != "GET" else None,
                                              **headers)  # fmt: skip


def _assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"code", "message", "extra"}, body
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["code"] == code, body
    return body


def _is_staff_only(op: Operation) -> bool:
    match = resolve(op.url(**dict.fromkeys(OBJECT_PARAMS, 1)))
    view_class = getattr(match.func, "view_class", None) or getattr(match.func, "cls", None)
    return any(
        issubclass(permission, IsAdminUser)
        for permission in getattr(view_class, "permission_classes", [])
    )


# --- The matrix covers everything ---------------------------------------------------------------


def test_the_schema_lists_every_api_route_and_the_matrix_knows_every_path_parameter():
    assert len(OPERATIONS) >= 30
    assert {(op.method, op.template) for op in OPERATIONS if op.public} == PUBLIC
    assert {(op.method, op.template) for op in OPERATIONS if _is_staff_only(op)} == STAFF_ONLY
    params = {name for op in OPERATIONS for name in op.path_params}
    assert params <= OBJECT_PARAMS | set(NON_OBJECT_PARAMS), params
    assert {name for op in WITH_OBJECT for name in op.path_params} >= OBJECT_PARAMS


# --- 401 for every protected operation ----------------------------------------------------------


def _expired_access(user) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-timedelta(seconds=1))
    return str(token)


def _forged_access(user) -> str:
    """A well-formed token with a valid-looking payload, signed with another key."""
    import jwt

    payload = dict(AccessToken.for_user(user).payload)
    return jwt.encode(payload, "not-the-server-key-" * 3, algorithm="HS256")


def _unsigned_access(user) -> str:
    import jwt

    return jwt.encode(dict(AccessToken.for_user(user).payload), None, algorithm="none")


BAD_CREDENTIALS = {
    "no token": lambda user: None,
    "expired access token": _expired_access,
    "refresh token as access": lambda user: str(RefreshToken.for_user(user)),
    "garbage token": lambda user: "not.a.jwt",
    "forged signature": _forged_access,
    "alg none": _unsigned_access,
    "basic scheme": lambda user: ("Basic", "YW5uYTpwYXNz"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("credential", list(BAD_CREDENTIALS))
@pytest.mark.parametrize("op", PROTECTED, ids=str)
def test_protected_operation_refuses_a_missing_or_bad_token_with_401(op, credential, make_user):
    user = make_user(email="anna@example.com")
    token = BAD_CREDENTIALS[credential](user)
    client = APIClient()
    if isinstance(token, tuple):
        client.credentials(HTTP_AUTHORIZATION=f"{token[0]} {token[1]}")
    elif token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = _call(client, op)

    _assert_error(response, 401, "not_authenticated")
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("op", PROTECTED, ids=str)
def test_a_deleted_or_deactivated_users_token_is_401(op, make_user):
    gone = make_user(email="gone@example.com")
    inactive = make_user(email="inactive@example.com")
    gone_token = token_pair_for(gone)["access"]
    inactive_token = token_pair_for(inactive)["access"]
    gone.delete()
    inactive.is_active = False
    inactive.save(update_fields=["is_active"])

    for token in (gone_token, inactive_token):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        _assert_error(_call(client, op), 401)


# --- 403 for staff-only operations ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("op", [op for op in OPERATIONS if (op.method, op.template) in STAFF_ONLY])
def test_staff_only_operation_is_403_for_a_user_and_open_to_staff(op, make_user):
    user_client, staff_client = APIClient(), APIClient()
    user_client.force_authenticate(make_user(email="anna@example.com"))
    staff_client.force_authenticate(make_user(email="ops@example.com", is_staff=True))

    _assert_error(_call(user_client, op), 403, "permission_denied")
    assert _call(staff_client, op).status_code == 200


# --- Another user's objects --------------------------------------------------------------------


def _victim_objects(victim) -> dict[str, object]:
    """One object of each kind the API addresses by id, all belonging to `victim`."""
    account = make_account(user=victim, bank_account_id=f"acc-{VICTIM_MARKER}")
    transaction = make_transaction(
        account=account,
        amount="-1234.56",
        booking_date="2026-01-10",
        description=f"Payment {VICTIM_MARKER}",
        bank_transaction_id=f"tx-{VICTIM_MARKER}",
    )
    # Pending without a request id: approve-demo and revoke answer without calling a bank.
    consent = Consent.objects.create(
        user=victim,
        bank_code="vbank",
        kind=ConsentKind.ACCOUNTS,
        status=ConsentStatus.PENDING,
        status_reason=VICTIM_MARKER,
    )
    run = SyncRun.objects.create(
        connection=make_connection(user=victim),
        user=victim,
        status=SyncStatus.FAILED,
        error=f"failed {VICTIM_MARKER}",
    )
    make_agreement(user=victim, agreement_id=f"agr-{VICTIM_MARKER}", linked_account=account)
    rule = CategoryRule.objects.create(
        user=victim,
        match_kind="description",
        pattern=VICTIM_MARKER,
        pattern_folded=VICTIM_MARKER.lower(),
        category=transaction.category,
    )
    connect_request = ConnectRequest.objects.create(
        user=victim,
        bank_code="vbank",
        kind=ConnectRequest.Kind.RENEW,
        status=ConnectRequest.Status.FAILED,
        error=f"failed {VICTIM_MARKER}",
    )
    return {
        "account_id": account,
        "transaction_id": transaction,
        "consent_id": consent,
        "sync_run_id": run,
        "rule_id": rule,
        "connect_request_id": connect_request,
    }


def _state(objects: dict) -> dict:
    """Every field of every victim object, to prove an attacker's request changed nothing."""
    from django.forms.models import model_to_dict

    state = {}
    for name, obj in objects.items():
        fresh = type(obj).objects.get(pk=obj.pk)
        state[name] = {**model_to_dict(fresh), "updated": getattr(fresh, "updated_at", None)}
    return state


@pytest.mark.django_db
@pytest.mark.parametrize("op", WITH_OBJECT, ids=str)
def test_another_users_object_is_404_and_left_untouched(op, make_user):
    victim = make_user(email="victim@example.com")
    attacker = make_user(email="mallory@example.com")
    make_account(user=attacker)  # the attacker has data of their own
    objects = _victim_objects(victim)
    ids = {name: obj.pk for name, obj in objects.items()}
    before = _state(objects)
    events_before = AuditEvent.objects.count()
    attacker_client, victim_client = APIClient(), APIClient()
    attacker_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(attacker)['access']}")
    victim_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(victim)['access']}")

    response = _call(attacker_client, op, url=op.url(**ids))

    body = _assert_error(response, 404)
    assert body["code"].endswith("not_found")
    assert VICTIM_MARKER not in str(body)
    # Exactly the answer for an id that exists nowhere: no way to probe for others' ids.
    missing = op.url(**{name: pk + 10_000 for name, pk in ids.items()})
    other = _assert_error(_call(attacker_client, op, url=missing), 404)
    assert (other["code"], other["message"]) == (body["code"], body["message"])
    assert _state(objects) == before
    assert AuditEvent.objects.count() == events_before
    # The same URL works for its owner: the 404 above is about ownership, not a bad URL.
    assert _call(victim_client, op, url=op.url(**ids)).status_code in (200, 409)


@pytest.mark.django_db
@pytest.mark.parametrize(
    "op",
    [op for op in PROTECTED if op.method == "GET" and (op.method, op.template) not in STAFF_ONLY],
    ids=str,
)
def test_no_read_shows_another_users_data(op, make_user):
    victim = make_user(email="victim@example.com")
    attacker = make_user(email="mallory@example.com")
    attacker_account = make_account(user=attacker, bank_code="vbank")
    make_transaction(account=attacker_account, amount="-10.00", booking_date="2026-01-10")
    _victim_objects(victim)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_pair_for(attacker)['access']}")

    response = client.get(op.url(**dict.fromkeys(OBJECT_PARAMS, 1)))

    assert response.status_code < 500
    body = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Type") == "application/zip":  # the data export: read its files
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            body = b"\n".join(archive.read(name) for name in archive.namelist())
    text = body.decode()
    assert VICTIM_MARKER not in text
    assert "victim@example.com" not in text


# --- Brute force --------------------------------------------------------------------------------


def _login_rate() -> int:
    from django.conf import settings

    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["login"]
    count, period = rate.split("/")
    assert period.startswith("m"), rate
    return int(count)


@pytest.mark.django_db
def test_login_is_throttled_per_address_across_identifiers(api_client, make_user):
    make_user(email="anna@example.com", password="Correct-Horse-2026")
    allowed = _login_rate()
    statuses = [
        api_client.post(
            "/api/auth/login", {"login": f"user{n}@example.com", "password": "bad"}, format="json"
        ).status_code
        for n in range(allowed)
    ]

    blocked = api_client.post(
        "/api/auth/login",
        {"login": "anna@example.com", "password": "Correct-Horse-2026"},
        format="json",
    )

    assert statuses == [401] * allowed
    body = _assert_error(blocked, 429, "throttled")
    assert body["extra"]["retry_after_seconds"] > 0


@pytest.mark.django_db
def test_a_forged_forwarded_for_header_does_not_reset_the_login_throttle(api_client, make_user):
    make_user(email="anna@example.com", password="Correct-Horse-2026")
    allowed = _login_rate()
    statuses = [
        api_client.post(
            "/api/auth/login",
            {"login": "anna@example.com", "password": f"guess-{n}"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"203.0.113.{n}",
        ).status_code
        for n in range(allowed + 5)
    ]

    assert statuses == [401] * allowed + [429] * 5


@pytest.mark.django_db
def test_registration_is_throttled_too(api_client):
    from django.conf import settings

    allowed = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["register"].split("/")[0])
    statuses = [
        api_client.post(
            "/api/auth/register",
            {"email": f"new{n}@example.com", "password": "short"},
            format="json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        ).status_code
        for n in range(allowed + 1)
    ]

    assert statuses == [400] * allowed + [429]
