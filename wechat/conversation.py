"""The official-account conversation, in Chinese: who is writing, and what we answer.

``handle(msg)`` takes a parsed wechatpy message and returns the text of the passive reply
(or None for "success"). It runs inside the callback's 5 seconds: it only touches the
database and Redis; slow work (downloading media) is promised through the outbox in the same
transaction by the ticket and chat services, and the unionid look-up is enqueued after the commit.

Short-lived conversation state — "send your owner name to finish binding", "which task is
this photo for?" — lives in Redis with a TTL, so any web process can take the next message.
"""
from __future__ import annotations

import html
import json
import logging
import re
from datetime import timedelta

from flask import current_app, g
from sqlalchemy import bindparam, exists, select

from app.clock import local_now
from app.errors import DomainError, NotFoundError
from app.extensions import db
from app.models import (
    Conversation, ConversationStatus, Household, HouseholdBinding, OutageStatus, Role, Staff, Ticket,
    TicketCategory, TicketSource, TicketType, WechatUser, utcnow,
)
from app.models import Intent, OutboundMessage
from app.queue import enqueue
from app.services import access, binding, billing, chat, identity, intents, knowledge, outage_linking, outages, staff_admin, tickets
from app.services.actors import Actor
from app.text import clean_text
from wechat import crew_chat, intent_replies, live_chat, progress
from wechat import qr as wechat_qr
from wechat.inbound import SUBSCRIBE_MSG_EVENTS
from wechat.notify import CUSTOM_WINDOW, record_template_result, window_key

log = logging.getLogger(__name__)

STATE_TTL = 600
INTERACTION_GRANULARITY = timedelta(minutes=1)
HUMAN = "人工"
MENU_KEYS = {
    "MENU_BILL": "账单", "MENU_REPAIR": "报修", "MENU_OUTAGE": "停热",
    "MENU_TICKETS": "进度", "MENU_SERVICE": HUMAN,
}
WELCOME = (
    "您好，欢迎关注！这里可以查询缴纳热费、报修、查看停热通知和工单进度。\n"
    "回复【账单】查询欠费，【报修】了解报修方式，【停热】查看停热通知，【进度】查看工单，"
    "【人工】联系客服；也可以直接描述您的问题。\n"
    "首次使用请回复：绑定 户号 户主姓名（或手机号后四位），例如：绑定 10100023 张伟"
)


# --- plumbing --------------------------------------------------------------------------------

def _redis():
    return current_app.extensions["redis"]


def _state_key(openid: str) -> str:
    return f"wechat:conv:{openid}"


def _set_state(openid: str, **state) -> None:
    _redis().set(_state_key(openid), json.dumps(state, ensure_ascii=False), ex=STATE_TTL)


def _after_commit(func_path: str, *args, **kw) -> None:
    g.setdefault("wechat_jobs", []).append((func_path, args, kw))


def after_commit() -> None:
    """Enqueue the slow work collected while handling (called after the commit)."""
    for func_path, args, kw in g.pop("wechat_jobs", []):
        try:
            enqueue(func_path, *args, **kw)
        except Exception:  # Redis down: the photo stays without a file; staff can re-fetch
            log.exception("wechat: could not enqueue %s%r", func_path, args)


# The full path's facts about the sender in one round trip: the user row, and whether they
# have an open live chat, are an active crew member, have a bound household (each was a query).
_FACTS = (
    select(WechatUser,
           exists().where(Conversation.wechat_user_id == WechatUser.id,
                          Conversation.status.in_(ConversationStatus.OPEN)).label("open_chat"),
           select(Staff.id).where(Staff.id == WechatUser.staff_id, Staff.active.is_(True),
                                  Staff.role.in_(access.CREW_ROLES)).scalar_subquery().label("crew_staff_id"),
           exists().where(HouseholdBinding.wechat_user_id == WechatUser.id).label("bound"))
    .where(WechatUser.oa_openid == bindparam("openid"))
)
_UNREAD = object()


