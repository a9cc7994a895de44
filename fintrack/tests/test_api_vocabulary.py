"""One API vocabulary (issue 24): one name per concept on every endpoint, money as a string with
two decimals and its currency, timestamps in UTC with `Z`, filters named like the fields they
filter and validated alike.

(a) walks the generated OpenAPI schema (components, inline objects, parameters) for a forbidden
synonym or a second name of one concept; (b) drives every GET operation of the schema for a
user with synced sandbox data (and a staff user for the staff API) and checks each JSON answer,
recursively, against the schema: no undocumented key, no documented required key missing, money
`^-?\\d+\\.\\d{2}$`, date-times ending in `Z`, dates `YYYY-MM-DD`, enum values listed."""

import csv
import io
import re
import zipfile
from collections.abc import Iterator

import pytest

MONEY = re.compile(r"^-?\d+\.\d{2}$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# Any text that reads as a timestamp, also inside free-form JSON (the analytics breakdown).
DATETIME_LIKE = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
# A money pattern drf-spectacular derives from a DecimalField with two decimal places.
TWO_PLACES = re.compile(r"\\\.\\d\{(0,)?2\}\)?\??\$$")

# A name that must not appear, anywhere (property, parameter, request or response), and the name
# the concept has instead.
FORBIDDEN = {
    "bank": "bank_code",
    "merchant": "merchant_name",
    "category__code": "category_code",
    "category__name_en": "category_name_en",
    "category__name_ru": "category_name_ru",
    "category_name": "category_name_en / category_name_ru",
    "rate": "interest_rate",
    "current_balance": "balance",
    "spendable": "spendable_total",
    # Bank-side ids are bank_<thing>_id; ours are <thing>_id (and an object's own `id`).
    "agreement_id": "bank_agreement_id",
    "product_id": "bank_product_id",
    "request_id": "bank_request_id",
}


def _is_decimal(schema: dict) -> bool:
    return schema.get("format") == "decimal"


def _is_integer(schema: dict) -> bool:
    return schema.get("type") == "integer"


def _is_string(schema: dict) -> bool:
    return schema.get("type") == "string" and "format" not in schema


# A name that is forbidden only with this type (the same word names an object elsewhere: the
# dashboard's `savings` and `debt` objects, a transaction's `category` object).
FORBIDDEN_TYPED = [
    ("category", _is_string, "category_code (a code; `category` is the {code, name_en, name_ru})"),
    ("accounts", _is_integer, "accounts_count"),
    ("agreements", _is_integer, "agreements_count"),
    ("savings", _is_decimal, "savings_total"),
    ("debt", _is_decimal, "debt_total"),
]
# An object with these properties is an account, an agreement's payment, …: one name inside.
FORBIDDEN_IN_OBJECTS_WITH = [
    ("masked_number", "type", "account_type"),
    ("masked_number", "current_balance", "balance"),
]
# Query parameters that do not name a field of the answer (ranges, paging, free text).
CONTROL_PARAMETERS = {
    "from",
    "to",
    "period",
    "cursor",
    "page_size",
    "limit",
    "ordering",
    "search",
    "amount_min",
    "amount_max",
    "direction",
    "since",
    "wait",
}
# The bank's own bytes, shown as stored (the staff raw-log API): not in our vocabulary.
VERBATIM = {("RawLogOutput", "payload"), ("RawLogOutput", "headers")}


def _schema() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def _objects(node, where: str) -> Iterator[tuple[str, dict]]:
    """Every object schema with properties inside `node`, with where it is."""
    if isinstance(node, dict):
        if isinstance(node.get("properties"), dict):
            yield where, node
        for key, value in node.items():
            yield from _objects(value, f"{where}.{key}" if key != "properties" else where)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _objects(value, f"{where}[{index}]")


def _resolve(schema: dict, node: dict) -> dict:
    while isinstance(node, dict) and "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if isinstance(node, dict) and "allOf" in node and len(node["allOf"]) == 1:
        merged = {**_resolve(schema, node["allOf"][0]), **node}
        merged.pop("allOf")
        return merged
    return node


def _vocabulary_errors(schema: dict) -> list[str]:
    errors = []
    names: dict[str, set[str]] = {}
    for where, obj in _objects(schema["components"]["schemas"], "#"):
        properties = {n: _resolve(schema, p) for n, p in obj["properties"].items()}
        for name, prop in properties.items():
            names.setdefault(name, set()).add(where)
            if name in FORBIDDEN:
                errors.append(f"{where}.{name}: call it {FORBIDDEN[name]}")
            for forbidden, is_type, instead in FORBIDDEN_TYPED:
                if name == forbidden and is_type(prop):
                    errors.append(f"{where}.{name}: call it {instead}")
            if name.endswith("_at") and prop.get("format") != "date-time":
                errors.append(f"{where}.{name}: a timestamp must be format date-time")
        for marker, name, instead in FORBIDDEN_IN_OBJECTS_WITH:
            if marker in properties and name in properties:
                errors.append(f"{where}.{name}: call it {instead}")
        money = [n for n, p in properties.items() if _is_decimal(p) and _money_schema(p)]
        if money and "currency" not in properties:
            errors.append(f"{where}: money ({', '.join(money)}) without its currency")
        if "booking_date" in properties and "local_date" not in properties:
            errors.append(f"{where}: booking_date without local_date (the user's day)")
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                name = parameter["name"]
                names.setdefault(name, set()).add(f"{method.upper()} {path}")
                if name in FORBIDDEN:
                    errors.append(f"{method.upper()} {path} ?{name}: call it {FORBIDDEN[name]}")
                if name == "category" and parameter["in"] == "query":
                    errors.append(f"{method.upper()} {path} ?category: call it category_code")
                if name == "bank_code" and not _resolve(schema, parameter["schema"]).get("enum"):
                    errors.append(f"{method.upper()} {path} {name}: list the bank codes (enum)")
    # Two spellings of one name (category__code next to category_code).
    for name in names:
        other = name.replace("__", "_")
        if other != name and other in names:
            errors.append(f"{name} and {other}: two names for one concept")
    return errors


def _money_schema(prop: dict) -> bool:
    return bool(TWO_PLACES.search(prop.get("pattern", "")))


def _answer_names(schema: dict, node, prefix: str = "", depth: int = 0) -> set[str]:
    """Every property name reachable in an answer, nested ones also joined (category_code)."""
    node = _resolve(schema, node) if isinstance(node, dict) else node
    if not isinstance(node, dict) or depth > 6:
        return set()
    names = set()
    if node.get("type") == "array" or "items" in node:
        return _answer_names(schema, node.get("items", {}), prefix, depth + 1)
    for name, prop in (node.get("properties") or {}).items():
        names.add(name)
        if prefix:
            names.add(f"{prefix}_{name}")
        names |= _answer_names(schema, prop, name, depth + 1)
    return names


def _filter_name_errors(schema: dict) -> list[str]:
    """A filter is named like the field it filters (?bank_code= filters bank_code)."""
    errors = []
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if operation is None:
            continue
        answer = operation["responses"].get("200", {}).get("content", {})
        json_answer = answer.get("application/json", {}).get("schema")
        if json_answer is None:
            # The CSV export filters like the feed: check against the feed's answer.
            feed = schema["paths"].get(path.rsplit("/", 1)[0], {}).get("get")
            if feed is None:
                continue
            json_answer = feed["responses"]["200"]["content"]["application/json"]["schema"]
        fields = _answer_names(schema, json_answer)
        for parameter in operation.get("parameters", []):
            name = parameter["name"]
            if parameter["in"] == "query" and name not in CONTROL_PARAMETERS | fields:
                errors.append(f"GET {path} ?{name}: no field of the answer is called so")
    return errors


def test_the_schema_has_one_name_per_concept():
    errors = _vocabulary_errors(_schema())
    assert not errors, f"{len(errors)} naming problems:\n" + "\n".join(sorted(set(errors)))


def test_every_filter_is_named_like_the_field_it_filters():
    errors = _filter_name_errors(_schema())
    assert not errors, "\n".join(sorted(set(errors)))


def test_the_schema_says_money_has_two_decimals_and_unknown_parameters_are_ignored():
    schema = _schema()
    assert "ignored" in schema["info"]["description"]
    patterns = {
        p.get("pattern")
        for _where, obj in _objects(schema["components"]["schemas"], "#")
        for p in obj["properties"].values()
        if _is_decimal(p) and _money_schema(p)
    }
    assert patterns == {r"^-?\d{1,16}\.\d{2}$"}, patterns


def test_the_vocabulary_check_catches_what_the_review_found():
    """The walk is not vacuous: the synonyms the review found are caught in a schema that has
    them."""
    broken = {
        "info": {},
        "components": {
            "schemas": {
                "A": {"properties": {"bank": {"type": "string"}}},
                "B": {"properties": {"category__code": {"type": "string"}}},
                "C": {"properties": {"category_code": {"type": "string"}}},
                "D": {
                    "properties": {
                        "rate": {"type": "string", "format": "decimal"},
                        "amount": {
                            "type": "string",
                            "format": "decimal",
                            "pattern": r"^-?\d{0,16}(?:\.\d{0,2})?$",
                        },
                    }
                },
            }
        },
        "paths": {"/x": {"get": {"parameters": [{"name": "merchant", "in": "query"}]}}},
    }
    text = "\n".join(_vocabulary_errors(broken))
    for expected in (
        "A.bank: call it bank_code",
        "B.category__code",
        "category__code and category_code",
        "D.rate: call it interest_rate",
        "D: money (amount) without its currency",
        "?merchant: call it merchant_name",
    ):
        assert expected in text, (expected, text)


# --- (b) Every GET answer against the schema --------------------------------------------------


class AnswerChecker:
    """Checks one JSON answer against its schema, collecting every problem and what it saw."""

    def __init__(self, schema: dict):
        self.schema = schema
        self.errors: list[str] = []
        self.seen: set[str] = set()  # components that held data

    def check(self, value, node: dict, where: str) -> None:
        component = None
        if "$ref" in node:
            component = node["$ref"].rsplit("/", 1)[1]
            self.seen.add(component)
        node = _resolve(self.schema, node)
        if value is None:
            if not node.get("nullable") and node.get("type") is not None:
                self.errors.append(f"{where}: null, the schema says it is not nullable")
            return
        for key in ("oneOf", "anyOf"):
            if key in node:
                self._check_alternatives(value, node[key], where)
                return
        kind = node.get("type")
        if isinstance(value, dict):
            self._check_object(value, node, where, component)
        elif isinstance(value, list):
            if kind not in (None, "array"):
                self.errors.append(f"{where}: a list, the schema says {kind}")
            for index, item in enumerate(value[:50]):
                self.check(item, node.get("items", {}), f"{where}[{index}]")
        elif isinstance(value, str):
            self._check_string(value, node, where)
        elif isinstance(value, bool):
            if kind not in (None, "boolean"):
                self.errors.append(f"{where}: a boolean, the schema says {kind}")
        elif isinstance(value, int | float) and kind not in (None, "integer", "number"):
            self.errors.append(f"{where}: a number {value!r}, the schema says {kind}")
        if "enum" in node and value not in node["enum"]:
            self.errors.append(f"{where}: {value!r} is not one of {node['enum']}")

    def _check_alternatives(self, value, alternatives: list[dict], where: str) -> None:
        for alternative in alternatives:
            trial = AnswerChecker(self.schema)
            trial.check(value, alternative, where)
            if not trial.errors:
                self.seen |= trial.seen
                return
        self.errors.append(f"{where}: matches none of its alternatives")

    def _check_object(self, value: dict, node: dict, where: str, component: str | None) -> None:
        properties = node.get("properties")
        if properties is None:
            if node.get("type") not in (None, "object"):
                self.errors.append(f"{where}: an object, the schema says {node.get('type')}")
            # Free-form JSON (the breakdown): only timestamps can be checked.
            self._check_free_form(value, where)
            return
        for key, item in value.items():
            if key not in properties:
                self.errors.append(f"{where}.{key}: undocumented field")
            elif (component, key) not in VERBATIM:
                self.check(item, properties[key], f"{where}.{key}")
        for key in node.get("required", []):
            if key not in value:
                self.errors.append(f"{where}.{key}: documented as required, missing")

    def _check_free_form(self, value, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                self._check_free_form(item, f"{where}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value[:50]):
                self._check_free_form(item, f"{where}[{index}]")
        elif isinstance(value, str) and DATETIME_LIKE.match(value) and not UTC_Z.match(value):
            self.errors.append(f"{where}: {value!r} is not a UTC time with Z")

    def _check_string(self, value: str, node: dict, where: str) -> None:
        kind, fmt = node.get("type"), node.get("format")
        if kind not in (None, "string"):
            self.errors.append(f"{where}: a string {value!r}, the schema says {kind}")
        if fmt == "date-time" and not UTC_Z.match(value):
            self.errors.append(f"{where}: {value!r} is not a UTC time with Z")
        elif fmt == "date" and not DATE.match(value):
            self.errors.append(f"{where}: {value!r} is not YYYY-MM-DD")
        elif fmt == "decimal" and _money_schema(node) and not MONEY.match(value):
            self.errors.append(f"{where}: money {value!r} without exactly two decimals")
        elif fmt == "decimal" and "pattern" in node and not re.match(node["pattern"], value):
            self.errors.append(f"{where}: {value!r} does not match {node['pattern']}")
        elif fmt is None and DATETIME_LIKE.match(value) and not UTC_Z.match(value):
            self.errors.append(f"{where}: {value!r} reads as a time but is not UTC with Z")


def _synced_world(make_user):
    """Sandbox client team260-1 (salary, a mortgage) synced at every bank, analytics computed,
    a category rule of theirs; and a staff user for the raw-log API."""
    from analytics import services as analytics_services
    from banking.models import Account, Transaction
    from banking.services.category_rules import category_rule_create
    from banking.services.connections import connection_get_or_create
    from consents import services as consent_services
    from consents.models import ConsentKind, ConsentStatus
    from sync.models import SyncRun, SyncStatus, SyncTrigger
    from sync.services import sync_run_execute
    from users.services import token_pair_for

    user = make_user(email="vocabulary@example.com", client_id="team260-1")
    staff = make_user(email="ops@example.com", is_staff=True)
    for bank in ("vbank", "abank", "sbank"):
        for kind in (ConsentKind.ACCOUNTS, ConsentKind.PRODUCTS):
            consent = consent_services.consent_ensure(user=user, bank_code=bank, kind=kind)
            if consent.status == ConsentStatus.PENDING:
                consent_services.consent_approve_demo(consent=consent)
        connection = connection_get_or_create(user=user, bank_code=bank)
        run = SyncRun.objects.create(
            connection=connection, user_id=user.id, trigger=SyncTrigger.USER
        )
        sync_run_execute(sync_run_id=run.pk)
        run.refresh_from_db()
        assert run.status in (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL), run.error
    category_rule_create(
        user=user, match_kind="description", pattern="Кофейня у дома", category_code="transfers"
    )
    analytics_services.analytics_recompute(user=user)
    from users.models import ConnectRequest

    renewal = ConnectRequest.objects.create(
        user=user, bank_code="vbank", kind=ConnectRequest.Kind.RENEW
    )
    return {
        "user": token_pair_for(user)["access"],
        "staff": token_pair_for(staff)["access"],
        "ids": {
            "account_id": Account.objects.filter(user=user).order_by("id").first().id,
            "transaction_id": Transaction.objects.filter(user=user).order_by("id").first().id,
            "sync_run_id": SyncRun.objects.filter(user=user).order_by("id").first().id,
            "connect_request_id": renewal.id,
            "bank_code": "vbank",
        },
    }


def _get_operations(schema: dict) -> list[tuple[str, dict]]:
    return [(path, item["get"]) for path, item in sorted(schema["paths"].items()) if "get" in item]


def _url(path: str, ids: dict) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", str(value))
    assert "{" not in path, path
    return path


def _csv_header_errors(header: list[str], where: str) -> list[str]:
    return [
        f"{where} column {name}: call it {FORBIDDEN[name]}" for name in header if name in FORBIDDEN
    ]


@pytest.mark.django_db(transaction=True)
def test_every_get_answer_matches_the_schema_for_synced_data(sandbox_banks, make_user):
    from django.test import Client

    world = _synced_world(make_user)
    schema = _schema()
    checker = AnswerChecker(schema)
    client = Client()
    walked = []
    for path, operation in _get_operations(schema):
        token = world["staff"] if path.startswith("/api/admin/") else world["user"]
        url = _url(path, world["ids"])
        response = client.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
        walked.append(path)
        content = operation["responses"]["200"]["content"]
        if "application/json" in content:
            checker.check(response.json(), content["application/json"]["schema"], f"GET {path}")
        elif "text/csv" in content:
            body = b"".join(response.streaming_content).decode("utf-8-sig")
            header = next(csv.reader(io.StringIO(body)))
            checker.errors += _csv_header_errors(header, f"GET {path}")
        else:
            archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
            text = archive.read("transactions.csv").decode("utf-8-sig")
            header = next(csv.reader(io.StringIO(text)))
            checker.errors += _csv_header_errors(header, f"GET {path} transactions.csv")
    # Every GET of the schema was walked, and the walk saw real data in the main shapes.
    assert len(walked) == len(_get_operations(schema)) >= 20
    expected_seen = {
        "Dashboard",
        "DashboardTransaction",
        "DashboardAccount",
        "TopCategory",
        "NextPayment",
        "TransactionOutput",
        "AccountOutput",
        "DebtOutput",
        "SyncRun",
        "Consent",
        "BankStatus",
        "RawLogOutput",
        "SummaryCurrencyOutput",
    }
    missing = {name for name in expected_seen if not any(s.startswith(name) for s in checker.seen)}
    assert not missing, f"the walk saw no data in {missing}; seen: {sorted(checker.seen)}"
    errors = sorted(set(checker.errors))
    assert not errors, f"{len(errors)} problems:\n" + "\n".join(errors[:200])


# --- (c) Every filter validated alike ----------------------------------------------------------


def _bad_value(schema: dict, parameter: dict) -> str | None:
    """A value the parameter's schema rules out, or None when the schema rules out nothing."""
    spec = _resolve(schema, parameter.get("schema", {}))
    if spec.get("enum"):
        return "no-such-value"
    if spec.get("format") == "date":
        return "2025-13-45"
    if spec.get("type") in ("integer", "number") or spec.get("format") == "decimal":
        return "twelve"
    return None


@pytest.mark.django_db
def test_a_bad_filter_value_is_a_400_naming_the_field_on_every_endpoint(make_user):
    """An unknown bank code, enum value, bad date or number: 400 validation_error with the
    parameter in extra.fields, never an empty 200 (sync runs, consents, raw logs, products …)."""
    from django.test import Client

    from banking.tests.factories import make_account, make_connection, make_transaction
    from sync.models import SyncRun
    from users.services import token_pair_for

    user = make_user(email="filters@example.com")
    staff = make_user(email="ops@example.com", is_staff=True)
    connection = make_connection(user=user)
    account = make_account(user=user, connection=connection)
    transaction = make_transaction(account=account, amount="-1.00", booking_date="2026-11-30")
    run = SyncRun.objects.create(connection=connection, user_id=user.id)
    ids = {
        "account_id": account.id,
        "transaction_id": transaction.id,
        "sync_run_id": run.id,
        "bank_code": "vbank",
    }
    schema = _schema()
    client = Client()
    checked, failures = [], []
    for path, operation in _get_operations(schema):
        token = token_pair_for(staff if path.startswith("/api/admin/") else user)["access"]
        for parameter in operation.get("parameters", []):
            value = _bad_value(schema, parameter)
            if parameter["in"] != "query" or value is None:
                continue
            name = parameter["name"]
            response = client.get(
                _url(path, ids), {name: value}, HTTP_AUTHORIZATION=f"Bearer {token}"
            )
            checked.append(f"{path}?{name}")
            body = response.json() if response["Content-Type"].startswith("application/") else {}
            body = body if isinstance(body, dict) else {"answer": body}
            fields = (body.get("extra") or {}).get("fields") or {}
            if response.status_code != 400 or body.get("code") != "validation_error":
                failures.append(f"GET {path}?{name}={value}: {response.status_code} {body}")
            elif name not in fields:
                failures.append(f"GET {path}?{name}={value}: the error names {sorted(fields)}")
    assert not failures, "\n".join(failures)
    for expected in (
        "/api/sync-runs?bank_code",
        "/api/consents?bank_code",
        "/api/consents?kind",
        "/api/admin/raw-logs?bank_code",
        "/api/products?bank_code",
        "/api/transactions?bank_code",
        "/api/transactions?from",
    ):
        assert expected in checked, (expected, checked)


# --- (d) The Swagger examples speak the vocabulary -------------------------------------------


def test_every_example_in_the_schema_matches_its_schema():
    """Swagger's examples are what a frontend copies: each is checked like a real answer."""
    schema = _schema()
    checker = AnswerChecker(schema)
    examples = 0
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            bodies = [("request", operation.get("requestBody", {}).get("content", {}))]
            bodies += [(code, r.get("content", {})) for code, r in operation["responses"].items()]
            for where, content in bodies:
                for spec in content.values():
                    for name, example in (spec.get("examples") or {}).items():
                        examples += 1
                        checker.check(
                            example["value"],
                            spec["schema"],
                            f"{method.upper()} {path} {where} example {name!r}",
                        )
    for operation_id in ("dashboard", "transactions_list", "accounts_list", "debts_list"):
        assert operation_id in str(schema["paths"]), operation_id
    assert examples >= 8
    errors = sorted(set(checker.errors))
    assert not errors, "\n".join(errors)
