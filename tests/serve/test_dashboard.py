"""The dashboard in a real browser: headless Chromium (Selenium, Debian's chromedriver) against a
real `dpsynth serve` process on the team demo.

Login through a one-time link (the code leaves the address bar and works once), the spend after
a job and a remote measurement (burn-down, per-person table, entries with their purposes), a
ledger edited behind the service's back (the red banner names the entry), researcher-supplied
text that tries to run script (shown as text, never run), no data without a session, and the
export link's JSONL verifying offline."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from pathlib import Path

import pytest
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from accountant.verify import verify_path
from dpsynth.remote import ServiceError

from .browser import console_problems, start_chromium
from .support import LiveService, team_workspace

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

WAIT = 30.0


# -------------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def live(tmp_path_factory):
    paths = team_workspace(tmp_path_factory.mktemp("dash-team"))
    with LiveService(paths) as service:
        yield service


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(browser):
    """The browser with no session and nothing logged (each test starts signed out)."""
    browser.get("about:blank")
    browser.delete_all_cookies()
    browser.get_log("browser")
    yield browser
    assert console_problems(browser) == []


# -------------------------------------------------------------------------------- helpers

def wait_for(driver, condition, message: str, timeout: float = WAIT):
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))
    except TimeoutException:
        text = driver.find_element(By.TAG_NAME, "body").text
        raise AssertionError(f"{message}; the page shows:\n{text[:3000]}") from None


def text_of(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def section(driver, dataset: str = "demo"):
    return driver.find_element(By.CSS_SELECTOR, f'section.dataset[data-dataset="{dataset}"]')


def log_in(driver, live: LiveService, person: str = "audrey") -> None:
    path = live.client(person).login_path()
    assert path.startswith("/dashboard/#login=")
    driver.get(live.url + path)
    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "section.dataset .verify"),
             "the dashboard did not load its datasets after login")
    assert "#" not in driver.current_url and "login=" not in driver.current_url


def refresh_until(driver, condition, message: str) -> None:
    """Press "Refresh now" until the condition holds (the page also refreshes by itself every 10 s)."""
    deadline = time.monotonic() + WAIT
    while True:
        driver.find_element(By.ID, "refresh").click()
        try:
            wait_for(driver, condition, message, timeout=2.0)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise


# -------------------------------------------------------------------------------- tests

def test_a_login_link_opens_the_dashboard_once_and_leaves_the_address_bar(page, live):
    log_in(page, live)
    body = text_of(page)
    assert "Signed in as audrey (auditor)" in body
    ok = section(page).find_element(By.CSS_SELECTOR, ".verify.ok .verify-text").text
    assert ok.startswith("verified:") and "entries, head #" in ok
    assert section(page).find_element(By.CSS_SELECTOR, ".dataset-name").text == "demo"
    assert "Last updated" in body and page.find_element(By.ID, "updated").text != "never"
    assert page.execute_script("return window.location.hash") == ""


def test_the_page_shows_the_spend_after_a_job_and_a_remote_measurement(page, live, tmp_path):
    alice = live.client("alice")
    job = alice.submit_job("demo", "independent", epsilon=0.2, n_samples=20, parameters={"iters": 50})
    table = alice.table("demo")
    table.measure_marginals([("sex", "income")], 40.0, purpose="sex by income, for the quarterly report",
                            generator="mst", run_id="report-q3")
    live.client("bob").measure("demo", "count", {"sigma": 20.0, "purpose": "how many respondents",
                                                 "generator": "mst"})
    assert alice.wait(job["id"], timeout=120, poll=0.2)["state"] == "succeeded"
    log_in(page, live)
    refresh_until(page, lambda d: "sex by income, for the quarterly report" in text_of(d)
                  and "Independent: 1-way marginals" in text_of(d), "the charges did not appear")
    s = section(page)
    people = s.find_element(By.CSS_SELECTOR, 'table.spend-table[data-kind="person"]')
    assert {"alice", "bob"} <= {th.text for th in people.find_elements(By.CSS_SELECTOR, "tbody th")}
    generators = s.find_element(By.CSS_SELECTOR, 'table.spend-table[data-kind="generator"]').text
    assert "independent" in generators and "mst" in generators
    # The burn-down has a point per charge and the numbers the service reports.
    summary = live.client("audrey").summary("demo")
    points = s.find_elements(By.CSS_SELECTOR, "svg.burn circle.point")
    assert len(points) == len(summary["burn_down"]) >= 2
    assert [int(p.get_attribute("data-sequence")) for p in points] == [b["sequence"] for b in summary["burn_down"]]
    assert s.find_element(By.CSS_SELECTOR, "svg.burn").get_attribute("aria-label").startswith("Budget burn-down")
    s = section(page)
    kinds = [td.text for td in s.find_elements(By.CSS_SELECTOR, "table.entry-table td.kind")]
    assert kinds.count("charge") >= 2 and "seal" in kinds and "release" in kinds
    actors = {td.text for td in s.find_elements(By.CSS_SELECTOR, "table.entry-table td.actor")}
    assert "alice" in actors
    # A row opens on its full signed entry (its receipt).
    row = s.find_element(By.XPATH, ".//tr[contains(@class,'entry')][td[@class='purpose' and "
                                   "text()='sex by income, for the quarterly report']]")
    row.find_element(By.CSS_SELECTOR, "button.expand").click()
    detail = page.find_element(By.ID, row.find_element(By.CSS_SELECTOR, "button.expand").get_attribute("aria-controls"))
    entry = json.loads(detail.text)
    assert entry["purpose"] == "sex by income, for the quarterly report" and entry["signature"] and entry["entry_hash"]
    assert entry["run_id"] == "alice/report-q3"
    height = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(1280, min(height + 140, 5000))
    shot = tmp_path / "dashboard.png"
    assert page.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    page.set_window_size(1280, 1000)
    # The whole budget, with its line.
    s.find_element(By.XPATH, ".//button[normalize-space()='Show the whole budget']").click()
    wait_for(page, lambda d: section(d).find_elements(By.CSS_SELECTOR, "svg.burn line.budget-line"),
             "the budget line did not appear")


@contextlib.contextmanager
def edited_entry(ledger: Path, sequence: int, edit):
    """Edit one entry's JSON body as an attacker with write access to the file would (sqlite3,
    the append-only triggers dropped), behind the running service's back; put the original
    bytes back afterwards so that the module's other tests see an intact ledger."""
    conn = sqlite3.connect(ledger, isolation_level=None)
    try:
        triggers = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'").fetchall()
        for name, _ in triggers:
            conn.execute(f"DROP TRIGGER {name}")
        original = conn.execute("SELECT body FROM entries WHERE sequence = ?", (sequence,)).fetchone()[0]
        body = json.loads(original)
        edit(body)
        conn.execute("UPDATE entries SET body = ? WHERE sequence = ?",
                     (json.dumps(body, sort_keys=True, separators=(",", ":")), sequence))
        try:
            yield body
        finally:
            conn.execute("UPDATE entries SET body = ? WHERE sequence = ?", (original, sequence))
            for _, sql in triggers:
                conn.execute(sql)
    finally:
        conn.close()


