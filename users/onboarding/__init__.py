"""users.onboarding: connecting banks, from the user's choice to "may proceed to the main screen".

It orchestrates connect → consent → first sync: the consents come from `consents`, the runs from
`sync`, the connections from `banking`; it owns the tables onboarding_flows and connect_requests.
A connect asked for over the API is carried out by a worker (`connect_requests.py`: the request
stores the intent, no bank call in it), and so are a renewal, a fresh request and a demo approval
(a ConnectRequest of their kind); `reaper.py` heals the requests a lost message left behind.
Its status is a read (no bank call, no write); a pending consent is polled by a Celery task
(`tasks.py`), never by a GET. The top layer: it may import every feature app, and none imports
it.
"""
