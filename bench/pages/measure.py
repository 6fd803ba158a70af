"""The first load of a page as WeChat's browser on a phone meets it, measured in Chromium:
bytes transferred (headers and bodies of every response, as Chromium counts them) and the time
from navigation start to the load event. Used by bench/pages/run.py and the browser tests."""
from __future__ import annotations

WECHAT_PHONE = {"width": 375, "height": 667}      # WeChat's browser on a 375-px phone


def first_load(browser, signed_in_page, url: str) -> dict:
    """``url`` opened with an empty cache by the person signed in on ``signed_in_page`` (a new
    browser context with the same cookies)."""
    context = browser.new_context(viewport=WECHAT_PHONE, locale="zh-CN",
                                  storage_state=signed_in_page.context.storage_state())
    try:
        page = context.new_page()
        finished = []
        page.on("requestfinished", lambda request: finished.append(request))
        response = page.goto(url, wait_until="load")
        sizes = [request.sizes() for request in finished]
        load_ms = page.evaluate("""() => { const n = performance.getEntriesByType('navigation')[0];
                                          return n.loadEventEnd - n.startTime; }""")
        return {"url": url, "status": response.status if response else None, "requests": len(sizes),
                "bytes": sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes),
                "load_ms": round(load_ms, 1)}
    finally:
        context.close()


def sign_in_browser(page, url: str, nickname: str) -> None:
    """Open ``url``; on the sandbox's consent screen (WeChat's web authorisation) pick ``nickname``."""
    page.goto(url)
    if "/connect/oauth2/authorize" in page.url:
        page.click(f"a:text-is('{nickname}')")
    page.wait_for_load_state()
