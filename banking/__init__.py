"""banking: bank connections, tokens, accounts, balances, transactions, products, agreements,
categories and aggregates; banking.ingestion stores parsed bank rows (COPY or upsert inside);
banking.clients is the HTTP to the banks (ORM-free, typed errors).

It may import audit and fintrack.core only. It tells the apps above about its events with the
signals of banking.signals (e.g. transactions_changed), which they connect in their apps.py.
"""
