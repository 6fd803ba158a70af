import pytest

from app.errors import ConflictError, ValidationError
from app.models import Role, utcnow
from app.services import binding
from app.errors import TooManyAttemptsError
from app.services.binding import RedisAttemptCounter


@pytest.fixture()
def attempts(redis):
    return RedisAttemptCounter(redis)


def test_binding_needs_owner_name_or_phone_last4(db, make_household, make_wechat_user, attempts):
    h = make_household(owner_name="王秀英", owner_phone="13912345678")
    u = make_wechat_user()
    assert binding.bind_household(u, h.account_no, owner_name="王 秀英", attempts=attempts).proof == "owner_name"
    u2 = make_wechat_user()
    assert binding.bind_household(u2, h.account_no.lower(), phone_last4="5678", attempts=attempts).proof == "phone_last4"
    with pytest.raises(ValidationError) as err:
        binding.bind_household(make_wechat_user(), h.account_no, owner_name="李四", attempts=attempts)
    assert err.value.code == "proof_mismatch"
    with pytest.raises(ValidationError):
        binding.bind_household(make_wechat_user(), h.account_no, attempts=attempts)


def test_binding_twice_is_one_binding(db, make_household, make_wechat_user, attempts):
    h = make_household(owner_name="王秀英")
    u = make_wechat_user()
    first = binding.bind_household(u, h.account_no, owner_name="王秀英", attempts=attempts)
    again = binding.bind_household(u, h.account_no, owner_name="王秀英", attempts=attempts)
    assert first.id == again.id
    assert [x.id for x in binding.bound_households(u)] == [h.id]


def test_wrong_guesses_are_limited_per_household(db, make_household, make_wechat_user, attempts):
    h = make_household(owner_name="王秀英")
    for _ in range(binding.MAX_FAILURES):
        with pytest.raises(ValidationError):
            binding.bind_household(make_wechat_user(), h.account_no, owner_name="猜一个", attempts=attempts)
    # Even the right answer waits now: the household is protected from guessing.
    with pytest.raises(TooManyAttemptsError):
        binding.bind_household(make_wechat_user(), h.account_no, owner_name="王秀英", attempts=attempts)


def test_unknown_account_and_wrong_name_give_the_same_answer(db, make_household, make_wechat_user, attempts):
    make_household(owner_name="王秀英")
    with pytest.raises(ValidationError) as unknown:
        binding.bind_household(make_wechat_user(), "R99999999", owner_name="王秀英", attempts=attempts)
    assert unknown.value.message == "户号与户主信息不匹配，请核对后重试"


def test_staff_code_binds_once(db, make_staff, make_wechat_user):
    staff = make_staff(role=Role.CREW_MEMBER)
    code = binding.issue_staff_bind_code(staff)
    phone = make_wechat_user()
    assert binding.bind_staff(phone, code.code).id == staff.id
    assert phone.staff_id == staff.id
    assert binding.bind_staff(phone, code.code).id == staff.id  # a repeated scan
    with pytest.raises(ConflictError):
        binding.bind_staff(make_wechat_user(), code.code)


def test_expired_staff_code_is_refused(db, make_staff, make_wechat_user):
    staff = make_staff()
    code = binding.issue_staff_bind_code(staff, now=utcnow() - binding.STAFF_CODE_TTL * 2)
    with pytest.raises(ValidationError):
        binding.bind_staff(make_wechat_user(), code.code)
