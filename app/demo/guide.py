"""Who to be in the demo: one person per role, read from the seeded database.

`make run`'s banner prints this so a newcomer can act as a resident, a crew member, a leader
or an agent at once, with the demo city's own people (nothing here is hard-coded but the
usernames the seed always creates).
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from app.extensions import db
from app.models import Bill, BillStatus, Household, HouseholdBinding, HouseholdStatus, Role, Staff, Ticket, WechatUser
from app.services.routing import IN_HAND


@dataclass
class DemoPerson:
    role: str        # what they do, in Chinese
    who: str         # console username or owner name (= the sandbox nickname)
    detail: str      # how to act as them


def demo_people() -> list[DemoPerson]:
    people: list[DemoPerson] = []
    resident = bound_resident_in_arrears()
    if resident is not None:
        user, home = resident
        people.append(DemoPerson("住户（已绑定、有欠费）", user.nickname or home.owner_name,
                                 f"沙箱里与「{user.nickname}」对话，发送【账单】；户号 {home.account_no}"))
    home = _unbound_household()
    if home is not None:
        people.append(DemoPerson("住户（未绑定）", home.owner_name,
                                 f"沙箱新建用户后发送：绑定 {home.account_no} {home.owner_name}"
                                 f"（或手机号后四位 {(home.owner_phone or '')[-4:]}）"))
    crew = _crew_member_with_tasks()
    if crew is not None:
        people.append(DemoPerson("维修人员", crew.username,
                                 f"{crew.name}，沙箱里与「{crew.username}」对话，发送【任务】"))
    for username, role, detail in (
        ("crew1_lead", "班组长", "沙箱里与「crew1_lead」对话；小程序登录为班组长"),
        ("leader1", "公司领导", "运营看板 /dashboard：微信授权时选择「leader1」，或账号登录"),
        ("agent1", "客服", "客服工作台 /console 账号登录"),
        ("admin", "管理员", "客服工作台 /console：员工管理、微信绑定二维码"),
    ):
        staff = db.session.scalar(select(Staff).where(Staff.username == username))
        if staff is not None:
            people.append(DemoPerson(role, username, f"{staff.name}，{detail}"))
    return people


def bound_resident_in_arrears() -> tuple[WechatUser, Household] | None:
    row = db.session.execute(
        select(WechatUser, Household)
        .join(HouseholdBinding, HouseholdBinding.wechat_user_id == WechatUser.id)
        .join(Household, Household.id == HouseholdBinding.household_id)
        .join(Bill, Bill.household_id == Household.id)
        .where(WechatUser.staff_id.is_(None), WechatUser.subscribed.is_(True),
               Bill.status.in_(BillStatus.OPEN), Bill.amount_fen > Bill.paid_fen)
        .order_by(Household.account_no).limit(1)).first()
    return (row[0], row[1]) if row else None


def _unbound_household() -> Household | None:
    bound = select(HouseholdBinding.household_id)
    return db.session.scalar(select(Household).where(Household.id.not_in(bound),
                                                     Household.status == HouseholdStatus.ACTIVE)
                             .order_by(Household.account_no).limit(1))


def _crew_member_with_tasks() -> Staff | None:
    return db.session.scalar(
        select(Staff).join(Ticket, Ticket.assignee_id == Staff.id)
        .join(WechatUser, WechatUser.staff_id == Staff.id)
        .where(Staff.role == Role.CREW_MEMBER, Staff.active.is_(True), Ticket.state.in_(IN_HAND))
        .order_by(Staff.username).limit(1))