class Caller:
    """Who wrote: the openid at once, the WechatUser row only when a handler needs it.

    The FAQ path — most messages — never touches the user row: the 48-hour window is kept
    in Redis (a key with a 48-hour TTL), so answering a question costs one database write
    (the dedupe row), not three. The full path reads what it needs of the sender in one query
    (``read_facts``), in the transaction that handles the message.
    """

    def __init__(self, openid: str):
        self.openid = openid
        self._user: WechatUser | None = None
        self._row = _UNREAD                    # the user row as read by read_facts (None: no row)
        self.unionid_claimed = False           # prepare() made the daily unionid claim already
        self.state: dict | None = None         # a pending step (binding proof, photo choice)
        self.faq_version: bytes | None = None  # read with the state, for the FAQ index
        self.intents_version: bytes | None = None  # and the vocabulary's, for the classifier
        # The crew roster in Redis (see wechat/crew_chat.py): listed, and whether it is loaded.
        # None when not read; the full path asks the database in any case.
        self.in_roster: bool | None = None
        self.roster_loaded: bool | None = None
        self.in_chat = False  # may be in a live chat with an agent (wechat/live_chat.py)
        self.intent: intents.Classification | None = None  # what the text is about, once classified
        # From the database (read_facts); None until read.
        self.open_chat: bool | None = None      # has an open live chat
        self.crew_staff_id: int | None = None   # the active crew member writing, if one
        self.bound: bool | None = None          # has at least one bound household

    def read_facts(self) -> None:
        """The user row and the facts above, in one query."""
        row = db.session.execute(_FACTS, {"openid": self.openid}).first()
        if row is None:  # a new follower: no chat, no staff, no household yet
            self._row, self.open_chat, self.crew_staff_id, self.bound = None, False, None, False
        else:
            self._row, open_chat, self.crew_staff_id, bound = row
            self.open_chat, self.bound = bool(open_chat), bool(bound)

    @property
    def facts_read(self) -> bool:
        return self._row is not _UNREAD

    @property
    def user(self) -> WechatUser:
        if self._user is None:
            self._user = _user(self.openid, found=self._row, claim=not self.unionid_claimed)
        return self._user

    def households(self) -> list[Household]:
        """The bound households (the user row is touched as before: it records the interaction)."""
        user = self.user
        if self.bound is False:
            return []
        return binding.bound_households(user)

    def remember_step(self, **state) -> None:
        """A pending step for this user's next message (e.g. which task a note is for)."""
        _set_state(self.openid, **state)


def _user(openid: str, *, interacted: bool = True, found=_UNREAD, claim: bool = True) -> WechatUser:
    """The sender's row (``found``: as read already, None when there is none), created if new.
    ``claim``: make the daily unionid claim (False when the caller's Redis trip made it)."""
    user = db.session.scalar(select(WechatUser).where(WechatUser.oa_openid == openid)) if found is _UNREAD else found
    new = user is None
    if new:
        user = WechatUser(oa_openid=openid, subscribed=True, subscribed_at=utcnow())
        db.session.add(user)
    if claim and user.unionid is None and identity.claim_unionid_lookup(_redis(), openid):
        _after_commit("jobs.identity.learn_unionid", openid)  # joins them with their mini-program self
    now = utcnow()
    # Also on the row (minute precision) for reports; the Redis key is what senders check.
    if interacted and (user.last_interaction_at is None or now - user.last_interaction_at > INTERACTION_GRANULARITY):
        user.last_interaction_at = now
    if new:
        db.session.flush()  # an id for what the handler adds; a change to a known row goes with the commit
    return user


def _local(dt) -> str:
    return local_now(dt).strftime("%m月%d日%H:%M")


def _fen(amount: int) -> str:
    return f"{amount / 100:,.2f}元"


def _staff(user: WechatUser) -> Staff | None:
    staff = user.staff
    return staff if staff is not None and staff.active else None


# --- entry point -----------------------------------------------------------------------------

