"""The official account's answers to a resident's free text, by intent (app/services/intents.py).

wechat/conversation.py dispatches; this module words the answers and calls the services:
emergencies (an emergency ticket at once, the crew lead and the leader on duty alerted, the
hotline and safety advice), a gas smell (the gas company's number, no ticket), repairs in
words (one confirmation, or adding to the open one), ratings in chat, greetings, and the
answers to bad input (empty, emoji only, too long, voice we cannot read).
"""
from __future__ import annotations

from typing import Callable

from flask import current_app

from app.errors import DomainError
from app.extensions import db
from app.models import Household, TicketState, WechatUser
from app.services import access, binding, chat, emergencies, intents, ratings, resident_requests, tickets
from app.services.actors import Actor

MAX_TEXT = 2000  # characters; longer messages are refused with an explanation
CONFIRM_STEP = "repair_confirm"
YES = frozenset(("1", "确认", "确定", "是", "是的", "对", "好", "确认报修"))
NO = frozenset(("2", "取消", "不用", "不用了", "否", "算了"))
NEW = frozenset(("3", "新建", "新报修"))

SAFETY_ADVICE = ("1. 立即关闭暖气的进水和回水阀门；\n2. 远离喷出的热水，注意防烫，照看好老人和孩子；\n"
                 "3. 漏水靠近电器或插座时先切断电源；\n4. 用盆和毛巾接水，防止漏到楼下。")
GAS_ADVICE = "1. 立即开窗通风；\n2. 不要开关电灯、电器，不要使用明火和手机；\n3. 离开房间后再打电话。"


def _hotline() -> str:
    return current_app.config["HOTLINE_NUMBER"]


def capabilities() -> str:
    return ("· 回复【账单】查询和缴纳热费\n· 直接描述问题即可报修，如“卧室暖气不热”\n· 回复【进度】查看工单进度\n"
            "· 回复【停热】查看停热通知\n· 回复【人工】联系客服\n"
            f"漏水、爆管等紧急情况请直接说明，或拨打24小时热线 {_hotline()}。")


# --- bad input ---------------------------------------------------------------------------------

def bad_input(text: str) -> str | None:
    """The answer to text we cannot work with (nothing changes), or None when it is fine."""
    if not text.strip():
        return "您发送的内容是空的。请用文字描述您的问题，例如“卧室暖气不热”“供暖费怎么交”。"
    if len(text) > MAX_TEXT:
        return (f"您的消息太长了（{len(text)}字），请控制在{MAX_TEXT}字以内，分几条简要描述问题。"
                f"紧急情况请拨打24小时热线 {_hotline()}。")
    if intents.is_emoji_only(text):
        return "收到您的表情。请用文字描述您的问题，例如“卧室暖气不热”“供暖费怎么交”，我们会尽快为您处理。"
    return None


def unreadable_voice() -> str:
    return ("抱歉，暂时无法识别这条语音。请用文字描述您的问题（例如“卧室暖气不热”），或回复【人工】联系客服。"
            f"紧急情况请拨打24小时热线 {_hotline()}。")


# --- emergencies ---------------------------------------------------------------------------------

def gas_smell() -> str:
    gas = current_app.config["GAS_COMPANY_HOTLINE"]
    return (f"闻到煤气（燃气）味请立即：\n{GAS_ADVICE}\n燃气公司抢修电话：{gas}。\n"
            f"燃气不归供热公司管理，我们没有为此创建维修工单；如同时有暖气漏水，请拨打24小时热线 {_hotline()}。")


def emergency(caller, text: str) -> str:
    """``caller``: wechat.conversation.Caller (its households are read with the sender's row)."""
    homes = caller.households()
    user = caller.user
    if not homes:
        # No household, no address: the hotline takes the address and dispatches at once.
        return (f"请立即：\n{SAFETY_ADVICE}\n并马上拨打24小时热线 {_hotline()}，说明详细地址，我们会立即派人处理。\n"
                "您还没有绑定户号；绑定后在这里说明情况即可直接生成紧急工单。绑定请回复：绑定 户号 户主姓名")
    ticket, created = emergencies.report_emergency(user, homes[0], text)
    if not created:
        return (f"您家的紧急报修（工单号 {ticket.number}）正在处理，已把您的补充转给维修人员。\n"
                f"请注意安全：\n{SAFETY_ADVICE}\n24小时热线：{_hotline()}")
    crew = f"已派给{ticket.crew.name}，" if ticket.crew is not None else ""
    return (f"已为您生成紧急工单（工单号 {ticket.number}，{homes[0].address}），{crew}"
            f"班组长和值班领导已同时收到通知，维修人员会尽快联系您。\n请立即：\n{SAFETY_ADVICE}\n"
            f"24小时热线：{_hotline()}")


