"""Which channel carries which notice to which person, and what it shows (WECHAT.md §3, §7).

Channels, in order of preference:
1. mini-program subscribe message — where the user gave a one-time consent for the template;
2. customer-service message — inside 48 hours of the user's last message to us (it spends
   no template quota, which broadcasts need); 45015/45047 fall through to
3. official-account template message — to followers.

A send whose answer was lost is repeated only as a template message (the one channel WeChat
deduplicates, by client_msg_id). Templates (wechat/templates.py): each kind of notice has its
template and subscribe template, whose keys are filled from the notice's values, each shaped to
its key's rule; a value that cannot be shaped (``TemplateDataError``) is found here, before
WeChat is called, and leaves that channel out (its failure kept in case no other channel
carries the notice). 40037, 47003, 41030, 48001 and 40003 from WeChat end that channel for the
person and the next is tried (a subscribe consent not used is given back); the notice is
recorded failed, with the kind, the template and WeChat's words, only if no channel carried it.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from app.models import WechatUser
from app.models.messages import OutboundStatus
from wechat import templates
from wechat.notify.records import UNKNOWN_REASONS
from wechat.notify.transport import (CHANNEL_CLOSED, CHANNEL_NAMES, CONFIG_ERRORS, NO_CONSENT, NOT_FOLLOWING,
                                     REASONS, Outcome)

CUSTOM_WINDOW = timedelta(hours=48)


def window_key(openid: str) -> str:
    """Redis key that exists while the user's 48-hour customer-service window is open
    (set by the callback on every message, expiring with the window)."""
    return f"wechat:window:{openid}"


@dataclass
class Notice:
    """What to tell a person, independent of the channel that carries it.

    ``values`` are the kind's fields (``wechat.templates.KINDS``) as plain values —
    strings, datetimes, ``Fen`` amounts, (start, end) pairs — from which each channel takes
    what it shows: a template or subscribe message the keys of the kind's template, each
    shaped to its rule; a customer-service message every field with its label."""

    key: str                                  # unique per notification and recipient
    kind: str                                 # a kind of wechat.templates.KINDS
    title: str                                # first line of the text, e.g. "您有新的维修任务"
    values: dict[str, Any] = field(default_factory=dict)  # field -> value
    remark: str | None = None                 # last lines of the text (not in templates)
    url: str | None = None                    # H5 link
    mp_page: str | None = None                # mini-program page path

    def as_text(self) -> str:
        kind = templates.KINDS.get(self.kind)
        names = [n for n, _ in kind.fields] if kind else []
        names += [n for n in self.values if n not in names]
        lines = [self.title] + [f"{kind.label_of(n) if kind else n}：{templates.display(self.values[n])}"
                                for n in names if self.values.get(n) not in (None, "", self.title)]
        if self.remark:
            lines.append(self.remark)
        if self.url:
            lines.append(f'<a href="{self.url}">查看详情</a>')
        return "\n".join(lines)

    def to_payload(self) -> dict:
        """The notice as JSON, kept on its outbound row: a recovery or a resend sends the same."""
        return {"key": self.key, "kind": self.kind, "title": self.title,
                "values": templates.encode_values(self.values), "remark": self.remark, "url": self.url,
                "mp_page": self.mp_page}

    @classmethod
    def from_payload(cls, data: dict, **changes) -> "Notice":
        remark = data.get("remark")
        if "values" not in data and data.get("fields"):
            # Kept before the template registry: its labelled rows become text (no template
            # can be filled from them, so it goes only where text goes).
            rows = "\n".join(f"{k}：{v}" for k, v in data["fields"])
            remark = f"{rows}\n{remark}" if remark else rows
        notice = cls(key=data["key"], kind=data["kind"], title=data["title"],
                     values=templates.decode_values(data.get("values") or {}), remark=remark,
                     url=data.get("url"), mp_page=data.get("mp_page"))
        return replace(notice, **changes)


@dataclass
class Plan:
    """One item of the chain: the person as read up front (no ORM access later), the channels
    left to try, and what came of the calls so far."""

    index: int
    key: str
    notice: Notice
    user_id: int
    oa_openid: str | None
    mp_openid: str | None
    subscribed: bool
    window_open: bool
    row_id: int | None = None
    attempts: int = 0
    subscribe_template: str | None = None   # a consent was taken for this template
    outcome: Outcome | None = None
    error: Exception | None = None
    consent_lost: bool = False              # WeChat said 43101: our consent record was wrong
    unfollowed: bool = False                # WeChat said 43004 to a template message
    chain: list[str] = field(default_factory=list)  # channels to try, in order
    pos: int = 0                            # the channel being tried
    next_round: bool = False                # turned away by this channel: try the next one
    last: Outcome | None = None             # what the channel that turned us away said
    in_doubt_since: datetime | None = None  # an earlier template send was cut off then
    maybe_sent: bool = False                # this call's answer was lost
    data: dict = field(default_factory=dict)  # channel -> the template data it sends
    template_id: str | None = None          # the kind's template message, when that channel is tried
    failure: Outcome | None = None          # a channel whose template is broken (kept if none carries it)
    consent_back: bool = False              # the consent taken was not used: give it back

    @property
    def channel(self) -> str | None:
        return self.chain[self.pos] if self.pos < len(self.chain) else None

    @property
    def held(self) -> bool:
        """No outcome, but a template message may have gone out: stays "sending", and is
        repeated only with its client_msg_id."""
        return self.outcome is None and (self.in_doubt_since is not None or self.maybe_sent)


def plan(batch: list[tuple[WechatUser, Notice]], now: datetime) -> tuple[list[Plan], list[tuple[Plan, Plan]]]:
    """One ``Plan`` per distinct key, and the repeats of a key already in the batch (each with
    the item that sends it)."""
    plans: list[Plan] = []
    first_of: dict[str, Plan] = {}
    repeats: list[tuple[Plan, Plan]] = []
    for i, (user, notice) in enumerate(batch):
        p = Plan(i, notice.key, notice, user.id, user.oa_openid, user.mp_openid, bool(user.subscribed),
                 bool(user.last_interaction_at and now - user.last_interaction_at < CUSTOM_WINDOW))
        if notice.key in first_of:
            repeats.append((p, first_of[notice.key]))  # the same key twice: send it once
            continue
        first_of[notice.key] = p
        plans.append(p)
    return plans, repeats


def unshaped(channel: str, exc: templates.TemplateDataError) -> Outcome:
    return Outcome("failed", channel, None, f"{CHANNEL_NAMES[channel]}未发送，数据不符合模板规则：{exc}"[:300],
                   data_error=True)


def _render(cache: dict, channel: str, template: templates.Template, notice: Notice):
    """The template's data for this notice — once per batch for notices sharing their values
    (a broadcast's) — or the ``TemplateDataError`` that stops it."""
    key = (channel, template.template_id, notice.kind, id(notice.values))
    if key not in cache:
        try:
            cache[key] = template.render(templates.KINDS[notice.kind], notice.values)
        except templates.TemplateDataError as exc:
            cache[key] = exc
    return cache[key]


def choose(p: Plan, registry: templates.Registry, cache: dict) -> list[str]:
    """The channels to try for this person, in order, with the data of the template channels;
    a channel whose template the values cannot fill is left out (its failure kept in case no
    other channel carries the notice). The subscribe channel is there only where a consent was
    taken for it (``records.take_consents``)."""
    n = p.notice
    template = registry.template(n.kind)
    if p.in_doubt_since is not None:  # the only channel WeChat deduplicates (client_msg_id)
        # A repeat of a cut-off template message goes out even if we have since heard the user
        # unfollowed: WeChat answers for this client_msg_id (43004, or the earlier msgid).
        data = _render(cache, "template", template, n) if template else None
        if isinstance(data, dict):
            p.data["template"], p.template_id = data, template.template_id
            return ["template"]
        # It may have arrived, and it cannot be repeated: unknown, for staff.
        p.outcome = Outcome(OutboundStatus.UNKNOWN, "template", None, UNKNOWN_REASONS["interrupted"])
        if not isinstance(data, dict) and data is not None:
            p.failure = unshaped("template", data)  # reported with the batch's problems
        return []
    chain = []
    if p.subscribe_template:
        data = _render(cache, "subscribe", registry.subscribe(n.kind), n)
        if isinstance(data, dict):
            p.data["subscribe"] = data
            chain.append("subscribe")
        else:
            p.consent_back, p.failure = True, unshaped("subscribe", data)
    if p.oa_openid and p.window_open:
        chain.append("custom")
    if template and p.oa_openid and p.subscribed:
        data = _render(cache, "template", template, n)
        if isinstance(data, dict):
            p.data["template"], p.template_id = data, template.template_id
            chain.append("template")
        else:
            p.failure = p.failure or unshaped("template", data)
    return chain


def take_answer(p: Plan, result: Outcome) -> bool:
    """What WeChat's answer on ``p``'s current channel leaves to do: an outcome, or the next
    channel (``p.next_round``). True when the answer says the kind's template is wrong for
    everyone (no other channel carried it): the rest of a batch is not sent."""
    if p.channel == "subscribe" and result.errcode == NO_CONSENT:
        p.consent_lost = True
        result = None  # no consent after all: try the next channel
    elif p.channel == "subscribe" and result.status == "failed" and result.errcode in CONFIG_ERRORS:
        p.consent_back = True  # WeChat sent nothing
    elif p.channel == "template" and result.errcode == NOT_FOLLOWING:
        p.unfollowed = True
    if result is not None and result.next_channel_may_help:
        p.failure = result  # e.g. this channel's template is broken: the next channel may carry it
    elif result is not None and (result.status == "sent" or result.errcode not in CHANNEL_CLOSED):
        p.outcome = result
        return False
    else:
        # This channel turned the person away (WeChat's answer: nothing was sent); the next may not.
        p.last = result or p.last
    p.pos += 1
    if p.channel is None:
        p.outcome = p.failure or p.last or Outcome("skipped", None, None, REASONS["no_channel"])
        return p.outcome.config_problem
    p.next_round = True
    return False
