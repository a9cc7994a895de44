"""Static reference data of the three sandbox banks: names, products, merchants, people."""

BANKS = {
    "vbank": {"name": "Virtual Bank", "digit": 1, "bin": "427610"},
    "abank": {"name": "Awesome Bank", "digit": 2, "bin": "427620"},
    "sbank": {"name": "Smart Bank", "digit": 3, "bin": "427630"},
}
BANK_CODES = tuple(BANKS)

PERMISSIONS_ACCOUNTS = "ReadAccountsDetail"
PERMISSIONS_BALANCES = "ReadBalances"
PERMISSIONS_TRANSACTIONS = "ReadTransactionsDetail"

# (productId, productType, productName, description, interestRate, minAmount, maxAmount, termMonths)
# Zero / missing numbers are None: the list endpoint answers them as null.
PRODUCTS = {
    "vbank": [
        (
            "prod-3f1c9a7b2d40",
            "deposit",
            "Вклад Надежный 8.5%",
            "Ставка 8.5% годовых, от 50 000 ₽",
            8.5,
            50000,
            10000000,
            12,
        ),
        (
            "prod-8c41d07e5a93",
            "loan",
            "Ипотека VBank 9.3%",
            "Ипотека на новостройки и вторичное жильё",
            9.3,
            500000,
            3000000,
            240,
        ),
        (
            "prod-51e2aa6f0c17",
            "loan",
            "Потребительский кредит 12.9%",
            "До 3 000 000 ₽, без залога",
            12.9,
            50000,
            3000000,
            36,
        ),
        (
            "prod-d2b7c90e3f61",
            "credit_card",
            "Кредитная карта Premium",
            "Ставка 15.9%, кэшбэк 5%",
            15.9,
            None,
            500000,
            None,
        ),
        (
            "prod-0a9e4c6b18d2",
            "card",
            "Дебетовая карта Свобода",
            "Кэшбэк 2% на все покупки",
            None,
            None,
            None,
            None,
        ),
    ],
    "abank": [
        (
            "prod-6a1f0c93be27",
            "deposit",
            "Вклад Awesome 9.0%",
            "9% годовых на 12 месяцев, от 100 000 ₽",
            9.0,
            100000,
            5000000,
            12,
        ),
        (
            "prod-b6590d81632b",
            "loan",
            "Экспресс кредит 14.2%",
            "Решение за 5 минут",
            14.2,
            30000,
            1500000,
            24,
        ),
        (
            "prod-2c8e4d7a9f15",
            "credit_card",
            "Кредитная карта Awesome",
            "Ставка 16.5%, 100 дней",
            16.5,
            None,
            300000,
            None,
        ),
        (
            "prod-94d3b1e6a0c8",
            "card",
            "Дебетовая карта Awesome",
            "Бесплатное обслуживание",
            None,
            None,
            None,
            None,
        ),
    ],
    "sbank": [
        (
            "prod-e17b5c2a8d94",
            "deposit",
            "Вклад Smart 8.0%",
            "8% годовых на 6 месяцев, от 30 000 ₽",
            8.0,
            30000,
            3000000,
            6,
        ),
        (
            "prod-7f2a9c4e1b36",
            "loan",
            "Автокредит Smart 11.9%",
            "На новый и подержанный автомобиль",
            11.9,
            100000,
            2500000,
            60,
        ),
        (
            "prod-c5d8e0f3a247",
            "loan",
            "Кредит наличными 14.0%",
            "На любые цели",
            14.0,
            30000,
            1000000,
            18,
        ),
        (
            "prod-3b9f6a1d7e52",
            "credit_card",
            "Smart Кредитка",
            "Ставка 17.9%, кэшбэк 3%",
            17.9,
            None,
            400000,
            None,
        ),
        (
            "prod-a4c7e2b9f081",
            "card",
            "Smart Дебетовая",
            "Кэшбэк 1% на всё",
            None,
            None,
            None,
            None,
        ),
    ],
}

# merchantId, name, mccCode, category, city, address, description
MERCHANTS = [
    (
        "merchant-pyaterochka-001",
        "Пятёрочка",
        "5411",
        "grocery",
        "Москва",
        "г. Москва, ул. Тверская, д. 12",
        "🏪 Продукты",
    ),
    (
        "merchant-perekrestok-002",
        "Перекрёсток",
        "5411",
        "grocery",
        "Москва",
        "г. Москва, Ленинский пр-т, д. 45",
        "🏪 Продукты",
    ),
    (
        "merchant-magnit-003",
        "Магнит",
        "5411",
        "grocery",
        "Санкт-Петербург",
        "г. Санкт-Петербург, Невский пр-т, д. 88",
        "🏪 Продукты",
    ),
    (
        "merchant-vkusvill-004",
        "ВкусВилл",
        "5499",
        "grocery",
        "Москва",
        "г. Москва, ул. Арбат, д. 20",
        "🏪 Продукты",
    ),
    (
        "merchant-lukoil-005",
        "Лукойл АЗС",
        "5541",
        "gas_station",
        "Москва",
        "г. Москва, МКАД 47-й км",
        "🚌 Транспорт",
    ),
    (
        "merchant-yandex-taxi-006",
        "Яндекс Такси",
        "4121",
        "transport",
        "Москва",
        "г. Москва, ул. Льва Толстого, д. 16",
        "🚌 Транспорт",
    ),
    (
        "merchant-shokoladnitsa-007",
        "Шоколадница",
        "5814",
        "restaurant",
        "Москва",
        "г. Москва, Пятницкая ул., д. 3",
        "🎬 Развлечения/Покупки",
    ),
    (
        "merchant-tanuki-008",
        "Тануки",
        "5812",
        "restaurant",
        "Санкт-Петербург",
        "г. Санкт-Петербург, ул. Рубинштейна, д. 7",
        "🎬 Развлечения/Покупки",
    ),
    (
        "merchant-kinomax-009",
        "Киномакс",
        "7832",
        "entertainment",
        "Казань",
        "г. Казань, ул. Баумана, д. 51",
        "🎬 Развлечения/Покупки",
    ),
    (
        "merchant-mvideo-010",
        "М.Видео",
        "5732",
        "retail",
        "Москва",
        "г. Москва, ул. Новый Арбат, д. 11",
        "🎬 Развлечения/Покупки",
    ),
    (
        "merchant-ozon-011",
        "OZON",
        "5399",
        "retail",
        "Москва",
        "г. Москва, Пресненская наб., д. 10",
        "🎬 Развлечения/Покупки",
    ),
    (
        "merchant-zara-012",
        "Zara",
        "5651",
        "retail",
        "Екатеринбург",
        "г. Екатеринбург, ул. Вайнера, д. 9",
        "🎬 Развлечения/Покупки",
    ),
]
MERCHANTS_BY_DESCRIPTION = {
    desc: [i for i, m in enumerate(MERCHANTS) if m[6] == desc] for desc in {m[6] for m in MERCHANTS}
}

