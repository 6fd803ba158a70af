"""A serving process warms jieba, the intent vocabulary and the FAQ index in the background at
start (app/warmup.py, called by wsgi.py), so the first resident's message does not pay for
them inside WeChat's 5 seconds; flask commands other than run do not."""
import click

from app import warmup
from app.services import intents, knowledge, words


def test_only_a_serving_process_warms():
    assert warmup.serving()                                  # gunicorn: no flask command running
    with click.Context(click.Command("run")):
        assert warmup.serving()                              # flask run
    for command in ("db", "seed-demo", "routes"):
        with click.Context(click.Command(command)):
            assert not warmup.serving()


def test_the_warm_up_thread_builds_what_the_first_message_needs(app, db):
    intents._cache.clear()
    knowledge._cache.clear()
    thread = warmup.start(app)
    assert thread.daemon and thread.name == "warm-up"
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert words._ready
    assert isinstance(intents._cache.get("rules"), intents._Rules) and intents._cache["rules"].low_temps
    assert knowledge._cache.get("index") is not None and knowledge._cache["index"].docs


def test_a_database_without_the_tables_does_not_stop_the_server(app, db, monkeypatch):
    def broken():
        raise RuntimeError("no such table: intent_rule")

    monkeypatch.setattr(intents, "_rules", broken)
    took = warmup.warm(app)
    assert set(took) == {"jieba", "rules_and_faq"}