def prepare(msg) -> Caller | None:
    """Before dedupe, in one Redis round trip: open the 48-hour window, read any pending
    conversation step, the crew roster, the chat route and the FAQ and vocabulary versions.
    None for events (they need none of it).

    A missing FAQ version (Redis lost its keys) is set to a fresh random number in the same
    trip: a version's value is never reused for other contents, so what the process caches
    under it (the FAQ index, answers with season facts) stays right."""
    if msg.type == "event":
        return None
    caller = Caller(msg.source)
    pipe = _redis().pipeline(transaction=False)
    pipe.set(window_key(caller.openid), 1, ex=int(CUSTOM_WINDOW.total_seconds()))
    pipe.get(_state_key(caller.openid))
    pipe.set(knowledge.VERSION_KEY, knowledge.fresh_version(), nx=True)
    pipe.get(knowledge.VERSION_KEY)
    crew_chat.queue_roster_reads(pipe, caller.openid)
    # Once a day per follower: ask WeChat who they are (unionid), to join their mini-program self.
    pipe.set(identity.unionid_asked_key(caller.openid), 1, ex=identity.UNIONID_ASK_INTERVAL, nx=True)
    pipe.exists(chat.route_key(caller.openid))
    pipe.get(intents.VERSION_KEY)
    (_, raw_state, _, caller.faq_version, in_roster, roster_loaded, ask, in_chat,
     caller.intents_version) = pipe.execute()
    caller.in_chat = bool(in_chat)
    caller.unionid_claimed = True  # the SET NX above: at most once a day, whatever the handler does
    if ask:
        _after_commit("jobs.identity.learn_unionid", caller.openid)
    caller.in_roster, caller.roster_loaded = bool(in_roster), bool(roster_loaded)
    caller.state = json.loads(raw_state) if raw_state else None
    return caller


def _text_of(msg) -> str | None:
    """What the person typed or said, NFKC-folded (full-width ３９４０ is 3940) and trimmed."""
    if msg.type == "text":
        return clean_text(msg.content, multiline=True)
    if msg.type == "voice" and getattr(msg, "recognition", None):
        return clean_text(msg.recognition, multiline=True)
    return None


def faq_only(msg, caller: Caller | None) -> str | None:
    """The question, when this message is answered from the FAQ alone — no pending step,
    no command, nothing to change — so the callback can skip the rest of the machinery."""
    text = _text_of(msg) if caller is not None else None
    if not text or caller.state is not None or caller.in_chat or text in COMMANDS or BIND_COMMAND.match(text):
        return None
    if text in STILL_COLD_WORDS or REPAIR_COMMAND.match(text) or intent_replies.bad_input(text):
        return None  # may open or move a ticket, or needs its own answer: the full path
    caller.intent = intents.classify(text, version=caller.intents_version)
    if caller.intent.intent not in (Intent.QUESTION, Intent.UNKNOWN):
        return None  # an emergency, a repair, a rating …: the full path
    # Crew members never get FAQ answers: only a sender the loaded crew roster does not list
    # is answered here; listed or unknown goes the full path, where the database decides.
    if caller.in_roster or not caller.roster_loaded or crew_chat.is_command(text):
        return None
    return text


def answer_from_faq(text: str, caller: Caller) -> str:
    return _faq(text, caller.faq_version)


def handle(msg, caller: Caller | None) -> str | None:
    kind = msg.type
    if kind == "event":
        return _handle_event(msg)
    if caller.state is not None:
        _redis().delete(_state_key(caller.openid))  # a pending step is answered once
    text = _text_of(msg)
    caller.read_facts()
    handled, reply = live_chat.intercept(msg, text, open_chat=caller.open_chat)  # an open conversation: the agent's
    if handled:
        return reply
    if text is not None:
        return _handle_text(caller, text)
    if kind == "image":
        return _handle_image(caller.user, msg.media_id)
    if kind == "location":
        return _handle_location(caller.user, msg)
    if kind == "voice":  # no Recognition text (speech recognition off, or nothing recognised)
        return intent_replies.unreadable_voice()
    return "暂不支持此类消息，请发送文字或图片。回复【人工】联系客服。"


def _handle_event(msg) -> str | None:
    event = (msg.event or "").lower()
    if event == "unsubscribe":
        user = db.session.scalar(select(WechatUser).where(WechatUser.oa_openid == msg.source))
        if user is not None:
            user.subscribed = False
        return None
    if event in ("templatesendjobfinish",):
        _template_finished(msg)
        return None
    if event in ("subscribe", "subscribe_scan", "scan"):
        user = _user(msg.source)
        if event != "scan":
            user.subscribed, user.subscribed_at = True, utcnow()
        scene = getattr(msg, "scene_id", None) or (getattr(msg, "key", "") or "").removeprefix(wechat_qr.SUBSCRIBE_PREFIX)
        if scene:
            return _handle_scene(user, str(scene))
        return crew_chat.CREW_HELP if crew_chat.crew_staff_of(user.oa_openid) else WELCOME
    if event == "click":
        command = MENU_KEYS.get(msg.key)
        return _handle_text(Caller(msg.source), command) if command else None  # no pending step read
    if event in SUBSCRIBE_MSG_EVENTS:
        _subscription_notice_event(msg)
        return None
    return None  # VIEW, LOCATION reports and others need no answer


