"""WSGI entry: gunicorn wsgi:app (and ``flask run``, FLASK_APP=wsgi.py)"""
from app import create_app
from app import warmup

app = create_app()
if warmup.serving():  # not for flask db upgrade, seed-demo …: only a process that serves
    warmup.start(app)
