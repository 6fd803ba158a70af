import pytest

from app.errors import ConflictError, ValidationError
from app.models import Role, utcnow
from app.services import binding
from app.errors import TooManyAttemptsError


@pytest.fixture()
def attempts(redis):
    return binding.bind_attempts(redis)


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


def test_wrong_guesses_slow_the_household_down_for_guessers_only(db, make_household, make_wechat_user, attempts):
    h = make_household(owner_name="王秀英")
    guessers = [make_wechat_user() for _ in range(binding.MAX_FAILURES)]
    for guesser in guessers:
        with pytest.raises(ValidationError):
            binding.bind_household(guesser, h.account_no, owner_name="猜一个", attempts=attempts)
    # A user who guessed wrong waits now, even with the right answer ...
    with pytest.raises(TooManyAttemptsError) as waiting:
        binding.bind_household(guessers[0], h.account_no, owner_name="王秀英", attempts=attempts)
    assert "该户号近期验证失败次数过多" in waiting.value.message
    # ... but the owner, who never guessed wrong, binds at once.
    owner = make_wechat_user()
    assert binding.bind_household(owner, h.account_no, owner_name="王秀英", attempts=attempts).household_id == h.id


def test_a_strangers_wrong_guesses_do_not_stop_the_owner(db, make_household, make_wechat_user, attempts):
    h = make_household(owner_name="王秀英", owner_phone="13800005678")
    stranger, owner = make_wechat_user(), make_wechat_user()
    for _ in range(binding.MAX_FAILURES):
        with pytest.raises(ValidationError):
            binding.bind_household(stranger, h.account_no, phone_last4="0000", attempts=attempts)
    # The per-user limit still stops the stranger, on this household and on any other.
    with pytest.raises(TooManyAttemptsError) as stopped:
        binding.bind_household(stranger, h.account_no, phone_last4="5678", attempts=attempts)
    assert "验证失败次数过多，请一小时后再试" in stopped.value.message
    with pytest.raises(TooManyAttemptsError):
        binding.bind_household(stranger, make_household().account_no, owner_name="谁", attempts=attempts)
    assert binding.bind_household(owner, h.account_no, phone_last4="5678", attempts=attempts).household_id == h.id


def test_an_owners_typo_is_forgiven_once_the_right_proof_arrives(db, make_household, make_wechat_user, attempts):
    h = make_household(owner_name="王秀英")
    owner = make_wechat_user()
    with pytest.raises(ValidationError):
        binding.bind_household(owner, h.account_no, owner_name="王秀", attempts=attempts)
    assert attempts.failures_of(f"user:{owner.id}") == 1
    binding.bind_household(owner, h.account_no, owner_name="王秀英", attempts=attempts)
    assert attempts.failures_of(f"user:{owner.id}") == 0


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
