"""Links to our own pages that the backend puts in messages and on paper (WeChat pushes, chat
replies, the printed work order): one place builds each, from ``PUBLIC_BASE_URL``."""
from __future__ import annotations

from flask import current_app

from app.models import Ticket


def public_url(path: str) -> str:
    """``path`` (starting with /) on the site people reach, as WeChat opens it — also the
    redirect_uri of WeChat's web sign-in (``public_url(url_for(...))``)."""
    return current_app.config["PUBLIC_BASE_URL"] + path


def ticket_url(ticket: Ticket) -> str:
    """The resident's ticket page (工单, ``/t/<工单号>``)."""
    return public_url(f"/t/{ticket.number}")


def task_url(ticket: Ticket) -> str:
    """The crew's task page — what task pushes, the chat's task list and the work order's QR
    code open.

    A plain https link under ``/mp/task``; the mini-program's "扫普通链接二维码打开小程序" rule
    maps this prefix to ``pages/task/detail`` (the page task notifications open), so a crew
    member scanning it in WeChat lands on the task. Outside WeChat the link shows a hint page.
    """
    return public_url(f"/mp/task?id={ticket.id}&no={ticket.number}")