def test_a_ledger_edited_behind_the_services_back_raises_the_red_banner(page, live):
    bob = live.client("bob")
    out = bob.measure("demo", "count", {"sigma": 40.0, "purpose": "how many rows", "generator": "mst"})
    seq = out["receipts"][0]["sequence"]
    log_in(page, live)
    assert section(page).find_elements(By.CSS_SELECTOR, ".verify.ok")

    def edit(body):
        body["purpose"], body["cost"] = "nothing to see here", body["cost"] / 10

    with edited_entry(live.paths["ledger"], seq, edit):
        page.refresh()
        wait_for(page, lambda d: d.find_elements(By.CSS_SELECTOR, "section.dataset .verify.bad"),
                 "no red banner after the ledger was edited")
        banner = section(page).find_element(By.CSS_SELECTOR, ".verify.bad")
        assert banner.get_attribute("role") == "alert"
        assert "verification FAILED" in banner.text
        problems = [li.text for li in banner.find_elements(By.TAG_NAME, "li")]
        assert any(p.startswith(f"entry #{seq}:") and "does not match its hash" in p for p in problems), problems
        assert any(p.startswith(f"entry #{seq}:") and "cost" in p for p in problems), problems
        assert not section(page).find_elements(By.CSS_SELECTOR, ".verify.ok")
        # The edited entry is marked in the table, and the headline is marked unverified.
        bad = section(page).find_elements(By.CSS_SELECTOR, "table.entry-table tr.entry.bad")
        assert [r.get_attribute("data-sequence") for r in bad] == [str(seq)]
        assert "nothing to see here" in bad[0].text and "does not verify" in bad[0].text
        assert section(page).find_elements(By.CSS_SELECTOR, ".headline.unverified")
    # The original bytes back: the next refresh is green again.
    refresh_until(page, lambda d: section(d).find_elements(By.CSS_SELECTOR, ".verify.ok"),
                  "the banner stayed after the ledger was restored")


XSS = ("<img src=x onerror=window.__pwned=1>", "<script>window.__pwned=1</script>")


def test_researcher_supplied_text_is_shown_as_text_and_never_runs(page, live):
    alice = live.client("alice")
    for i, purpose in enumerate(XSS):
        alice.measure("demo", "count", {"sigma": 40.0, "purpose": purpose, "generator": "mst",
                                        "parameters": {"note": purpose, "<b>key</b>": i}})
    log_in(page, live)
    refresh_until(page, lambda d: all(p in text_of(d) for p in XSS), "the purposes did not appear as text")
    purposes = [td.text for td in section(page).find_elements(By.CSS_SELECTOR, "table.entry-table td.purpose")]
    assert all(p in purposes for p in XSS)
    # Open both entries: their parameters are shown as JSON text too.
    for purpose in XSS:
        literal = json.dumps(purpose)  # an XPath string literal (no double quotes inside)
        row = section(page).find_element(By.XPATH, f".//tr[contains(@class,'entry')][td[@class='purpose' and "
                                                   f"text()={literal}]]")
        row.find_element(By.CSS_SELECTOR, "button.expand").click()
    details = [d.text for d in section(page).find_elements(By.CSS_SELECTOR, "tr.detail pre") if d.text]
    assert any('"<b>key</b>"' in d and json.dumps(XSS[0]) in d for d in details)
    assert page.execute_script("return typeof window.__pwned") == "undefined"
    assert page.execute_script("return document.querySelectorAll('main img, main script').length") == 0


