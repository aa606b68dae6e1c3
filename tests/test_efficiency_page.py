"""The efficiency supervision page, the complaint form and the rating tablet in a real browser: a red
card arrives live while a supervisor watches, opens its case's timeline, and is answered by a correction
notice; the public complains and rates without an account."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from playwright.async_api import Browser

from tests.browser import DESKTOP, TABLET, Watch, log_in, screenshot
from tests.hall import MARKET, days_ago, event, market_system, send
from tests.helpers import Liandong


async def test_a_red_card_arrives_live_and_opens_its_case(liandong: Liandong, browser: Browser) -> None:
    system = await market_system(liandong)
    watch = Watch(liandong.base_url)
    page = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await page.goto(f"{liandong.base_url}/efficiency")
    await log_in(page, "supervisor")
    await page.wait_for_selector("#live.on")
    await page.wait_for_selector(f"#figures tbody tr:has-text('{MARKET}')")  # every department of the hall
    assert await page.locator("#cards li").count() == 0

    start = days_ago(1)
    for n, stage, actor in ((1, "accept", "张敏"), (2, "review", "李强"), (3, "approve", "李强")):
        status, sent = await send(liandong, system, event("LIVE-1", n, "stage", start + timedelta(hours=n), stage,
                                                          actor=actor, window="3号窗口", documents=["营业执照"]))
        assert status == 201, sent
    # Pushed, not polled: the page never asks for cards after its welcome.
    red = page.locator("#cards li.card.red", has_text="审核审批同一人")
    await red.wait_for(timeout=5000)
    assert "LIVE-1" in await red.inner_text()
    await screenshot(page, "efficiency-red-card")

    await red.click()
    await page.wait_for_selector("#case-section:not(.hidden)")
    timeline = await page.inner_text("#case-events")
    assert "受理" in timeline and "审批" in timeline and "李强" in timeline
    await page.select_option("#correction-form select[name=card_id]", index=1)
    await page.fill("#correction-form input[name=body]", "审核与审批不得由同一人办理，请整改")
    await page.click("#correction-form button")
    await page.wait_for_selector("#case-corrections li:has-text('发出')")
    await screenshot(page, "efficiency-case")
    watch.assert_clean()


async def test_the_centre_imports_a_catalogue_from_a_spreadsheet_on_the_page(liandong: Liandong, browser: Browser,
                                                                             tmp_path: Path) -> None:
    watch = Watch(liandong.base_url)
    page = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await page.goto(f"{liandong.base_url}/efficiency")
    await log_in(page, "supervisor")
    await page.wait_for_selector("#items tbody tr:has-text('SC-001')")
    bad, good = tmp_path / "bad.csv", tmp_path / "items.csv"
    bad.write_text("部门,事项编码,事项名称,法定时限,承诺时限\n市场监管局,SC-080,x,5,9\n", encoding="utf-8")
    good.write_text("部门,事项编码,事项名称,法定时限,承诺时限\n市场监管局,SC-080,食品摊贩登记,5,3\n", encoding="utf-8")
    await page.set_input_files("#items-import input[type=file]", str(bad))
    await page.click("#items-import button")
    await page.wait_for_selector("#items-error:has-text('rows[1].promised_days')")
    await page.set_input_files("#items-import input[type=file]", str(good))
    await page.click("#items-import button")
    await page.wait_for_selector("#items tbody tr:has-text('食品摊贩登记')")
    assert "新增 1" in await page.inner_text("#items-imported")
    assert await page.inner_text("#items-error") == ""
    watch.assert_clean()


async def test_the_public_complains_and_rates_at_the_window_without_an_account(liandong: Liandong,
                                                                               browser: Browser) -> None:
    system = await market_system(liandong)
    watch = Watch(liandong.base_url)
    context = await browser.new_context(viewport=TABLET)
    tablet = watch.page(await context.new_page())
    await tablet.goto(f"{liandong.base_url}/rate?department={MARKET}&window=3号窗口")
    await tablet.wait_for_selector("#idle:not(.hidden)")
    status, _ = await send(liandong, system, event("RATE-1", 1, "stage", days_ago(0), "accept", window="3号窗口",
                                                   documents=["营业执照"]))
    assert status == 201
    await tablet.wait_for_selector("#offer:not(.hidden)", timeout=10000)  # the tablet looks every 3 s
    assert "RATE-1" in await tablet.inner_text("#case")
    await screenshot(tablet, "efficiency-rating-tablet")
    await tablet.click("[data-verdict=basically]")
    await tablet.wait_for_selector("#idle:not(.hidden)")
    status, cases = await liandong.call("GET", "/api/efficiency/cases?state=all", as_user="supervisor")
    status, case = await liandong.call("GET", f"/api/efficiency/cases/{cases[0]['id']}", as_user="supervisor")
    assert [(r["moment"], r["verdict"]) for r in case["ratings"]] == [("accepted", "basically")]

    form = watch.page(await context.new_page())
    await form.goto(f"{liandong.base_url}/complain")
    await form.wait_for_selector(f"#complaint select[name=department] option[value='{MARKET}']", state="attached")
    await form.select_option("#complaint select[name=department]", MARKET)
    await form.fill("#complaint textarea[name=body]", "窗口工作人员态度生硬，材料一次告知不清。")
    await form.fill("#complaint input[name=complainant]", "陈先生")
    await form.fill("#complaint input[name=contact]", "13900000000")
    await form.fill("#complaint input[name=case]", "NO-SUCH")  # no such case: the server says which field
    await form.click("#complaint button")
    await form.wait_for_function("() => document.getElementById('error').textContent.startsWith('case:')")
    await form.fill("#complaint input[name=case]", "")
    await form.click("#complaint button")
    await form.wait_for_selector("#done:not(.hidden)")
    status, complaints = await liandong.call("GET", "/api/efficiency/complaints", as_user="supervisor")
    assert [(c["channel"], c["complainant"], c["department"]) for c in complaints] == [("public", "陈先生", MARKET)]
    assert str(complaints[0]["id"]) in await form.inner_text("#done")
    watch.assert_clean()
