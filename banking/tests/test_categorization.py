import json
from decimal import Decimal
from pathlib import Path

import pytest

from banking.categorization import category_cache_clear, category_code_for, category_id_for
from banking.models import TransactionCategory

EXAMPLES = Path("/work/shared/bank-api/examples")


def code_for(description="", mcc="", merchant_category="", amount="-100.00"):
    return category_code_for(
        description=description,
        mcc=mcc,
        merchant_category=merchant_category,
        amount=Decimal(amount),
    )


def test_mcc_code_decides_before_merchant_category_and_description():
    assert code_for(
        description="🎬 Развлечения/Покупки", mcc="5411", merchant_category="retail"
    ) == ("groceries")
    assert code_for(mcc="5814", merchant_category="grocery") == "restaurants"
    assert code_for(mcc="4121") == "transport"
    assert code_for(mcc="5912") == "health"
    assert code_for(mcc="6011") == "cash"
    assert code_for(mcc="7832") == "entertainment"
    assert code_for(mcc="5732") == "shopping"
    assert code_for(mcc="3012") == "transport"  # an airline, by range


def test_merchant_category_decides_when_the_mcc_is_unknown_or_missing():
    assert code_for(
        description="🎬 Развлечения/Покупки", mcc="", merchant_category="restaurant"
    ) == ("restaurants")
    assert code_for(mcc="0000", merchant_category="Gas_Station") == "transport"
    assert code_for(merchant_category="retail") == "shopping"
    assert code_for(merchant_category="pharmacy") == "health"


@pytest.mark.parametrize(
    ("description", "amount", "expected"),
    [
        ("💼 Зарплата", "114911.38", "salary"),
        ("💰 Подработка/Бонус", "15000.00", "other_income"),
        ("🏪 Продукты", "-2731.40", "groceries"),
        ("🚌 Транспорт", "-2707.49", "transport"),
        ("🏠 ЖКХ/Аренда", "-20870.88", "utilities"),
        ("🎬 Развлечения/Покупки", "-1500.00", "entertainment"),
        ("Платеж по кредиту №agr-2f189c66585e", "-3200.00", "loan_payments"),
        ("Перевод между своими счетами", "-5000.00", "transfers"),
        ("Перевод между своими счетами", "5000.00", "transfers"),
        ("Перевод Иванову И.", "-700.00", "transfers"),
        ("Снятие наличных в банкомате", "-3000.00", "cash"),
        ("Комиссия за обслуживание карты", "-99.00", "fees"),
        ("Аптека Ригла", "-640.00", "health"),
        ("Кафе Пушкин", "-2100.00", "restaurants"),
        ("Coffee Like", "-250.00", "restaurants"),
        ("Капитализация процентов", "412.55", "other_income"),
    ],
)
def test_description_keywords_of_the_sandbox_texts(description, amount, expected):
    assert code_for(description=description, amount=amount) == expected


def test_no_rule_gives_other_for_debits_and_other_income_for_credits():
    assert code_for(description="ООО Неизвестно", amount="-10.00") == "other"
    assert code_for(description="ООО Неизвестно", amount="10.00") == "other_income"
    assert code_for(description="", amount="0.00") == "other"


def test_income_keywords_never_make_a_debit_income():
    assert code_for(description="💼 Зарплата", amount="-50000.00") == "other"
    assert code_for(description="💰 Подработка/Бонус", amount="-100.00") == "other"


def test_the_contract_example_transactions_get_their_categories(db):
    items = json.loads((EXAMPLES / "transactions.json").read_text())["data"]["transaction"]
    ids = dict(TransactionCategory.objects.values_list("code", "id"))
    got = []
    for item in items:
        amount = Decimal(item["amount"]["amount"])
        if item["creditDebitIndicator"] == "Debit":
            amount = -amount
        merchant = item["merchant"] or {}
        got.append(
            category_id_for(
                description=item["transactionInformation"],
                mcc=merchant.get("mccCode") or "",
                merchant_category=merchant.get("category") or "",
                amount=amount,
            )
        )
    assert got == [ids["salary"], ids["groceries"], ids["transport"], ids["utilities"]]


def test_category_ids_are_cached_after_one_query(db, django_assert_num_queries):
    category_cache_clear()
    with django_assert_num_queries(1):
        first = category_id_for(description="🏪 Продукты", mcc="", merchant_category="", amount=-1)
    with django_assert_num_queries(0):
        for _ in range(100):
            again = category_id_for(
                description="🏪 Продукты", mcc="", merchant_category="", amount=Decimal("-1")
            )
    assert first == again == TransactionCategory.objects.get(code="groceries").id


def test_a_stale_cache_reloads_when_a_code_is_missing(db):
    category_cache_clear()
    category_id_for(description="", mcc="", merchant_category="", amount=Decimal("-1"))
    from banking import categorization

    categorization._category_ids.pop("salary")
    salary_id = category_id_for(
        description="💼 Зарплата", mcc="", merchant_category="", amount=Decimal("1")
    )
    assert salary_id == TransactionCategory.objects.get(code="salary").id


def test_categorisation_is_deterministic():
    inputs = {"description": "🎬 Развлечения/Покупки", "mcc": "", "merchant_category": ""}
    results = {code_for(**inputs) for _ in range(20)}
    assert results == {"entertainment"}
