"""The administration page in a real browser: an administrator makes an account with the form and
sees it, with its audit entry, as the server stored them; a supervisor sees only the audit log."""

from __future__ import annotations

from playwright.async_api import Browser

from tests.browser import DESKTOP, Watch, log_in, screenshot
from tests.helpers import STRONG, Liandong


async def test_an_administrator_makes_an_account_and_sees_it_in_the_table_and_the_log(
        liandong: Liandong, browser: Browser) -> None:
    watch = Watch(liandong.base_url)
    page = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await page.goto(f"{liandong.base_url}/admin")
    await log_in(page, "admin")
    await page.wait_for_selector("#accounts tbody tr")
    assert "dispatcher" in await page.inner_text("#accounts")
    assert "admin" in await page.inner_text("#sessions")  # this very session, from the server's list

    form = "#new-account"
    await page.fill(f"{form} input[name=username]", "tax-watch")
    await page.fill(f"{form} input[name=display_name]", "税务局监察员")
    await page.fill(f"{form} input[name=password]", "short")
    await page.select_option(f"{form} select[name=role]", "supervisor")
    await page.fill(f"{form} input[name=departments]", "税务局")
    await page.click(f"{form} button")
    await page.wait_for_function("() => document.getElementById('account-error').textContent !== ''")
    assert "password" in await page.inner_text("#account-error")  # the server's reason, naming the field
    await page.fill(f"{form} input[name=password]", STRONG)
    await page.click(f"{form} button")
    await page.wait_for_selector("#accounts tbody tr:has-text('tax-watch')")
    assert "税务局" in await page.inner_text("#accounts tbody tr:has-text('tax-watch')")
    await page.wait_for_selector("#audit tbody tr:has-text('account.create')")
    assert "user:tax-watch" in await page.inner_text("#audit")
    await screenshot(page, "admin-accounts")
    watch.assert_clean()


async def test_a_supervisor_sees_the_audit_log_but_not_the_accounts(liandong: Liandong, browser: Browser) -> None:
    watch = Watch(liandong.base_url)
    page = watch.page(await (await browser.new_context(viewport=DESKTOP)).new_page())
    await page.goto(f"{liandong.base_url}/admin")
    await log_in(page, "supervisor")
    await page.wait_for_selector("#audit tbody tr:has-text('session.login')")
    assert not await page.is_visible("#accounts-section")
    assert not await page.is_visible("#sessions-section")
    watch.assert_clean()
