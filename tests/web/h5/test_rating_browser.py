"""In Chromium at 375×667: a resident signs in through the sandbox's WeChat web authorisation,
opens a closed ticket and rates it (1–5 with a comment). The residents' pages fit phones from
320 to 430 px and WeChat's larger font setting: no sideways scrolling, tap targets ≥ 44 px.
Screenshots under artifacts/."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.models import Role, Station, Ticket, TicketSource, TicketState, TicketType
from app.services import tickets
from app.services.actors import Actor
from tests.web.conftest import screenshot
from tests.web.h5_support import _h5_sandbox, h5, h5_merchant_key  # noqa: F401 (the live sandbox's fixtures)
from tests.web.h5_support import WECHAT_PHONE, fits_a_phone, resident_in_arrears, sign_in_browser

WIDTHS = (320, 375, 430)
LARGE_ROOT_FONT = "20px"    # WeChat's 字体大小 one or two steps up (the pages size text in rem)
TAP_TARGETS = ("main button, main a.button, main a.item, nav a, main label.choice, main select, "
               "main input:not([type=hidden]):not([type=radio]):not([type=checkbox])")


@pytest.fixture()
def closed_ticket(db, h5, make_area, make_household, make_season, make_crew, make_staff):
    """刘秀英 (bound, as in the demo) and her repair, done by 张志强 and closed by an agent."""
    liu = resident_in_arrears(db, h5, make_area, make_household, make_season)
    crew = make_crew(name="和平维修二班", stations=[db.session.get(Station, liu.household.station_id)])
    member = make_staff(role=Role.CREW_MEMBER, crew=crew, name="张志强")
    agent = make_staff(role=Role.AGENT, name="客服小刘")
    db.session.commit()
    ticket = tickets.create_ticket(Actor.of_resident(liu.user), type=TicketType.REPAIR,
                                   source=TicketSource.OFFICIAL_ACCOUNT, description="卧室暖气片不热",
                                   category="no_heat", household=liu.household)
    if ticket.assignee_id is None:
        tickets.assign_ticket(ticket, Actor.of_staff(agent), staff=member)
    tickets.accept_ticket(ticket, Actor.of_staff(member))
    tickets.reply_ticket(ticket, Actor.of_staff(member), "已更换暖气片阀门，温度恢复")
    tickets.close_ticket(ticket, Actor.of_staff(agent), "已修复")
    db.session.commit()
    return ticket


def _layout_problems(page) -> dict:
    """What does not fit: horizontal overflow, and visible tap targets under 44 px tall."""
    return page.evaluate("""(selector) => {
        const root = document.documentElement;
        const small = [...document.querySelectorAll(selector)]
            .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
            .map(e => (e.textContent.trim() || e.name || e.tagName).slice(0, 20));
        const wide = [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > root.clientWidth + 0.5)
            .map(e => e.tagName + '.' + e.className).slice(0, 5);
        return {scroll: root.scrollWidth, client: root.clientWidth, small, wide};
    }""", TAP_TARGETS)


def test_a_resident_rates_a_closed_ticket(db, live_app, h5, open_page, closed_ticket):
    page = open_page(WECHAT_PHONE)
    url = f"{live_app.url}/t/{closed_ticket.number}"
    sign_in_browser(page, url, "刘秀英")       # WeChat's consent screen in the sandbox: pick her
    assert page.url == url
    page.wait_for_selector("text=评价")
    fits_a_phone(page)
    page.check("input[name=rating][value='4']")
    page.fill("#comment", "师傅很快就来了，修得也好")
    screenshot(page, "h5-rate-form-375")
    page.click("form[action$='/rate'] button[type=submit]")
    page.wait_for_load_state()

    assert "4 分" in page.text_content("main") and "师傅很快就来了" in page.text_content("main")
    assert page.locator("form[action$='/rate']").count() == 0    # once only: the form is gone
    fits_a_phone(page)
    screenshot(page, "h5-rate-done-375")
    db.session.expire_all()
    rated = db.session.scalar(select(Ticket).where(Ticket.id == closed_ticket.id))
    assert (rated.state, rated.rating, rated.rating_comment) == (TicketState.CLOSED, 4, "师傅很快就来了，修得也好")


def test_the_pages_fit_320_to_430_px_and_a_larger_font(db, live_app, h5, open_page, closed_ticket):
    page = open_page(WECHAT_PHONE)
    sign_in_browser(page, f"{live_app.url}/me", "刘秀英")
    paths = ["/me", "/me/bind", "/t", f"/t/{closed_ticket.number}", "/report", "/outages", "/pay"]
    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 667})
        for path in paths:
            for font in (None, LARGE_ROOT_FONT):
                page.goto(f"{live_app.url}{path}")
                assert page.url.startswith(f"{live_app.url}{path}"), page.url   # signed in, no detour
                if font:
                    page.evaluate("size => { document.documentElement.style.fontSize = size; }", font)
                found = _layout_problems(page)
                if found["scroll"] > found["client"] or found["small"]:
                    problems.append((width, font, path, found))
                if path == f"/t/{closed_ticket.number}" and font:
                    screenshot(page, f"h5-ticket-{width}-large-font")
    assert problems == []
