from datetime import date
from decimal import Decimal

import pytest

from banking.models import CategoryRule, Transaction, TransactionAggregate
from banking.selectors.category_rules import RuleMatcher, RuleSpec
from banking.services.category_rules import transaction_category_set
from banking.services.transactions import transaction_aggregates_recompute
from banking.tests.factories import at, category, make_account, make_transaction
from banking.textfold import fold, merchant_display_name

pytestmark = pytest.mark.django_db


def purchase(account, merchant, *, day="2025-11-10", amount="-500.00", city="Москва", **extra):
    """A live-style card purchase: "<Merchant> - <City>" with the merchant object's name."""
    fields = {"mcc": "5411", "merchant_category": "grocery", **extra}
    return make_transaction(
        account=account,
        amount=amount,
        booking_date=at(day),
        description=f"{merchant} - {city}",
        merchant_name=merchant,
        **fields,
    )


def state(user):
    """Every row's (id, category code, source, note), and the user's aggregates: what may change."""
    rows = list(
        Transaction.objects.filter(user=user)
        .order_by("id")
        .values_list("id", "category__code", "category_source", "note")
    )
    aggregates = list(
        TransactionAggregate.objects.filter(user=user)
        .order_by("date", "category__code", "currency")
        .values_list("date", "category__code", "income", "spending", "transaction_count")
    )
    return rows, aggregates, list(CategoryRule.objects.filter(user=user).values_list("id"))


def spending_by_category(user, day: date) -> dict[str, Decimal]:
    return dict(
        TransactionAggregate.objects.filter(user=user, date=day).values_list(
            "category__code", "spending"
        )
    )


def codes(user) -> dict[int, tuple[str, str]]:
    return {
        row_id: (code, source)
        for row_id, code, source in Transaction.objects.filter(user=user).values_list(
            "id", "category__code", "category_source"
        )
    }


# --- Folding and matching ------------------------------------------------------------------------


def test_fold_lowercases_folds_yo_and_collapses_spaces():
    assert fold("  Пятёрочка\t  ЭКСПРЕСС ") == "пятерочка экспресс"
    assert fold("") == ""
    assert fold(None) == ""


@pytest.mark.parametrize(
    ("merchant_name", "description", "expected"),
    [
        ("Пятёрочка", "Пятёрочка - Москва", "Пятёрочка"),
        ("Пятёрочка - Москва", "", "Пятёрочка"),
        ("", "Тануки - Новосибирск", "Тануки"),
        ("", "Доход", ""),
        ("", "", ""),
    ],
)
def test_merchant_display_name_drops_the_city(merchant_name, description, expected):
    assert merchant_display_name(merchant_name=merchant_name, description=description) == expected


def test_a_merchant_rule_beats_a_description_rule_and_a_longer_pattern_a_shorter_one():
    matcher = RuleMatcher(
        [
            RuleSpec(rule_id=1, match_kind="description", pattern_folded="москва", category_id=10),
            RuleSpec(rule_id=2, match_kind="merchant", pattern_folded="яндекс", category_id=20),
            RuleSpec(
                rule_id=3, match_kind="merchant", pattern_folded="яндекс такси", category_id=30
            ),
        ]
    )

    def winner(merchant, description):
        spec = matcher.match(merchant_name=merchant, description=description)
        return spec.rule_id if spec else None

    assert winner("Яндекс Такси", "Яндекс Такси - Москва") == 3
    assert winner("Яндекс Маркет", "Яндекс Маркет - Москва") == 2
    assert winner("Тануки", "Тануки - Москва") == 1
    assert winner("Тануки", "Тануки - Казань") is None


# --- PATCH /api/transactions/{id} ----------------------------------------------------------------


