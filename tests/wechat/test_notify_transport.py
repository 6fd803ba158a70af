"""The template poster (wechat.notify.transport): its failures are classified as wechatpy's are —
whether the call may have reached WeChat decides if a template message is held for its
client_msg_id repeat or simply sent again later."""
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from wechat.notify.transport import TemporaryFailure, Transport

BODY = {"touser": "o-nobody", "template_id": "t-1", "data": {}}


def _transport(app, monkeypatch, base: str) -> Transport:
    monkeypatch.setitem(app.config, "WECHAT_API_BASE", base)
    monkeypatch.setitem(app.config, "WECHAT_TIMEOUT", 1.0)
    transport = Transport(app.extensions["redis"], app.config, set(), 1)
    transport._token = "token-read-before"  # only the post is under test
    return transport


def _post(transport: Transport) -> TemporaryFailure:
    with pytest.raises(TemporaryFailure) as caught:
        transport.call("template", lambda: transport.post_template(BODY))
    return caught.value


def _server(handler):
    server = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_refused_connection_surely_did_not_reach_wechat(app, redis, monkeypatch):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nobody listens there
    with app.app_context():
        failure = _post(_transport(app, monkeypatch, f"http://127.0.0.1:{port}/"))
    assert failure.maybe_sent is False


@pytest.mark.parametrize("status, maybe_sent", [(404, False), (502, True)])
def test_an_http_error_may_have_been_carried_out_only_behind_a_gateway(app, redis, monkeypatch, status, maybe_sent):
    class Answer(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = _server(Answer)
    try:
        with app.app_context():
            failure = _post(_transport(app, monkeypatch, f"http://127.0.0.1:{server.server_port}/"))
    finally:
        server.shutdown()
    assert failure.maybe_sent is maybe_sent


def test_an_answer_that_never_comes_may_have_been_carried_out(app, redis, monkeypatch):
    release = threading.Event()

    class Silent(BaseHTTPRequestHandler):
        def do_POST(self):
            release.wait(5)  # longer than the poster's read timeout

        def log_message(self, *args):
            pass

    server = _server(Silent)
    try:
        with app.app_context():
            failure = _post(_transport(app, monkeypatch, f"http://127.0.0.1:{server.server_port}/"))
    finally:
        release.set()
        server.shutdown()
    assert failure.maybe_sent is True
