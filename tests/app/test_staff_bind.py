"""Binding a staff member's WeChat with a one-time code: every refusal says why and changes nothing."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.errors import DomainError
from app.models import Role, StaffBindCode, WechatUser, utcnow
from app.services import binding


def _state(db):
    """Everything a scan may change: who is bound to whom, and which codes are used by whom."""
    db.session.flush()
    db.session.expire_all()
    users = {u.id: u.staff_id for u in db.session.scalars(select(WechatUser))}
    codes = {c.code: (c.used_at, c.used_by_id, c.expires_at) for c in db.session.scalars(select(StaffBindCode))}
    return users, codes


def _refused(db, user, code, message):
    before = _state(db)
    with pytest.raises(DomainError) as err:
        binding.bind_staff(user, code)
    assert err.value.message == message
    db.session.rollback()  # what the boundary does on an error
    assert _state(db) == before
    return err.value


def test_an_unknown_code_is_refused(db, make_staff, make_wechat_user):
    binding.issue_staff_bind_code(make_staff())
    user = make_wechat_user()
    db.session.commit()
    _refused(db, user, "no-such-code", "绑定二维码无效，请联系管理员在后台重新生成")
    _refused(db, user, "", "绑定二维码无效，请联系管理员在后台重新生成")


def test_an_expired_code_is_refused(db, make_staff, make_wechat_user):
    code = binding.issue_staff_bind_code(make_staff(), now=utcnow() - binding.STAFF_CODE_TTL * 2)
    user = make_wechat_user()
    db.session.commit()
    _refused(db, user, code.code, "绑定二维码已过期，请联系管理员在后台重新生成")


def test_a_code_used_by_someone_else_is_refused(db, make_staff, make_wechat_user):
    staff = make_staff(role=Role.CREW_MEMBER)
    code = binding.issue_staff_bind_code(staff)
    first, second = make_wechat_user(), make_wechat_user()
    binding.bind_staff(first, code.code)
    db.session.commit()
    error = _refused(db, second, code.code, "该绑定二维码已被使用，请联系管理员重新生成")
    assert error.code == "bind_code_used"
    assert db.session.get(WechatUser, first.id).staff_id == staff.id


def test_a_code_of_a_deactivated_staff_member_is_refused(db, make_staff, make_wechat_user):
    staff = make_staff(role=Role.CREW_MEMBER)
    code = binding.issue_staff_bind_code(staff)
    staff.active = False
    user = make_wechat_user()
    db.session.commit()
    _refused(db, user, code.code, "该员工账号已停用，无法绑定")


def test_a_deactivated_staff_member_gets_no_new_code(db, make_staff):
    staff = make_staff(active=False)
    with pytest.raises(DomainError) as err:
        binding.issue_staff_bind_code(staff)
    assert err.value.message == "该员工账号已停用，无法绑定"


def test_a_wechat_bound_to_another_staff_member_cannot_take_a_second_account(db, make_staff, make_wechat_user):
    zhao = make_staff(role=Role.CREW_MEMBER, name="赵师傅", username="zhao")
    li = make_staff(role=Role.CREW_MEMBER, name="李师傅", username="li")
    user = make_wechat_user()
    binding.bind_staff(user, binding.issue_staff_bind_code(zhao).code)
    code = binding.issue_staff_bind_code(li)
    db.session.commit()
    _refused(db, user, code.code, "您的微信已绑定员工账号 zhao（赵师傅），如需更换请联系管理员")
    assert db.session.get(WechatUser, user.id).staff_id == zhao.id
    # The refused code was not spent: the right person can still use it.
    assert binding.bind_staff(make_wechat_user(), code.code).id == li.id


def test_the_same_wechat_scanning_a_fresh_code_for_the_same_staff_member_is_fine(db, make_staff, make_wechat_user):
    staff = make_staff(role=Role.CREW_LEAD)
    user = make_wechat_user()
    assert binding.bind_staff(user, binding.issue_staff_bind_code(staff).code).id == staff.id
    fresh = binding.issue_staff_bind_code(staff)
    assert binding.bind_staff(user, fresh.code).id == staff.id
    assert binding.bind_staff(user, fresh.code).id == staff.id  # WeChat retrying the same scan
    assert user.staff_id == staff.id


def test_a_new_phone_replaces_the_old_one(db, make_staff, make_wechat_user):
    staff = make_staff(role=Role.CREW_MEMBER)
    old, new = make_wechat_user(), make_wechat_user()
    binding.bind_staff(old, binding.issue_staff_bind_code(staff).code)
    binding.bind_staff(new, binding.issue_staff_bind_code(staff).code)
    assert (old.staff_id, new.staff_id) == (None, staff.id)


def test_a_new_code_retires_the_older_unused_ones(db, make_staff, make_wechat_user):
    staff = make_staff(role=Role.CREW_MEMBER)
    older = binding.issue_staff_bind_code(staff)
    newer = binding.issue_staff_bind_code(staff)
    user = make_wechat_user()
    db.session.commit()
    _refused(db, user, older.code, "绑定二维码已过期，请联系管理员在后台重新生成")
    assert binding.bind_staff(user, newer.code).id == staff.id


def test_reactivated_staff_can_bind_again(db, make_staff, make_wechat_user):
    staff = make_staff(role=Role.CREW_MEMBER, active=False)
    db.session.flush()
    staff.active = True
    user = make_wechat_user()
    assert binding.bind_staff(user, binding.issue_staff_bind_code(staff).code).id == staff.id
