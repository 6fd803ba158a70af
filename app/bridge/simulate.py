"""A realistic phone-system load against a running bridge (demo, tests, benches).

It plays the call center: calls ring, are answered or missed, callers press 1-5 in the
post-call IVR rating (POST /bridge/v1/ratings, sometimes naming a ticket the simulator
registered), agents register tickets in Chinese while on the phone, update them, and the
phone system's real habits are mixed in
— duplicate deliveries, late (out-of-order) events and the odd malformed payload. Every
request is signed like the real one. Bounded by ``duration`` and ``rate``; loopback only
unless allowed.
"""
from __future__ import annotations

import ipaddress
import json
import random
import socket
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

import requests

from app.bridge.signing import sign_headers

DEFAULT_MIX = {"new": 35, "update": 15, "call": 30, "lookup": 10, "duplicate": 6, "late": 3, "malformed": 1}

PROBLEMS = [
    ("repair", "no_heat", "家里暖气完全不热，老人孩子都在家，麻烦尽快派人看看。"),
    ("repair", "low_temperature", "室温只有十五度左右，暖气片上热下凉。"),
    ("repair", "radiator", "卧室暖气片阀门拧不动，想请师傅来调一下。"),
    ("repair", "noise", "暖气管道夜里一直有哗哗的水流声，影响休息。"),
    ("repair", "burst_pipe", "厨房暖气管爆了，水一直往外喷，楼下也漏了！"),
    ("repair", "flooding", "地下室进水，已经淹到脚踝了。"),
    ("repair", "gas_smell", "楼道里有很重的燃气味，请马上派人处理。"),
    ("complaint", "service", "上次维修师傅态度不好，问题也没解决。"),
    ("inquiry", "billing", "想问一下今年的采暖费怎么交，能不能分期。"),
    ("suggestion", "other", "建议在小区里贴一下停热通知。"),
    ("help", "other", "家里老人一个人在家，暖气不热，请帮忙联系。"),
]
# The post-call IVR: most answered callers press a key; most of them are satisfied.
IVR_RATED_SHARE = 0.6
IVR_SCORES = (5, 4, 3, 2, 1)
IVR_SCORE_WEIGHTS = (50, 25, 12, 8, 5)
AGENTS = ["王芳", "李娜", "刘洋", "陈静", "赵敏"]
STREETS = ["幸福小区", "阳光花园", "和平里", "建设新村", "光明家园"]


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
    except (socket.gaierror, ValueError):
        return False


def parse_mix(text: str | None) -> dict[str, int]:
    if not text:
        return dict(DEFAULT_MIX)
    mix = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        name = name.strip()
        if name not in DEFAULT_MIX:
            raise ValueError(f"unknown kind {name!r}; use {', '.join(DEFAULT_MIX)}")
        mix[name] = int(weight or 1)
    if not any(mix.values()):
        raise ValueError("the mix has no weight")
    return mix


@dataclass
class Report:
    sent: Counter = field(default_factory=Counter)        # kind -> requests
    statuses: Counter = field(default_factory=Counter)    # "kind status" -> count
    errors: int = 0
    latencies_ms: list = field(default_factory=list)
    elapsed_s: float = 0.0

    def lines(self) -> list[str]:
        total = sum(self.sent.values())
        lat = sorted(self.latencies_ms) or [0.0]
        out = [f"{total} requests in {self.elapsed_s:.1f} s ({total / max(self.elapsed_s, 1e-9):.1f}/s), "
               f"{self.errors} connection errors; p50 {lat[len(lat) // 2]:.1f} ms, "
               f"p99 {lat[min(len(lat) - 1, int(len(lat) * 0.99))]:.1f} ms"]
        out += [f"  {key:<16} {count}" for key, count in sorted(self.statuses.items())]
        return out