# --- repairs in words: one confirmation ---------------------------------------------------------

def propose_repair(caller, text: str) -> str:
    """Ask once before opening a repair; offer the open one instead of a duplicate."""
    homes = caller.households()
    if not homes:
        return ("报修需要先绑定户号，请回复：绑定 户号 户主姓名（或手机号后四位），例如：绑定 10100023 张伟。\n"
                f"绑定后直接描述问题即可报修；漏水、爆管等紧急情况请拨打24小时热线 {_hotline()}。")
    home = homes[0]
    open_ticket = resident_requests.open_repair_of(home)
    caller.remember_step(step=CONFIRM_STEP, description=text[:500], household_id=home.id,
                         open_ticket_id=open_ticket.id if open_ticket else None)
    if open_ticket is not None:
        return (f"您家已有一个处理中的报修（工单号 {open_ticket.number}，{TicketState.LABELS[open_ticket.state]}）。\n"
                "回复 1 把这条内容补充到该工单，回复 2 取消，回复 3 另外新建报修。")
    return f"您要报修：“{text[:100]}”（{home.address}）。\n回复 1 确认报修，回复 2 取消。"


def answer_proposal(user: WechatUser, state: dict, text: str,
                    report: Callable[[WechatUser, str], str]) -> str | None:
    """The answer to ``propose_repair``'s question; None when the text answers something else."""
    word = intents.normalize(text).strip("。.!！")
    if word in NO:
        return "好的，已取消，本次没有创建工单。如有需要可随时描述问题报修。"
    open_id = state.get("open_ticket_id")
    if word in NEW and open_id:
        return report(user, state["description"])
    if word not in YES:
        return None
    if open_id:
        try:
            ticket = access.ticket_of(user, open_id, for_update=True)
            tickets.add_resident_note(ticket, Actor.of_resident(user), state["description"])
        except DomainError:  # closed or unbound in the meantime: a new report then
            return report(user, state["description"])
        return f"已把您的描述补充到工单 {ticket.number}，维修人员会看到。可回复【进度】查看处理情况。"
    home = db.session.get(Household, state.get("household_id"))
    if home is None or home.id not in {h.id for h in binding.bound_households(user)}:
        return "您的住户绑定已变化，请重新描述问题。"
    return report(user, state["description"])


# --- ratings, greetings, the rest ------------------------------------------------------------

def rating(user: WechatUser, text: str) -> str:
    """A rating typed in chat: of the closed ticket or the ended conversation waiting for it."""
    result = resident_requests.rate_in_chat(user, text)
    if result.conversation is not None:
        chat.note_route(current_app.extensions["redis"], result.conversation)
    what = "本次人工会话" if result.conversation is not None else (
        f"工单 {result.ticket.number} " if result.ticket is not None else "")
    if result.outcome == "rated":
        answer = f"感谢您的评价！{what}评为{result.score}分。"
        if result.score <= ratings.LOW_RATING:
            answer += "很抱歉没有让您满意，我们会安排专人回访，尽快改进。"
        return answer
    if result.outcome == "not_yours":
        return "只能评价您本人报修的工单，该工单无法由您评价，评价未记录。"
    if result.outcome == "no_ticket":
        hours = int(ratings.CHAT_WINDOW.total_seconds() // 3600)
        return (f"您目前没有可评价的工单或会话（工单办结、人工会话结束后{hours}小时内，可回复1-5分评价）。"
                "如需帮助，请直接描述问题或回复【人工】。")
    if result.outcome == "ask_score":
        return f"请为{what}打分：回复 1-5（5分最满意），或回复“满意”“一般”“不满意”。"
    return f"{result.message}，评价未记录。"


def greeting(classification) -> str:
    if "thanks" in classification.tags:
        return "不客气，很高兴为您服务！还有其他问题可以直接在这里留言。"
    return "您好！我是供热服务助手，可以帮您：\n" + capabilities()


def not_understood(suggestions: list[str] | None = None) -> str:
    if suggestions:
        others = "\n".join(f"· {q}" for q in suggestions)
        return f"没有找到完全匹配的答案，您是否想问：\n{others}\n也可以回复【人工】，由客服为您解答。我还可以帮您：\n" + capabilities()
    return "抱歉，这个问题我还不会回答。我可以帮您：\n" + capabilities()