def _subscription_notice_event(msg) -> None:
    """A subscription-notice popup answered, a notice switched off, or one we sent delivered.

    We send no official-account subscription notices (bizsend) yet, and the consents we keep
    (SubscribeConsent) are the mini-program's, for its own template ids: nothing to change.
    The event is kept as the inbound row (raw XML) and logged, so a notice channel added later
    can count consents from them."""
    for item in msg.items:
        template = item.get("TemplateId")
        if msg.event == "subscribe_msg_sent_event":
            code = str(item.get("ErrorCode", ""))
            level = logging.INFO if code == "0" else logging.WARNING
            log.log(level, "wechat: subscription notice %s (template %s) to %s: %s %s", item.get("MsgID"), template,
                    msg.source, code, item.get("ErrorStatus"))
        else:
            log.info("wechat: %s %s subscription notices of template %s (%s)", msg.source,
                     item.get("SubscribeStatusString"), template, msg.event)


def _template_finished(msg) -> None:
    msgid = str(msg._data.get("MsgID") or msg._data.get("MsgId") or "")
    status = msg._data.get("Status") or msg._data.get("status") or ""
    if not msgid:
        return
    row = db.session.scalar(select(OutboundMessage).where(OutboundMessage.wechat_msgid == msgid))
    if row is None:
        # The event can overtake the send's own bookkeeping: leave the result for the sender.
        _redis().set(f"wechat:template-finish:{msgid}", status[:40], ex=86400)
        return
    record_template_result(row, status)


# --- QR scenes: binding a household or a staff member -------------------------------------------

def _handle_scene(user: WechatUser, scene: str) -> str:
    kind, value = wechat_qr.parse_scene(scene) or (None, "")
    if kind == "household":
        account_no = value
        _set_state(user.oa_openid, step="bind_proof", account_no=account_no)
        return f"您正在绑定户号 {account_no}。\n请回复户主姓名或预留手机号后四位完成验证。"
    if kind == "staff":
        try:
            staff = binding.bind_staff(user, value)
        except DomainError as exc:
            return exc.message
        return f"{staff.name}，您的微信已绑定员工账号（{Role.LABELS.get(staff.role, staff.role)}），今后的任务将推送到这里。"
    return WELCOME


def _bind(user: WechatUser, account_no: str, proof: str) -> str:
    proof = proof.strip()
    kwargs = {"phone_last4": proof} if proof.isdigit() else {"owner_name": proof}
    try:
        result = binding.bind_household(user, account_no, attempts=binding.bind_attempts(_redis()), **kwargs)
    except DomainError as exc:
        return exc.message
    return f"绑定成功：{result.household.address}（户号 {result.household.account_no}）。\n回复【账单】查询热费。"


# --- text --------------------------------------------------------------------------------------

BIND_COMMAND = re.compile(r"^绑定\s*([A-Za-z0-9]+)\s+(\S+)$")
BILL_WORDS = frozenset(("账单", "缴费", "查询", "欠费", "热费"))
REPAIR_WORDS = frozenset(("报修", "维修"))
OUTAGE_WORDS = frozenset(("停热", "停暖", "停热通知"))
PROGRESS_WORDS = frozenset(("进度", "工单", "我的工单"))
HUMAN_WORDS = frozenset((HUMAN, "客服", "转人工"))
HELP_WORDS = frozenset(("帮助", "菜单", "?", "？"))
LINK_WORDS = frozenset(("关联", "关联小程序"))
COMMANDS = BILL_WORDS | REPAIR_WORDS | OUTAGE_WORDS | PROGRESS_WORDS | HUMAN_WORDS | HELP_WORDS | LINK_WORDS
# "报修 卧室暖气片不热": a repair reported in the official account.
REPAIR_COMMAND = re.compile(r"^(?:报修|维修)[\s:：,，]*(\S.*)$", re.S)
# Answers to the restoration notice: the home is still cold.
STILL_COLD_WORDS = frozenset(("还冷", "还是冷", "还很冷", "还是不热", "仍然不热", "仍不热", "还不热", "依然不热",
                              "依旧不热", "还是凉"))
