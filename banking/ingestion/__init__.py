"""Parsed bank rows → stored rows: the only writer of a sync's accounts, balances, transactions,
product catalogue and agreements.

The sync (the orchestrator in `sync`) calls the bank and hands what it read to these services;
how rows are stored (COPY or upsert, batches, clipping to the columns) is decided here. Modules:
`rows` (a transaction as its stored row, columns and clip lengths read from the model),
`transactions` (the batch writer), `quarantine` (items the bank sent malformed: kept raw, retried,
resolved), `accounts` (accounts and balances), `products` (catalogue and agreements). Imports
banking's models and selectors, `banking.clients.types` and `parsing`, and fintrack.core.
"""
