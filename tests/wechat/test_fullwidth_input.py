"""What residents type with a Chinese input method (full-width digits, ideographic spaces) works
in chat as if typed half-width (issue 16)."""
from sqlalchemy import select

from app.models import HouseholdBinding


def test_binding_with_full_width_account_number_and_phone_digits(db, wechat, make_household):
    home = make_household(account_no="10100001", owner_name="郑淑华", owner_phone="139 0000 3940")
    db.session.commit()
    person = wechat.create_user()

    reply = wechat.say(person["openid"], "绑定\u3000１０１００００１　３９４０ ")

    assert "绑定成功" in reply
    db.session.expire_all()
    binding = db.session.scalar(select(HouseholdBinding))
    assert (binding.household_id, binding.proof) == (home.id, "phone_last4")


def test_full_width_wrong_digits_do_not_bind(db, wechat, make_household):
    make_household(account_no="10100002", owner_name="郑淑华", owner_phone="13900003940")
    db.session.commit()
    person = wechat.create_user()

    assert "不匹配" in wechat.say(person["openid"], "绑定 １０１００００２ ３９４１")
    assert db.session.scalar(select(HouseholdBinding)) is None