CATEGORY_WORDS = (
    (TicketCategory.BURST_PIPE, ("爆管", "爆裂", "管子爆", "水管爆")),
    (TicketCategory.LEAK, ("漏水", "跑水", "渗水", "滴水", "冒水")),
    (TicketCategory.LOW_TEMPERATURE, ("温度低", "温度偏低", "不够热", "有点凉", "偏凉", "不太热")),
    (TicketCategory.NO_HEAT, ("不热", "没热", "冰凉", "凉", "冷", "没有暖气", "没暖气", "停暖", "不供暖")),
    (TicketCategory.NOISE, ("噪音", "响声", "异响", "嗡嗡")),
    (TicketCategory.VALVE, ("阀门",)),
    (TicketCategory.RADIATOR, ("暖气片", "散热器")),
)


def guess_category(text: str) -> str:
    for tag in intents.classify(text).tags:  # the vocabulary's tag may name it (家里才16度: no_heat)
        if tag in TicketCategory.LABELS:
            return tag
    for category, words in CATEGORY_WORDS:
        if any(w in text for w in words):
            return category
    return TicketCategory.OTHER


def _handle_text(caller: Caller, text: str) -> str:
    refused = intent_replies.bad_input(text)
    if refused:
        return refused
    state, caller.state = caller.state, None
    if state and state.get("step") == "bind_proof":
        return _bind(caller.user, state["account_no"], text)
    if state and state.get("step") == intent_replies.CONFIRM_STEP:
        reply = intent_replies.answer_proposal(caller.user, state, text, _report_repair)
        if reply:
            return reply
    if state and state.get("step") == "photo_choice":
        reply = _pick_photo_task(caller.user, state, text)
        if reply:
            return reply
    staff = crew_chat.crew_member(caller)  # staff are staff in chat: the crew's commands, never the FAQ
    if staff is not None:
        return crew_chat.handle_text(caller, staff, text, state,
                                     resident_command=text in COMMANDS or bool(BIND_COMMAND.match(text)))
    match = BIND_COMMAND.match(text)
    if match:
        return _bind(caller.user, match.group(1), match.group(2))
    if text in STILL_COLD_WORDS:
        return _still_cold(caller.user)
    match = REPAIR_COMMAND.match(text)
    if match and text not in REPAIR_WORDS:
        return _report_repair(caller.user, match.group(1).strip())
    if text in BILL_WORDS:
        return _bills(caller)
    if text in REPAIR_WORDS:
        return _repair_help()
    if text in OUTAGE_WORDS:
        return _outages(caller)
    if text in PROGRESS_WORDS:
        return _progress(caller.user)
    if text in HUMAN_WORDS:
        return _to_human(caller.user)
    if text in HELP_WORDS:
        return WELCOME
    if text in LINK_WORDS:
        return _link_code(caller.user)
    return _by_intent(caller, text)


def _by_intent(caller: Caller, text: str) -> str:
    """Free text, whatever its phrasing: what it is about decides (app/services/intents.py)."""
    found = caller.intent or intents.classify(text)
    kind = found.intent
    if kind == Intent.EMERGENCY:
        return intent_replies.gas_smell() if "gas" in found.tags else intent_replies.emergency(caller, text)
    if kind == Intent.REPAIR:
        homes = caller.households()
        if homes and outages.active_outage_for(homes[0]) is not None and tickets.is_heat_report(
                TicketType.REPAIR, guess_category(text)):
            return _report_repair(caller.user, text)  # linked to the outage: answered at once, no crew sent
        return intent_replies.propose_repair(caller, text)
    if kind == Intent.PROGRESS:
        return _progress(caller.user)
    if kind == Intent.BILL:
        return _bills(caller)
    if kind == Intent.HUMAN:
        return _to_human(caller.user, text)
    if kind == Intent.RATING:
        return intent_replies.rating(caller.user, text)
    if kind == Intent.GREETING:
        return intent_replies.greeting(found)
    return _faq(text, caller.faq_version)


