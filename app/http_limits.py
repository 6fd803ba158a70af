"""How much of a request body we read: one rule for every door (DESIGN §5).

Every request body is limited while it is read, whether it announces its length or comes
chunked (no ``Content-Length``): the limit is put on the request before any view runs
(``request.max_content_length``; Werkzeug then wraps the WSGI input in a stream that raises
413 the moment it would read past the limit), and a body that declares more than the limit
is refused before a byte of it is read.

- ``MAX_CONTENT_LENGTH`` (config) caps every request of the app: enough for nine photos.
- ``limit_blueprint(bp, n)`` sets a smaller default for a blueprint (the mobile API's JSON).
- ``@body_limit(n, per_file=m)`` sets a view's own limit, and optionally a limit per uploaded
  file, enforced while the multipart body is parsed — a 50 MB photo is refused when its
  10th MB arrives, not after it was spooled to disk.

A 413 answer tells the server to stop reading: the rest of the body is never read (the
read side of the connection is shut, so neither Werkzeug's nor gunicorn's keep-alive
draining pulls it in) and the connection closes after the answer. Each door keeps its own
answer format: our JSON error here, WeChat's formats in ``wechat/`` (their blueprints
register their own 413 handler).
"""
from __future__ import annotations

import socket
import tempfile
from typing import Callable

from flask import Blueprint, Flask, Request, request
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream, get_input_stream

SPOOL_IN_MEMORY = 512 * 1024      # an uploaded file larger than this is spooled to a temp file

_BLUEPRINT_LIMITS: dict[str, int] = {}


class BodyTooLarge(RequestEntityTooLarge):
    """413 with a message for people (Chinese) about which limit was hit."""

    def __init__(self, message: str):
        super().__init__(description=message)
        self.message = message


def human_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):g}MB"
    return f"{n / 1024:g}KB"


def body_limit(max_bytes: int | None = None, *, per_file: int | None = None) -> Callable:
    """Mark a view: its body may not exceed ``max_bytes`` (None: its blueprint's limit, else
    the app's cap), and each uploaded file not ``per_file``. Put it directly under the route
    decorator."""

    def mark(view):
        view.body_limit = (max_bytes, per_file)
        return view

    return mark


def limit_blueprint(bp: Blueprint, max_bytes: int) -> None:
    """The default body limit of every view of ``bp`` that has no ``@body_limit`` of its own."""
    _BLUEPRINT_LIMITS[bp.name] = max_bytes


class _CappedSpool(tempfile.SpooledTemporaryFile):
    """Where the multipart parser writes one uploaded file: refuses the byte past ``cap``."""

    def __init__(self, cap: int):
        super().__init__(max_size=SPOOL_IN_MEMORY, mode="w+b")
        self._cap, self._written = cap, 0

    def write(self, data) -> int:
        self._written += len(data)
        if self._written > self._cap:
            raise BodyTooLarge(f"单个文件不能超过{human_size(self._cap)}")
        return super().write(data)


class _ChunkedLimit(LimitedStream):
    """A chunked body's stream: reading it whole past the limit is a 413. (Werkzeug's own
    stops quietly at the limit when read whole, so a JSON body would arrive cut short.)"""

    def __init__(self, stream, limit: int):
        super().__init__(stream, limit, is_max=True)

    def readall(self) -> bytes:
        data = super().readall()
        if self.is_exhausted:      # the limit holds one byte more than is allowed
            self.on_exhausted()
        return data


class LimitedRequest(Request):
    """Flask's request with a strict limit on chunked bodies and a per-file limit for
    multipart uploads (``max_file_size``)."""

    max_file_size: int | None = None   # per uploaded file
    body_limit: int | None = None      # the whole body (what install_body_limits chose)

    @cached_property
    def stream(self):
        environ, limit = self.environ, self.max_content_length
        if self.shallow:
            raise RuntimeError("This request was created with 'shallow=True', reading from the input stream is disabled.")
        if limit is not None and self.content_length is None and "wsgi.input_terminated" in environ:
            return _ChunkedLimit(environ["wsgi.input"], limit)
        return get_input_stream(environ, max_content_length=limit)

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        if self.max_file_size is None:
            return super()._get_file_stream(total_content_length, content_type, filename, content_length)
        if content_length is not None and content_length > self.max_file_size:
            raise BodyTooLarge(f"单个文件不能超过{human_size(self.max_file_size)}")
        return _CappedSpool(self.max_file_size)


def _limits_for_this_request(app: Flask) -> tuple[int | None, int | None]:
    view = app.view_functions.get(request.endpoint) if request.endpoint else None
    max_bytes, per_file = getattr(view, "body_limit", (None, None))
    if max_bytes is None and request.blueprint:
        max_bytes = _BLUEPRINT_LIMITS.get(request.blueprint.split(".")[0])
    cap = app.config.get("MAX_CONTENT_LENGTH")
    if max_bytes is None or (cap is not None and max_bytes > cap):
        max_bytes = cap
    return max_bytes, per_file


def stop_reading() -> None:
    """Shut the read side of this request's connection: what the client still sends is
    never read (the server's keep-alive drain sees the end at once), and the connection
    closes after our answer. Servers that expose no socket (the test client) are left alone."""
    sock = request.environ.get("werkzeug.socket") or request.environ.get("gunicorn.socket")
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        pass  # already closed by the client


def install_body_limits(app: Flask) -> None:
    """Limit every request body of ``app`` (call before registering blueprints)."""
    app.request_class = LimitedRequest

    @app.before_request
    def _limit_body():
        max_bytes, per_file = _limits_for_this_request(app)
        request.max_file_size, request.body_limit = per_file, max_bytes
        if max_bytes is None:
            return None
        if request.content_length is not None and request.content_length > max_bytes:
            raise BodyTooLarge(f"请求内容过大（上限{human_size(max_bytes)}）")
        # Werkzeug refuses a chunked body once it has read max_content_length bytes and
        # would read more: one byte of headroom lets a body of exactly max_bytes through.
        request.max_content_length = max_bytes + 1
        return None

    @app.after_request
    def _stop_reading_after_413(response):
        if response.status_code == 413:
            stop_reading()
        return response


def too_large_message(exc: RequestEntityTooLarge) -> str:
    """What to tell a person about a 413 (ours name their limit; Werkzeug's do not)."""
    if isinstance(exc, BodyTooLarge):
        return exc.message
    limit = getattr(request, "body_limit", None) if request else None
    return f"请求内容过大（上限{human_size(limit)}）" if limit else "请求内容过大"