class PhoneSystem:
    """The call center's side: knows its own tickets and calls, signs and posts."""

    def __init__(self, url: str, secret: str, *, callers: list[tuple[str, str | None]] | None = None,
                 assignees: list[str] | None = None, seed: int | None = None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.secret = secret
        self.rng = random.Random(seed)
        # The scenarios' kinds come from their own stream, drawn by one thread: a seeded run plays
        # the same mix of kinds whatever order the workers draw their details in.
        self.plan = random.Random(seed)
        self.callers = callers or []          # (phone, account_no)
        self.assignees = assignees or []
        self.timeout = timeout
        self.session = requests.Session()
        self.lock = threading.Lock()
        self.tickets: list[dict] = []          # payloads sent, for updates and duplicates
        self.registered: list[str] = []        # our external ids the bridge accepted (ratings may name one)
        self.sent_bodies: list[tuple[str, bytes]] = []
        self.report = Report()
        self.run_id = uuid.uuid4().hex[:6]
        self.seq = 0

    # -- payloads -----------------------------------------------------------------------------
    def _next(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq

    def _caller(self) -> tuple[str, str | None]:
        if self.callers and self.rng.random() < 0.8:
            return self.rng.choice(self.callers)
        return f"13{self.rng.randint(0, 999999999):09d}", None

    def new_ticket(self, now: datetime) -> dict:
        n = self._next()
        type_, category, text = self.rng.choice(PROBLEMS)
        phone, account_no = self._caller()
        payload = {
            "external_id": f"CC{self.run_id}{n:06d}", "event_id": f"ev-{self.run_id}-{n}-new",
            "type": type_, "category": category, "caller_phone": phone, "description": text,
            "agent": self.rng.choice(AGENTS), "created_at": now.isoformat(), "occurred_at": now.isoformat(),
            "recording_url": f"https://cc.example.com/rec/{self.run_id}/{n}.mp3",
        }
        if account_no:
            payload["account_no"] = account_no
        else:
            payload["address"] = f"{self.rng.choice(STREETS)}{self.rng.randint(1, 30)}号楼{self.rng.randint(1, 6)}单元"
        if self.assignees and self.rng.random() < 0.1:
            payload["assignee"] = self.rng.choice(self.assignees)
        with self.lock:
            self.tickets.append(payload)
        return payload

    def update(self, now: datetime, *, late: bool = False) -> dict | None:
        with self.lock:
            if not self.tickets:
                return None
            base = self.rng.choice(self.tickets)
        n = self._next()
        when = now - timedelta(minutes=30) if late else now
        return {**base, "event_id": f"ev-{self.run_id}-{n}-{'late' if late else 'upd'}",
                "description": base["description"] + (" 补充：居民再次来电催促。" if not late else " （旧信息）"),
                "occurred_at": when.isoformat()}

    def call_events(self, now: datetime) -> list[dict]:
        n = self._next()
        phone, account_no = self._caller()
        call_id = f"call-{self.run_id}-{n}"
        base = {"call_id": call_id, "caller_phone": phone}
        if account_no:
            base["account_no"] = account_no
        events = [{**base, "event_id": f"{call_id}-ring", "event": "ringing", "occurred_at": now.isoformat()}]
        if self.rng.random() < 0.8:
            agent = self.rng.choice(AGENTS)
            duration = self.rng.randint(20, 600)
            events.append({**base, "event_id": f"{call_id}-ans", "event": "answered", "agent": agent,
                           "occurred_at": (now + timedelta(seconds=5)).isoformat()})
            events.append({**base, "event_id": f"{call_id}-end", "event": "hangup", "agent": agent,
                           "duration_s": duration,
                           "recording_url": f"https://cc.example.com/rec/{call_id}.mp3",
                           "occurred_at": (now + timedelta(seconds=5 + duration)).isoformat()})
        else:
            events.append({**base, "event_id": f"{call_id}-miss", "event": "missed",
                           "occurred_at": (now + timedelta(seconds=30)).isoformat()})
        return events

    def ivr_rating(self, hangup: dict) -> dict | None:
        """What the caller pressed after an answered call (or None: they hung up first)."""
        if hangup.get("event") != "hangup" or self.rng.random() >= IVR_RATED_SHARE:
            return None
        rated_at = datetime.fromisoformat(hangup["occurred_at"]) + timedelta(seconds=self.rng.randint(3, 20))
        rating = {"call_id": hangup["call_id"], "score": self.rng.choices(IVR_SCORES, IVR_SCORE_WEIGHTS)[0],
                  "rated_at": rated_at.isoformat(), "caller_phone": hangup["caller_phone"]}
        with self.lock:
            if self.registered and self.rng.random() < 0.3:
                rating["ticket_number"] = self.rng.choice(self.registered)
        return rating

    def malformed(self) -> bytes:
        n = self._next()
        return self.rng.choice([
            b'{"external_id": "CC-broken", "event_id": "ev-broken-' + str(n).encode() + b'", "type": ',
            json.dumps({"external_id": f"CCbad{n}", "event_id": f"ev-bad-{self.run_id}-{n}", "type": "维修单",
                        "caller_phone": "abc", "description": ""}, ensure_ascii=False).encode(),
            json.dumps(["not", "an", "object"]).encode(),
        ])

    # -- sending -----------------------------------------------------------------------------
    def post(self, path: str, body: bytes, kind: str) -> int | None:
        headers = {"Content-Type": "application/json", **sign_headers(self.secret, body)}
        return self._send(requests.Request("POST", self.url + path, data=body, headers=headers), kind)

    def get(self, path: str, kind: str) -> int | None:
        """A GET signs its method and target: the path and query exactly as requests sends them."""
        request = self.session.prepare_request(requests.Request("GET", self.url + path))
        request.headers.update(sign_headers(self.secret, method="GET", target=request.path_url))
        return self._send(request, kind)

    def _send(self, request: requests.Request | requests.PreparedRequest, kind: str) -> int | None:
        if isinstance(request, requests.Request):
            request = self.session.prepare_request(request)
        start = time.perf_counter()
        try:
            res = self.session.send(request, timeout=self.timeout)
        except requests.RequestException:
            with self.lock:
                self.report.errors += 1
                self.report.sent[kind] += 1
            return None
        with self.lock:
            self.report.latencies_ms.append((time.perf_counter() - start) * 1000)
            self.report.sent[kind] += 1
            self.report.statuses[f"{kind} {res.status_code}"] += 1
        return res.status_code

    def post_json(self, path: str, payload: dict, kind: str) -> int | None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        status = self.post(path, body, kind)
        if status is not None:
            # Only an answered delivery is redelivered later: a "duplicate" must never race its
            # original, or the copy may be the one that creates the ticket.
            with self.lock:
                self.sent_bodies.append((path, body))
                if path == "/bridge/v1/tickets" and status in (200, 201) and payload.get("external_id"):
                    self.registered.append(payload["external_id"])
        return status

    def one(self, kind: str) -> None:
        now = datetime.now(timezone.utc)
        if kind == "new":
            self.post_json("/bridge/v1/tickets", self.new_ticket(now), kind)
        elif kind in ("update", "late"):
            payload = self.update(now, late=kind == "late") or self.new_ticket(now)
            self.post_json("/bridge/v1/tickets", payload, kind)
        elif kind == "call":
            events = self.call_events(now)
            for event in events:
                self.post_json("/bridge/v1/calls", event, kind)
            rating = self.ivr_rating(events[-1])
            if rating is not None:
                self.post_json("/bridge/v1/ratings", rating, "rating")
        elif kind == "lookup":
            phone, _ = self._caller()
            self.get(f"/bridge/v1/callers/{phone}", kind)
        elif kind == "duplicate":
            with self.lock:
                earlier = self.rng.choice(self.sent_bodies) if self.sent_bodies else None
            if earlier is None:
                self.post_json("/bridge/v1/tickets", self.new_ticket(now), "new")
            else:
                self.post(earlier[0], earlier[1], kind)  # byte-identical redelivery
        elif kind == "malformed":
            self.post("/bridge/v1/tickets", self.malformed(), kind)


def run(system: PhoneSystem, *, rate: float, duration: float, mix: dict[str, int], workers: int = 8) -> Report:
    """Start ``rate`` scenarios per second for ``duration`` seconds, then wait for them."""
    kinds, weights = zip(*[(k, w) for k, w in mix.items() if w > 0])
    interval = 1.0 / rate
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        n = 0
        while True:
            due = start + n * interval
            if due - start >= duration:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            pool.submit(system.one, system.plan.choices(kinds, weights)[0])
            n += 1
    system.report.elapsed_s = time.perf_counter() - start
    return system.report
