import os


def test_healthz_reports_database_and_redis_ok(client):
    res = client.get("/healthz")
    assert res.status_code == 200
    body = res.get_json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["redis"]["ok"] is True
    assert set(body["checks"]["queues"]) == {"notify", "default", "bulk"}


def test_healthz_says_whether_redis_is_the_embedded_one(client):
    # Without TEST_REDIS_URL the suite runs on an embedded server started before the app,
    # as `make run` does; with it, on the machine's real Redis.
    embedded = not os.environ.get("TEST_REDIS_URL")
    assert client.get("/healthz").get_json()["checks"]["redis"]["embedded"] is embedded


def test_unknown_url_is_json_404_in_chinese(client):
    res = client.get("/no-such-page")
    assert res.status_code == 404
    assert res.get_json()["error"]["code"] == "not_found"
    assert "不存在" in res.get_json()["error"]["message"]
