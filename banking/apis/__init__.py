"""Banking APIs, one module per concern."""
