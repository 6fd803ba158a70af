"""Who is acting on a ticket: a staff member, a resident, the system or the phone system.

Services take an :class:`Actor` instead of a request or a session user, so the same rules
apply whether a change comes from the mini-program, the official account, the staff
console, a job or the phone-system bridge.
"""
from __future__ import annotations

from dataclasses import dataclass

from app.models import Role, Staff, WechatUser


class ActorKind:
    STAFF = "staff"
    RESIDENT = "resident"
    SYSTEM = "system"
    PHONE = "phone"
    ALL = (STAFF, RESIDENT, SYSTEM, PHONE)


@dataclass(frozen=True)
class Actor:
    kind: str
    staff: Staff | None = None
    user: WechatUser | None = None
    name: str | None = None

    @classmethod
    def of_staff(cls, staff: Staff) -> Actor:
        return cls(ActorKind.STAFF, staff=staff, name=staff.name)

    @classmethod
    def of_resident(cls, user: WechatUser) -> Actor:
        return cls(ActorKind.RESIDENT, user=user, name=user.nickname or "用户")

    @classmethod
    def system(cls) -> Actor:
        return cls(ActorKind.SYSTEM, name="系统")

    @classmethod
    def phone(cls, agent_name: str | None = None) -> Actor:
        """The phone call-center system (optionally naming its agent)."""
        return cls(ActorKind.PHONE, name=agent_name or "呼叫中心")

    @property
    def staff_id(self) -> int | None:
        return self.staff.id if self.staff is not None else None

    @property
    def user_id(self) -> int | None:
        return self.user.id if self.user is not None else None

    @property
    def role(self) -> str | None:
        """The staff role, or None for non-staff and for deactivated staff (who may do nothing)."""
        if self.kind == ActorKind.STAFF and self.staff is not None and self.staff.active:
            return self.staff.role
        return None

    def has_role(self, *roles: str) -> bool:
        return self.role in roles

    @property
    def is_automation(self) -> bool:
        return self.kind in (ActorKind.SYSTEM, ActorKind.PHONE)

    def leads_crew(self, crew_id: int | None) -> bool:
        return crew_id is not None and self.role == Role.CREW_LEAD and self.staff.crew_id == crew_id
