"""fintrack.core: what every app shares: ApplicationError and UpstreamError with the one
exception handler that renders them, fields, models, db and concurrency helpers, local time,
correlation ids, middleware, throttling, pagination, parsers and the admin console's helpers.

The bottom layer: it imports no feature app and not the project package (settings, urls,
celery, health); every app may import it.
"""
