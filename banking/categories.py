"""The seeded transaction categories: code, English and Russian names, kind, essential flag.

A new row here also needs a data migration that calls `categories_seed` (like banking 0013), so
existing databases get it; the seed only adds missing codes.
"""

CATEGORIES = [
    ("salary", "Salary", "Зарплата", "income", False),
    ("business_income", "Business income", "Доход от бизнеса", "income", False),
    ("interest", "Interest", "Проценты", "income", False),
    ("refunds", "Refunds", "Возвраты", "income", False),
    ("other_income", "Other income", "Прочие доходы", "income", False),
    ("groceries", "Groceries", "Продукты", "expense", True),
    ("restaurants", "Restaurants and cafés", "Рестораны и кафе", "expense", False),
    ("transport", "Transport", "Транспорт", "expense", True),
    ("travel", "Travel", "Путешествия", "expense", False),
    ("utilities", "Utilities and rent", "ЖКХ и аренда", "expense", True),
    ("shopping", "Shopping", "Покупки", "expense", False),
    ("entertainment", "Entertainment", "Развлечения", "expense", False),
    ("health", "Health", "Здоровье", "expense", True),
    ("loan_payments", "Loan payments", "Платежи по кредитам", "expense", True),
    ("transfers", "Transfers", "Переводы", "transfer", False),
    ("cash", "Cash", "Наличные", "expense", False),
    ("fees", "Fees", "Комиссии", "expense", False),
    ("other", "Other", "Прочее", "expense", False),
]


def categories_seed(category_model=None) -> None:
    """Create any missing category (the data migration, and tests after a table flush)."""
    if category_model is None:
        from banking.models import TransactionCategory as category_model
    existing = set(category_model.objects.values_list("code", flat=True))
    category_model.objects.bulk_create(
        [
            category_model(
                code=code, name_en=name_en, name_ru=name_ru, kind=kind, is_essential=essential
            )
            for code, name_en, name_ru, kind, essential in CATEGORIES
            if code not in existing
        ]
    )