def test_patch_sets_the_category_and_note_and_rebuilds_that_days_aggregates(
    auth_client, django_capture_on_commit_callbacks, monkeypatch
):
    user = auth_client.user
    account = make_account(user=user)
    row = purchase(account, "Пятёрочка", amount="-700.00")
    other = purchase(account, "Пятёрочка", amount="-300.00")
    transaction_aggregates_recompute(user=user, since_date=None)
    queued = []
    monkeypatch.setattr(
        "analytics.services.analytics_recompute_request",
        lambda *, user_id: queued.append(user_id),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.patch(
            f"/api/transactions/{row.id}",
            {"category_code": "restaurants", "note": "  обед с коллегами "},
            format="json",
        )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["id"] == row.id
    assert body["category"] == {
        "code": "restaurants",
        "name_en": "Restaurants and cafés",
        "name_ru": "Рестораны и кафе",
    }
    assert (body["category_source"], body["note"]) == ("user", "обед с коллегами")
    assert (body["rule"], body["similar_updated"]) == (None, 0)
    assert codes(user) == {
        row.id: ("restaurants", "user"),
        other.id: ("groceries", "bank_rule"),
    }
    assert Transaction.objects.get(pk=row.id).note == "обед с коллегами"
    assert spending_by_category(user, date(2025, 11, 10)) == {
        "groceries": Decimal("300.00"),
        "restaurants": Decimal("700.00"),
    }
    assert queued == [user.id]
    assert CategoryRule.objects.count() == 0


def test_patch_of_only_the_note_keeps_the_category_and_its_source(auth_client):
    account = make_account(user=auth_client.user)
    row = purchase(account, "Пятёрочка")

    response = auth_client.patch(f"/api/transactions/{row.id}", {"note": "к чаю"}, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["category"]["code"], response.json()["category_source"]) == (
        "groceries",
        "bank_rule",
    )
    assert Transaction.objects.get(pk=row.id).note == "к чаю"


def test_apply_to_similar_makes_a_merchant_rule_and_recategorises_the_merchants_other_rows(
    auth_client,
):
    user = auth_client.user
    account = make_account(user=user)
    row = purchase(account, "Пятёрочка", day="2025-11-20")
    same_elsewhere = purchase(account, "Пятёрочка", day="2025-11-05", city="Казань")
    spelled_with_e = purchase(account, "ПЯТЕРОЧКА", day="2025-11-06")
    no_merchant_object = make_transaction(
        account=account,
        amount="-90.00",
        booking_date=at("2025-11-07"),
        description="Пятёрочка - Тула",
    )
    corrected_before = purchase(account, "Пятёрочка", day="2025-11-08")
    transaction_category_set(user=user, transaction_id=corrected_before.id, category_code="health")
    another_shop = purchase(account, "Магнит", day="2025-11-09")
    transaction_aggregates_recompute(user=user, since_date=None)

    response = auth_client.patch(
        f"/api/transactions/{row.id}",
        {"category_code": "restaurants", "apply_to_similar": True},
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["similar_updated"] == 3
    assert {key: body["rule"][key] for key in ("match", "pattern", "pattern_folded")} == {
        "match": "merchant",
        "pattern": "Пятёрочка",
        "pattern_folded": "пятерочка",
    }
    assert body["rule"]["category"]["code"] == "restaurants"
    assert codes(user) == {
        row.id: ("restaurants", "user"),
        same_elsewhere.id: ("restaurants", "user_rule"),
        spelled_with_e.id: ("restaurants", "user_rule"),
        no_merchant_object.id: ("restaurants", "user_rule"),
        corrected_before.id: ("health", "user"),
        another_shop.id: ("groceries", "bank_rule"),
    }
    # The aggregates followed from the earliest changed day on.
    assert spending_by_category(user, date(2025, 11, 5)) == {"restaurants": Decimal("500.00")}
    assert spending_by_category(user, date(2025, 11, 9)) == {"groceries": Decimal("500.00")}


def test_apply_to_similar_without_a_merchant_makes_a_description_rule(auth_client):
    user = auth_client.user
    account = make_account(user=user)
    trips = [
        make_transaction(
            account=account,
            amount="-45000.00",
            booking_date=at(f"2025-10-{day:02d}"),
            description="Путешествия",
        )
        for day in (3, 17)
    ]
    shop = purchase(account, "OZON", mcc="5999", merchant_category="online_retail")

    response = auth_client.patch(
        f"/api/transactions/{trips[0].id}",
        {"category_code": "entertainment", "apply_to_similar": True},
        format="json",
    )

    assert response.status_code == 200, response.json()
    rule = CategoryRule.objects.get(user=user)
    assert (rule.match_kind, rule.pattern, rule.pattern_folded, rule.category.code) == (
        "description",
        "Путешествия",
        "путешествия",
        "entertainment",
    )
    assert codes(user)[trips[1].id] == ("entertainment", "user_rule")
    assert codes(user)[shop.id] == ("shopping", "bank_rule")


def test_apply_to_similar_twice_updates_the_one_rule(auth_client):
    user = auth_client.user
    account = make_account(user=user)
    first, second = purchase(account, "Тануки"), purchase(account, "Тануки")

    for code in ("restaurants", "entertainment"):
        response = auth_client.patch(
            f"/api/transactions/{first.id}",
            {"category_code": code, "apply_to_similar": True},
            format="json",
        )
        assert response.status_code == 200, response.json()

    assert list(CategoryRule.objects.filter(user=user).values_list("category__code")) == [
        ("entertainment",)
    ]
    assert codes(user)[second.id] == ("entertainment", "user_rule")


def test_patch_with_an_unknown_category_is_400_and_changes_nothing(auth_client):
    user = auth_client.user
    account = make_account(user=user)
    row = purchase(account, "Пятёрочка")
    purchase(account, "Пятёрочка")
    transaction_aggregates_recompute(user=user, since_date=None)
    before = state(user)

    response = auth_client.patch(
        f"/api/transactions/{row.id}",
        {"category_code": "caviar", "note": "x", "apply_to_similar": True},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "unknown_category",
        "message": "category_code: unknown category code 'caviar'.",
        "extra": {"fields": {"category_code": ["Unknown category code."]}},
    }
    assert state(user) == before


def test_patch_of_another_users_transaction_is_404_and_changes_nothing(auth_client, make_user):
    stranger = make_user(email="boris@example.com")
    theirs = purchase(make_account(user=stranger), "Пятёрочка")
    before = state(stranger)

    response = auth_client.patch(
        f"/api/transactions/{theirs.id}",
        {"category_code": "restaurants", "apply_to_similar": True},
        format="json",
    )

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert state(stranger) == before
    assert (
        auth_client.patch("/api/transactions/999999999", {"note": "x"}, format="json").status_code
        == 404
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"apply_to_similar": True}, "apply_to_similar"),
        ({"note": "x", "apply_to_similar": True}, "apply_to_similar"),
        ({"category_code": ""}, "category_code"),
        ({"note": "n" * 1001}, "note"),
    ],
)
def test_patch_with_invalid_input_is_400_and_changes_nothing(auth_client, body, field):
    row = purchase(make_account(user=auth_client.user), "Пятёрочка")
    before = state(auth_client.user)

    response = auth_client.patch(f"/api/transactions/{row.id}", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert list(response.json()["extra"]["fields"]) == [field]
    assert state(auth_client.user) == before


def test_an_empty_patch_changes_nothing_and_answers_the_transaction(auth_client):
    row = purchase(make_account(user=auth_client.user), "Пятёрочка")
    stamp = Transaction.objects.get(pk=row.id).updated_at
    before = state(auth_client.user)

    response = auth_client.patch(f"/api/transactions/{row.id}", {}, format="json")

    assert response.status_code == 200
    assert (response.json()["id"], response.json()["category"]["code"]) == (row.id, "groceries")
    assert state(auth_client.user) == before
    assert Transaction.objects.get(pk=row.id).updated_at == stamp


def test_a_patch_of_another_users_transaction_is_404_whatever_the_body(auth_client, make_user):
    theirs = purchase(make_account(user=make_user(email="boris@example.com")), "Пятёрочка")

    for body in ({}, {"category_code": "caviar"}, {"note": "n" * 5000}):
        response = auth_client.patch(f"/api/transactions/{theirs.id}", body, format="json")
        assert response.status_code == 404


def test_apply_to_similar_with_a_pattern_matching_most_rows_is_400_and_changes_nothing(
    auth_client,
):
    user = auth_client.user
    account = make_account(user=user)
    incomes = [
        make_transaction(
            account=account,
            amount="12000.00",
            booking_date=at(f"2025-10-{day:02d}"),
            description="Доход",
        )
        for day in range(1, 31)
    ]
    for _ in range(5):
        purchase(account, "Пятёрочка")
    before = state(user)

    response = auth_client.patch(
        f"/api/transactions/{incomes[0].id}",
        {"category_code": "other_income", "apply_to_similar": True},
        format="json",
    )

    assert response.status_code == 400
    assert response.json() == {
        "code": "category_rule_too_broad",
        "message": "apply_to_similar: 'доход' matches 30 of your 35 transactions; a rule may cover"
        " at most 50% of them.",
        "extra": {
            "fields": {"apply_to_similar": ["The pattern matches too many of your transactions."]},
            "matched_rows": 30,
            "total_rows": 35,
            "max_share": 0.5,
        },
    }
    assert state(user) == before


def test_apply_to_similar_on_a_row_with_a_short_text_is_400(auth_client):
    row = make_transaction(
        account=make_account(user=auth_client.user),
        amount="-10.00",
        booking_date=at("2025-11-01"),
        description="ЖК",
    )
    before = state(auth_client.user)

    response = auth_client.patch(
        f"/api/transactions/{row.id}",
        {"category_code": "utilities", "apply_to_similar": True},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "category_rule_pattern_invalid"
    assert state(auth_client.user) == before


# --- /api/categories/rules -----------------------------------------------------------------------


def test_creating_a_rule_applies_it_to_past_rows_at_once(
    auth_client, django_capture_on_commit_callbacks, monkeypatch
):
    user = auth_client.user
    account = make_account(user=user)
    rows = [
        purchase(account, "Шоколадница", mcc="", merchant_category="", day=d)
        for d in ("2025-11-02", "2025-11-12")
    ]
    kept = purchase(account, "Магнит", day="2025-11-02")
    transaction_aggregates_recompute(user=user, since_date=None)
    queued = []
    monkeypatch.setattr(
        "analytics.services.analytics_recompute_request",
        lambda *, user_id: queued.append(user_id),
    )

    with django_capture_on_commit_callbacks(execute=True):
        response = auth_client.post(
            "/api/categories/rules",
            {"match": "merchant", "pattern": "  ШОКОЛАДНИЦА ", "category_code": "restaurants"},
            format="json",
        )

    assert response.status_code == 201, response.json()
    body = response.json()
    rule = CategoryRule.objects.get(user=user)
    assert {key: body[key] for key in ("id", "match", "pattern", "pattern_folded")} == {
        "id": rule.id,
        "match": "merchant",
        "pattern": "ШОКОЛАДНИЦА",
        "pattern_folded": "шоколадница",
    }
    assert (body["category"]["code"], body["transactions_updated"]) == ("restaurants", 2)
    assert codes(user) == {
        rows[0].id: ("restaurants", "user_rule"),
        rows[1].id: ("restaurants", "user_rule"),
        kept.id: ("groceries", "bank_rule"),
    }
    assert spending_by_category(user, date(2025, 11, 2)) == {
        "groceries": Decimal("500.00"),
        "restaurants": Decimal("500.00"),
    }
    assert queued == [user.id]


def test_a_rule_leaves_rows_the_user_categorised_alone(auth_client):
    user = auth_client.user
    account = make_account(user=user)
    mine = purchase(account, "ВкусВилл")
    transaction_category_set(user=user, transaction_id=mine.id, category_code="health")

    response = auth_client.post(
        "/api/categories/rules",
        {"match": "description", "pattern": "вкусвилл", "category_code": "restaurants"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["transactions_updated"] == 0
    assert codes(user) == {mine.id: ("health", "user")}


@pytest.mark.parametrize(
    ("pattern", "code"),
    [
        ("", "validation_error"),
        ("   ", "validation_error"),
        ("ab", "category_rule_pattern_invalid"),
        ("a  b", "category_rule_pattern_invalid"),
        ("x" * 256, "validation_error"),
    ],
)
def test_a_rule_with_an_empty_or_short_pattern_is_400_and_nothing_is_stored(
    auth_client, pattern, code
):
    purchase(make_account(user=auth_client.user), "Пятёрочка")
    before = state(auth_client.user)

    response = auth_client.post(
        "/api/categories/rules",
        {"match": "merchant", "pattern": pattern, "category_code": "groceries"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert list(response.json()["extra"]["fields"]) == ["pattern"]
    assert state(auth_client.user) == before


def test_a_rule_with_an_unknown_category_or_match_is_400(auth_client):
    for body, field in (
        ({"match": "merchant", "pattern": "Тануки", "category_code": "caviar"}, "category_code"),
        ({"match": "city", "pattern": "Тануки", "category_code": "restaurants"}, "match"),
    ):
        response = auth_client.post("/api/categories/rules", body, format="json")
        assert response.status_code == 400
        assert list(response.json()["extra"]["fields"]) == [field]
    assert CategoryRule.objects.count() == 0


def test_a_rule_matching_more_than_half_the_rows_is_400(auth_client):
    account = make_account(user=auth_client.user)
    for _ in range(21):
        purchase(account, "Пятёрочка")
    for _ in range(19):
        purchase(account, "Магнит")
    before = state(auth_client.user)

    response = auth_client.post(
        "/api/categories/rules",
        {"match": "description", "pattern": "Москва", "category_code": "groceries"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "category_rule_too_broad"
    assert (response.json()["extra"]["matched_rows"], response.json()["extra"]["total_rows"]) == (
        40,
        40,
    )
    assert state(auth_client.user) == before
    narrower = auth_client.post(
        "/api/categories/rules",
        {"match": "merchant", "pattern": "Пятерочка", "category_code": "restaurants"},
        format="json",
    )
    assert narrower.status_code == 400  # 21 of 40: still more than half
    fine = auth_client.post(
        "/api/categories/rules",
        {"match": "merchant", "pattern": "Магнит", "category_code": "restaurants"},
        format="json",
    )
    assert (fine.status_code, fine.json()["transactions_updated"]) == (201, 19)


def test_a_duplicate_rule_is_409_with_the_existing_rules_id(auth_client):
    first = auth_client.post(
        "/api/categories/rules",
        {"match": "merchant", "pattern": "Пятёрочка", "category_code": "groceries"},
        format="json",
    )

    again = auth_client.post(
        "/api/categories/rules",
        {"match": "merchant", "pattern": "пятерочка", "category_code": "restaurants"},
        format="json",
    )

    assert again.status_code == 409
    assert again.json()["code"] == "category_rule_exists"
    assert again.json()["extra"]["rule_id"] == first.json()["id"]
    assert CategoryRule.objects.get().category.code == "groceries"


def test_the_rule_list_shows_only_the_users_own_rules(auth_client, make_user):
    stranger = make_user(email="boris@example.com")
    CategoryRule.objects.create(
        user=stranger,
        match_kind="merchant",
        pattern="OZON",
        pattern_folded="ozon",
        category=category("shopping"),
    )
    created = auth_client.post(
        "/api/categories/rules",
        {"match": "description", "pattern": "Путешествия", "category_code": "entertainment"},
        format="json",
    ).json()

    body = auth_client.get("/api/categories/rules").json()

    assert [rule["id"] for rule in body["results"]] == [created["id"]]
    assert body["results"][0]["category"]["code"] == "entertainment"


def test_changing_a_rules_pattern_releases_the_rows_it_no_longer_matches(auth_client):
    user = auth_client.user
    account = make_account(user=user)
    taxi = purchase(account, "Яндекс Такси", mcc="4121", merchant_category="taxi")
    market = purchase(account, "Яндекс Маркет", mcc="5999", merchant_category="online_retail")
    rule_id = auth_client.post(
        "/api/categories/rules",
        {"match": "merchant", "pattern": "Яндекс", "category_code": "entertainment"},
        format="json",
    ).json()["id"]
    assert codes(user) == {
        taxi.id: ("entertainment", "user_rule"),
        market.id: ("entertainment", "user_rule"),
    }

    response = auth_client.patch(
        f"/api/categories/rules/{rule_id}",
        {"pattern": "яндекс такси", "category_code": "transport"},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert (response.json()["pattern_folded"], response.json()["transactions_updated"]) == (
        "яндекс такси",
        2,
    )
    assert codes(user) == {
        taxi.id: ("transport", "user_rule"),
        market.id: ("shopping", "bank_rule"),
    }


def test_deleting_a_rule_gives_its_rows_back_to_the_built_in_rules_not_the_users_own(
    auth_client,
):
    user = auth_client.user
    account = make_account(user=user)
    decided, corrected = purchase(account, "Тануки"), purchase(account, "Тануки")
    rule_id = auth_client.post(
        "/api/categories/rules",
        {"match": "merchant", "pattern": "тануки", "category_code": "entertainment"},
        format="json",
    ).json()["id"]
    transaction_category_set(user=user, transaction_id=corrected.id, category_code="health")
    transaction_aggregates_recompute(user=user, since_date=None)

    response = auth_client.delete(f"/api/categories/rules/{rule_id}")

    assert response.status_code == 200, response.json()
    assert response.json() == {"id": rule_id, "transactions_updated": 1}
    assert codes(user) == {decided.id: ("groceries", "bank_rule"), corrected.id: ("health", "user")}
    assert spending_by_category(user, date(2025, 11, 10)) == {
        "groceries": Decimal("500.00"),
        "health": Decimal("500.00"),
    }
    assert CategoryRule.objects.count() == 0


def test_another_users_rule_is_404_and_unchanged(auth_client, make_user):
    stranger = make_user(email="boris@example.com")
    theirs = CategoryRule.objects.create(
        user=stranger,
        match_kind="merchant",
        pattern="OZON",
        pattern_folded="ozon",
        category=category("shopping"),
    )

    patched = auth_client.patch(
        f"/api/categories/rules/{theirs.id}", {"category_code": "health"}, format="json"
    )
    deleted = auth_client.delete(f"/api/categories/rules/{theirs.id}")

    assert (patched.status_code, deleted.status_code) == (404, 404)
    assert patched.json()["code"] == deleted.json()["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.category.code == "shopping"
    assert auth_client.delete(f"/api/categories/rules/{2**63}").status_code == 404


def test_a_rule_change_to_an_existing_pattern_is_409(auth_client):
    def create(pattern):
        return auth_client.post(
            "/api/categories/rules",
            {"match": "merchant", "pattern": pattern, "category_code": "groceries"},
            format="json",
        ).json()["id"]

    create("Магнит")
    second = create("Пятёрочка")

    response = auth_client.patch(
        f"/api/categories/rules/{second}", {"pattern": "МАГНИТ"}, format="json"
    )

    assert response.status_code == 409
    assert CategoryRule.objects.get(pk=second).pattern_folded == "пятерочка"


def test_the_openapi_schema_documents_the_correction_endpoints(auth_client):
    response = auth_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    paths = response.json()["paths"]
    assert set(paths["/api/categories/rules"]) >= {"get", "post"}
    assert set(paths["/api/categories/rules/{rule_id}"]) >= {"patch", "delete"}
    assert set(paths["/api/transactions/{transaction_id}"]) >= {"get", "patch"}
    patch = paths["/api/transactions/{transaction_id}"]["patch"]
    assert patch["operationId"] == "transactions_update"
    assert set(patch["responses"]) >= {"200", "400", "404"}