def _link_code(user: WechatUser) -> str:
    """Where WeChat gives no unionid: a code that joins this account with the mini-program."""
    if user.mp_openid:
        return "您的公众号与小程序已是同一账号，绑定的房屋和工单两边通用。"
    code = identity.issue_link_code(user, _redis())
    minutes = identity.LINK_CODE_TTL // 60
    return (f"您的关联码：{code}（{minutes}分钟内有效，仅可使用一次）。\n"
            "请在小程序【我的】-【关联公众号】中输入，关联后绑定的房屋和工单两边通用。")


def _households_or_hint(who: WechatUser | Caller) -> list[Household] | str:
    homes = who.households() if isinstance(who, Caller) else binding.bound_households(who)
    return homes or "您还没有绑定住户。请回复：绑定 户号 户主姓名（或手机号后四位），例如：绑定 10100023 张伟"


def _bills(caller: Caller) -> str:
    homes = _households_or_hint(caller)
    if isinstance(homes, str):
        return homes
    today = billing.local_today()
    lines, owing = [], False
    for home in homes:
        summary = billing.household_arrears(home.id, today)
        if not summary.items:
            lines.append(f"{home.address}：热费已缴清，感谢您的支持。")
            continue
        owing = True
        detail = "；".join(f"{i.season_code}采暖季 {_fen(i.total_fen)}"
                          + (f"（含滞纳金{_fen(i.late_fee_fen)}）" if i.late_fee_fen else "")
                          for i in summary.items)
        lines.append(f"{home.address}（户号 {home.account_no}）欠费合计 {_fen(summary.total_due_fen)}：{detail}")
    if owing:
        pay = f"{current_app.config['PUBLIC_BASE_URL']}/pay"
        lines.append(f'<a href="{pay}">点击缴费</a>，或在小程序“缴费查询”中支付。')
    return "\n".join(lines)


def _report_repair(user: WechatUser, description: str) -> str:
    """A repair reported in the official account: linked to an active outage (answered at
    once with the expected restore time) or dispatched to the responsible crew."""
    homes = _households_or_hint(user)
    if isinstance(homes, str):
        return homes
    home = homes[0]
    category = guess_category(description)
    outage = outages.active_outage_for(home)
    if outage is not None and tickets.is_heat_report(TicketType.REPAIR, category):
        # One outage, many messages: a second report of the same home is not a second ticket.
        existing = outages.held_report_of(home, outage)
        if existing is not None:
            return f"您家的报修已登记（工单号 {existing.number}）。{outages.linked_message(outage)}"
    try:
        ticket = tickets.create_ticket(Actor.of_resident(user), type=TicketType.REPAIR,
                                       source=TicketSource.OFFICIAL_ACCOUNT, description=description,
                                       category=category, household=home)
    except DomainError as exc:
        return exc.message
    if tickets.waits_on_outage(ticket):
        return f"报修已登记（工单号 {ticket.number}，{home.address}）。{outages.linked_message(ticket.outage)}"
    where = f"，已派给{ticket.crew.name}" if ticket.crew is not None else ""
    due = f"，预计{_local(ticket.finish_by)}前处理" if ticket.finish_by else ""
    note = ""
    if outage is not None:
        note = f"\n另：您所在区域正在停热（{outage.title}），预计{outages.local_time(outage.expected_end_at)}恢复供热。"
    return (f"报修已受理（工单号 {ticket.number}，{home.address}）{where}{due}。"
            f"可回复【进度】查看处理情况，发送照片可补充到该报修。{note}")


def _still_cold(user: WechatUser) -> str:
    """The answer to a restoration notice: the home is still cold."""
    waiting = access.waiting_on_outage(user)
    if not waiting:
        return "您目前没有等待恢复供热的报修。如家中不热，请回复：报修 问题描述（例如：报修 卧室暖气不热）。"
    restored = [t for t in waiting if t.outage.status == OutageStatus.RESTORED]
    if not restored:
        return f"停热尚未恢复。{outages.linked_message(waiting[0].outage)}"
    moved, errors = [], []
    for ticket in restored:
        try:
            outage_linking.report_still_cold(ticket, Actor.of_resident(user), note="住户回复：还冷")
            moved.append(ticket)
        except DomainError as exc:
            errors.append(exc.message)
    if not moved:
        return errors[0]
    names = "、".join(t.number for t in moved)
    crew = moved[0].crew.name if moved[0].crew is not None else "维修人员"
    return f"收到。您的报修（工单号 {names}）已转为维修工单，{crew}将尽快上门处理。可回复【进度】查看。"