LAST_NAMES = ["Иванов", "Петров", "Сидоров", "Смирнов", "Кузнецов", "Попов", "Волков", "Соколов"]
FIRST_NAMES = ["Алексей", "Дмитрий", "Сергей", "Андрей", "Михаил", "Иван", "Никита", "Павел"]
PATRONYMICS = ["Алексеевич", "Петрович", "Сергеевич", "Иванович", "Андреевич", "Олегович"]
EMPLOYERS = ["ООО Работодатель", "АО Технологии", "ООО Ромашка", "ПАО Завод", "ИП Смирнов"]
SIDE_PAYERS = ["ИП Заказчик", "ООО Фриланс", "Премия", None]
CARD_NAMES = ["Visa Classic", "Mastercard Gold", "МИР Классическая", "Visa Platinum"]

SALARY = "💼 Зарплата"
SIDE_INCOME = "💰 Подработка/Бонус"
GROCERIES = "🏪 Продукты"
TRANSPORT = "🚌 Транспорт"
HOUSING = "🏠 ЖКХ/Аренда"
LEISURE = "🎬 Развлечения/Покупки"
OWN_TRANSFER = "Перевод между своими счетами"
INTEREST = "Капитализация процентов"
LOAN_PAYMENT = "Платеж по кредиту №{agreement_id}"

# Live-style data (SPEC §17). Card purchases read "<Merchant> - <City>" with a merchant object.
# merchantId, name, mccCode, category, kind (the persona's spending kind)
LIVE_MERCHANTS = [
    ("merchant-pyaterochka", "Пятёрочка", "5411", "grocery", "grocery"),
    ("merchant-perekrestok", "Перекрёсток", "5411", "grocery", "grocery"),
    ("merchant-magnit", "Магнит", "5411", "grocery", "grocery"),
    ("merchant-vkusvill", "ВкусВилл", "5499", "grocery", "grocery"),
    ("merchant-tanuki", "Тануки", "5812", "restaurant", "restaurant"),
    ("merchant-shokoladnitsa", "Шоколадница", "5814", "restaurant", "restaurant"),
    ("merchant-vkusno", "Вкусно — и точка", "5814", "restaurant", "restaurant"),
    ("merchant-ozon", "OZON", "5999", "online_retail", "online_retail"),
    ("merchant-wildberries", "Wildberries", "5999", "online_retail", "online_retail"),
    ("merchant-yandex-market", "Яндекс Маркет", "5999", "online_retail", "online_retail"),
    ("merchant-zara", "Zara", "5651", "clothing", "clothing"),
    ("merchant-gloria-jeans", "Gloria Jeans", "5651", "clothing", "clothing"),
    ("merchant-yandex-taxi", "Яндекс Такси", "4121", "taxi", "transport"),
    ("merchant-metro", "Метрополитен", "4111", "transport", "transport"),
    ("merchant-rigla", "Ригла", "5912", "pharmacy", "pharmacy"),
    ("merchant-mts", "МТС", "4814", "telecom", "telecom"),
    ("merchant-beeline", "Билайн", "4814", "telecom", "telecom"),
    ("merchant-yandex-plus", "Яндекс Плюс", "5815", "digital_services", "subscription"),
    ("merchant-kion", "KION", "5815", "digital_services", "subscription"),
    ("merchant-zhku", "ЖКУ", "4900", "utilities", "utilities"),
]
LIVE_MERCHANTS_BY_KIND = {
    kind: [i for i, m in enumerate(LIVE_MERCHANTS) if m[4] == kind]
    for kind in {m[4] for m in LIVE_MERCHANTS}
}
# Monthly amount ranges of recurring bills, roubles.
BILL_AMOUNTS = {
    "telecom": (450, 900),
    "subscription": (299, 699),
    "utilities": (4200, 7800),
    "rent": (25000, 45000),
}
CARD_BRANDS = ["Классика", "Premium", "Мир", "Black", "Platinum"]
LIVE_INCOME = "Доход"
LIVE_BUSINESS_INCOME = "Доход от бизнеса"
LIVE_DEPOSIT_INTEREST = "Проценты по депозиту №{agreement_id}"
LIVE_TRAVEL = "Путешествия"
