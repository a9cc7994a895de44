"""Banking selectors (reads, always scoped to a user), one module per concern."""
