"""A real outbox handler used by the tests: it appends the payload to a Redis list."""
import json

from flask import current_app


def remember(payload: dict, outbox_id: int) -> None:
    current_app.extensions["redis"].rpush("test:outbox:delivered", json.dumps({"id": outbox_id, **payload}))
