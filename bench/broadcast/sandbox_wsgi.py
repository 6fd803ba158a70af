"""The sandbox as a WSGI app for gunicorn in the broadcast bench (keep-alive, several processes).

    gunicorn -k gthread --workers 2 --threads 8 --keep-alive 30 bench.broadcast.sandbox_wsgi:app

Settings come from the environment (``SANDBOX_STORE``, ``SANDBOX_PAY_PUBLIC_KEY_PATH``, the app
ids and secrets), as for ``python -m wechat.sandbox``; TEMPLATESENDJOBFINISH events are off
(nobody listens in the bench). The sandbox keeps all its state in its SQLite store, so its
processes share quotas, counters and inboxes.
"""
from wechat.sandbox.app import create_sandbox_app
from wechat.sandbox.config import config_from_env

config = config_from_env()
config["template_finish_events"] = False
app = create_sandbox_app(config)
