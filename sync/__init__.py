"""sync: SyncRun and the orchestration of a bank sync: its Celery tasks and beat schedule, the
page reader (sync/reader.py) and the reaper of lost runs; the connections' admin console.

It calls the services of the apps below and writes only SyncRun. It may import analytics,
consents, banking, audit and fintrack.core; only users (onboarding) imports it.
"""
