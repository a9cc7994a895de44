"""Banking services (writes and side effects), one module per concern."""
