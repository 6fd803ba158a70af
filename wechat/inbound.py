"""WeChat's pushes parsed into typed messages: wechatpy's parser, plus the events it lacks.

wechatpy 1.8.18 has no classes for the subscription-notice events (WECHAT.md §1.5, trap 15):
``subscribe_msg_popup_event``, ``subscribe_msg_change_event`` and ``subscribe_msg_sent_event``
come back as ``UnknownMessage`` (type "unknown"), i.e. as if a user had written something we
cannot read — which would open the 48-hour window and answer "暂不支持此类消息". They are
registered here the way wechatpy registers its own events, and any other event WeChat adds
later is still an event (``UnknownEvent``), never a user message.

Their items sit in ``<List>`` elements inside a wrapper named after the event
(``<SubscribeMsgPopupEvent><List>…</List><List>…</List></SubscribeMsgPopupEvent>``); xmltodict
gives a dict for one item and a list for several, so ``.items`` always returns a list.
"""
from __future__ import annotations

from wechatpy import parse_message as _wechatpy_parse
from wechatpy.events import BaseEvent, register_event
from wechatpy.messages import UnknownMessage

SUBSCRIBE_MSG_EVENTS = ("subscribe_msg_popup_event", "subscribe_msg_change_event", "subscribe_msg_sent_event")
# One documentation sample put a change event's items under SubscribeMsgPopupEvent: read any.
_WRAPPERS = ("SubscribeMsgPopupEvent", "SubscribeMsgChangeEvent", "SubscribeMsgSentEvent")


class SubscribeMsgEvent(BaseEvent):
    """A subscription-notice event: one item per template in ``.items``."""

    @property
    def items(self) -> list[dict]:
        found = None
        for wrapper in _WRAPPERS:
            value = self._data.get(wrapper)
            if isinstance(value, dict) and "List" in value:
                found = value["List"]
                break
        if found is None:
            found = self._data.get("List")  # the mini-program's JSON push puts List at the top
        if isinstance(found, dict):
            found = [found]
        return [item for item in (found or []) if isinstance(item, dict)]


@register_event("subscribe_msg_popup_event")
class SubscribeMsgPopupEvent(SubscribeMsgEvent):
    """The user answered a subscription popup: TemplateId, SubscribeStatusString (accept or
    reject), PopupScene (1 H5 page, 2 article; 0 in a mini-program)."""

    event = "subscribe_msg_popup_event"


@register_event("subscribe_msg_change_event")
class SubscribeMsgChangeEvent(SubscribeMsgEvent):
    """The user switched a notice off in the settings: TemplateId, SubscribeStatusString
    (only reject is pushed)."""

    event = "subscribe_msg_change_event"


@register_event("subscribe_msg_sent_event")
class SubscribeMsgSentEvent(SubscribeMsgEvent):
    """The outcome of a subscription notice we sent: TemplateId, MsgID, ErrorCode (0 is
    delivered), ErrorStatus."""

    event = "subscribe_msg_sent_event"


class UnknownEvent(BaseEvent):
    """An event wechatpy does not know: still an event, never a user message."""

    @property
    def event(self) -> str:
        return str(self._data.get("Event") or "").lower()


def parse_message(xml):
    """wechatpy's ``parse_message`` with the events above known, and unknown events as events."""
    message = _wechatpy_parse(xml)
    if isinstance(message, UnknownMessage) and str(message._data.get("MsgType", "")).lower() == "event":
        return UnknownEvent(message._data)
    return message