def test_a_code_works_once_researchers_get_none_and_no_session_shows_no_data(page, live):
    path = live.client("olivia").login_path()
    page.get(live.url + path)
    wait_for(page, lambda d: d.find_elements(By.CSS_SELECTOR, "section.dataset"), "the officer's link did not work")
    assert "Signed in as olivia (officer)" in text_of(page)
    # Logging out ends the session: the service refuses the cookie from now on.
    page.find_element(By.ID, "logout").click()
    wait_for(page, lambda d: d.find_element(By.ID, "login").is_displayed(), "logging out did not sign out")
    assert not page.find_elements(By.CSS_SELECTOR, "section.dataset")
    # The same link again, in a browser with no session: refused, and the page says how to get one.
    page.get("about:blank")
    page.delete_all_cookies()
    page.get(live.url + path)
    wait_for(page, lambda d: "already used or expired" in d.find_element(By.ID, "notice").text,
             "a used code was not refused")
    assert page.find_element(By.ID, "login").is_displayed()
    body = text_of(page)
    assert f"dpsynth service login {live.url} --key YOUR-KEY" in body
    assert "#" not in page.current_url
    assert not page.find_elements(By.CSS_SELECTOR, "section.dataset") and "demo" not in body
    assert not page.find_element(By.ID, "session").is_displayed()
    # A researcher cannot ask for a code.
    with pytest.raises(ServiceError) as info:
        live.client("alice").login_path()
    assert info.value.status == 403
    # No session at all: the instructions, no data, and the API refuses the browser.
    page.get(live.url + "/dashboard/")
    wait_for(page, lambda d: d.find_element(By.ID, "login").is_displayed(), "no login instructions without a session")
    assert not page.find_elements(By.CSS_SELECTOR, "section.dataset")
    status = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/v1/ledgers/demo/summary', {credentials: 'same-origin'}).then(r => done(r.status));""")
    assert status == 401
    # A new link pasted into this tab changes only the fragment: the page notices and signs in.
    page.get(live.url + live.client("audrey").login_path())
    wait_for(page, lambda d: d.find_elements(By.CSS_SELECTOR, "section.dataset .verify"),
             "a link opened in a tab that shows the instructions did not sign in")
    assert "#" not in page.current_url and "Signed in as audrey" in text_of(page)


def test_the_export_link_downloads_a_ledger_that_verifies(page, live, tmp_path):
    live.client("bob").measure("demo", "count", {"sigma": 40.0, "purpose": "for the export", "generator": "mst"})
    log_in(page, live)
    link = section(page).find_element(By.CSS_SELECTOR, "a.download")
    href = link.get_attribute("href")
    assert href == live.url + "/api/v1/ledgers/demo/export" and link.get_attribute("download") == "demo-ledger.jsonl"
    # What the link fetches, with the browser's session cookie.
    got = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'}).then(async r => done({
            status: r.status, disposition: r.headers.get('content-disposition'), body: await r.text()}));""", href)
    assert got["status"] == 200 and got["disposition"].startswith("attachment")
    exported = tmp_path / "demo-ledger.jsonl"
    exported.write_text(got["body"])
    report = verify_path(exported, officer_public_key=live.paths["officer_pub"],
                         ledger_public_key=live.paths["ledger_pub"])
    assert report.ok, report.summary()
    assert report.entries == live.client("audrey").summary("demo")["entries"]
    assert any(json.loads(line).get("purpose") == "for the export" for line in got["body"].splitlines() if line)


def test_the_pages_files_carry_the_policy_and_use_no_inline_code(live):
    import httpx

    r = httpx.get(live.url + "/dashboard/")
    assert r.status_code == 200 and "default-src 'none'" in r.headers["content-security-policy"]
    html = r.text
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org', "") and "https://" not in html
    for asset in ("dashboard.js", "dashboard.css"):
        a = httpx.get(f"{live.url}/dashboard/{asset}")
        assert a.status_code == 200 and a.headers["x-content-type-options"] == "nosniff"
        assert "https://" not in a.text and "innerHTML" not in a.text and "eval(" not in a.text
    source = Path(__file__).parents[2] / "dpsynth" / "serve" / "dashboard" / "dashboard.js"
    assert "insertAdjacentHTML" not in source.read_text() and "document.write" not in source.read_text()
