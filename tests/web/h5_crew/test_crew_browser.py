"""A crew member opens a task from the work-order QR URL in Chromium at 375 px, accepts it and
replies with a photo. Screenshots under artifacts/screenshots/; first-load figures under artifacts/."""
from __future__ import annotations

from sqlalchemy import select

from app.models import Ticket, TicketPhoto, TicketState
from app.links import task_url
from tests.web.conftest import screenshot
from tests.web.h5_crew.conftest import jpeg
from tests.web.h5_support import WECHAT_PHONE, first_load, fits_a_phone, record_figures, sign_in_browser

PAGE_BUDGET_BYTES = 60_000


def test_a_crew_member_opens_the_qr_link_accepts_and_replies_with_a_photo(db, live_app, h5, browser, open_page,
                                                                          crew_world, tmp_path):
    w = crew_world
    url = task_url(w.ticket)
    page = open_page(WECHAT_PHONE)
    sign_in_browser(page, url, "crew2_m1")
    page.wait_for_selector("[data-testid=accept]")
    assert page.url == url and w.ticket.number in page.text_content("[data-testid=task]")
    fits_a_phone(page)
    screenshot(page, "h5-crew-task-375")

    page.click("[data-testid=accept]")
    page.wait_for_selector(".notice.success")
    assert "已接单" in page.text_content(".notice.success")
    assert page.text_content("[data-testid=task-state]").strip() == "已接单"

    photo = tmp_path / "valve.jpg"
    photo.write_bytes(jpeg())
    page.fill("#reply", "已更换阀门，暖气恢复正常")
    page.set_input_files("#reply-photos", str(photo))
    page.click("[data-testid=reply-submit]")
    page.wait_for_selector(".notice.success")
    assert "处理结果已提交" in page.text_content(".notice.success")
    thumb = page.locator("[data-testid=event-photos] img")
    assert thumb.count() == 1
    page.wait_for_function("img => img.complete && img.naturalWidth === 40",
                           arg=thumb.element_handle())          # the photo itself, loaded, not a count
    screenshot(page, "h5-crew-replied-375")
    db.session.expire_all()
    ticket = db.session.get(Ticket, w.ticket.id)
    assert ticket.state == TicketState.REPLIED and ticket.reply == "已更换阀门，暖气恢复正常"
    assert db.session.scalar(select(TicketPhoto.path).where(TicketPhoto.ticket_id == ticket.id))

    page.goto(f"{live_app.url}/mp/tasks")
    fits_a_phone(page)
    screenshot(page, "h5-crew-tasks-375")
    figures = [first_load(browser, page, u) for u in (url, f"{live_app.url}/mp/tasks")]
    record_figures("crew", figures)
    assert all(f["bytes"] < PAGE_BUDGET_BYTES for f in figures), figures