def _repair_help() -> str:
    # WeChat opens the mini-program only with its appid on the link (a bound mini-program);
    # without it the words are a plain link or text (WECHAT.md §3, customer-service text).
    appid = html.escape(current_app.config["MINIAPP_APPID"], quote=True)
    return ("报修可直接回复：报修 问题描述（例如：报修 卧室暖气不热），"
            "或在小程序“我要报修”中填写问题并上传照片，我们会按时派人上门；"
            "漏水、爆管等紧急情况请直接拨打24小时热线。\n"
            f'<a data-miniprogram-appid="{appid}" data-miniprogram-path="pages/repair/new" '
            'href="https://mp.weixin.qq.com">打开报修页面</a>')


def _outages(caller: Caller) -> str:
    homes = _households_or_hint(caller)
    if isinstance(homes, str):
        return homes
    lines = []
    for outage, _ in access.outages_of(caller.user, homes):
        end = _local(outage.expected_end_at) if outage.expected_end_at else "待定"
        lines.append(f"【{outage.title}】{outage.reason.rstrip('。.')}。预计恢复：{end}")
    return "\n".join(lines) if lines else "您绑定的住户目前没有停热计划，如家中不热请回复【报修】。"


def _progress(user: WechatUser) -> str:
    return progress.progress_text(user)


def _to_human(user: WechatUser, text: str | None = None, msgid: str | None = None) -> str:
    """人工: the person's one live-chat conversation with an agent (wechat/live_chat.py), not a ticket."""
    return live_chat.start(user, text, msgid=msgid)


def _faq(text: str, faq_version: bytes | None) -> str:
    threshold = current_app.config["FAQ_CONFIDENCE_THRESHOLD"]
    matches = knowledge.search_faq(text, limit=3, version=faq_version)
    if matches and matches[0].confidence >= threshold:
        return knowledge.render_answer(matches[0].answer, version=faq_version)
    return intent_replies.not_understood([m.question for m in matches])


# --- images and locations ----------------------------------------------------------------------

def _attach(ticket: Ticket, actor: Actor, media_id: str) -> str:
    tickets.attach_photos(ticket, actor, [media_id])  # the fetch is promised through the outbox
    return f"照片已添加到工单 {ticket.number}。"


def _handle_image(user: WechatUser, media_id: str) -> str:
    staff = user.staff
    if access.is_crew(staff):
        tasks = access.open_tasks(staff)
        if not tasks:
            return "您当前没有处理中的任务，照片未关联工单。"
        if len(tasks) == 1:
            return _attach(tasks[0], Actor.of_staff(staff), media_id)
        _set_state(user.oa_openid, step="photo_choice", media_id=media_id, tasks=[t.id for t in tasks[:9]])
        options = "\n".join(f"{i}. {t.number} {t.household.address if t.household else (t.address or '')}"
                            for i, t in enumerate(tasks[:9], start=1))
        return f"您有多个处理中的任务，这张照片属于哪一个？请回复序号：\n{options}"
    ticket = access.latest_open_repair(user)
    if ticket is None:
        return "已收到照片。您目前没有处理中的报修，如需报修请回复【报修】。"
    return _attach(ticket, Actor.of_resident(user), media_id)


def _pick_photo_task(user: WechatUser, state: dict, text: str) -> str | None:
    if not (text.isascii() and text.isdigit() and len(text) <= 9):  # "²" is no number to int()
        return None  # not an answer to the question: treat the text normally
    choice = int(text)
    if not 1 <= choice <= len(state["tasks"]):
        _set_state(user.oa_openid, **state)
        return f"请回复 1 到 {len(state['tasks'])} 之间的序号。"
    staff = _staff(user)
    try:
        ticket = access.task_of(staff, state["tasks"][choice - 1])
    except NotFoundError:
        return "任务已变化，请重新发送照片。"
    return _attach(ticket, Actor.of_staff(staff), state["media_id"])


def _handle_location(user: WechatUser, msg) -> str:
    staff = _staff(user)
    if staff is None:
        return "已收到位置。如需报修请回复【报修】。"
    staff_admin.record_location(staff, msg.location_x, msg.location_y, msg.label)
    return "位置已更新，感谢。"
