"""A real browser (headless Chromium) posts the embed snippet from a landing page on another origin."""

from __future__ import annotations

import functools
import http.server
import threading
import time
import uuid

import httpx
import pytest
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from app.main import create_app
from tests.factories import PASSWORD, unique_email
from tests.servers import free_port


def serve_static(directory) -> tuple[str, http.server.ThreadingHTTPServer]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a: None  # type: ignore[assignment]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}", server


@pytest.fixture(scope="module")
def api_server(settings):
    """The real app on a real port, with its own connections (its own event loop)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings.model_copy(update={"form_rate_limit": 100})),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert time.monotonic() < deadline, "API server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    opts = Options()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1280,800"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)
    yield driver
    driver.quit()


FETCH_BUTTON = """
<button id="js" onclick="fetch('{action}', {{method: 'POST', headers: {{'Content-Type': 'application/json'}},
  body: JSON.stringify({{email: '{email}', first_name: 'Fetch'}})}})
  .then(r => r.json()).then(j => document.title = 'ok:' + j.id)
  .catch(e => document.title = 'blocked:' + e)">Send with fetch</button>
"""


def test_landing_page_posts_html_form_and_fetch_across_origins(api_server, browser, tmp_path):
    landing, landing_srv = serve_static(tmp_path)
    elsewhere, elsewhere_srv = serve_static(tmp_path)  # same page, another origin
    try:
        with httpx.Client(base_url=api_server, timeout=10) as api:
            email = unique_email("owner")
            signup = api.post("/v1/auth/signup", json={"org_name": "Web", "email": email, "password": PASSWORD,
                                                       "name": "Owner"}).json()
            auth = {"Authorization": f"Bearer {signup['access_token']}"}
            form = api.post("/v1/forms", headers=auth, json={
                "name": "Landing", "allowed_origins": [landing], "redirect_url": f"{landing}/thanks.html"}).json()
            embed = api.get(f"/v1/forms/{form['id']}/embed", headers=auth).json()
            assert embed["action_url"].startswith(api_server)
            html_email, fetch_email = unique_email("html"), unique_email("fetch")
            (tmp_path / "index.html").write_text(
                "<!doctype html><meta charset=utf-8><title>Landing</title>" + embed["html"]
                + FETCH_BUTTON.format(action=embed["action_url"], email=fetch_email))
            (tmp_path / "thanks.html").write_text("<!doctype html><title>Thanks</title><p>Thanks!")

            # (a) the plain HTML form: a navigation, lands on the redirect page
            browser.get(f"{landing}/index.html?utm_source=adwords&utm_campaign=fall")
            browser.find_element(By.NAME, "email").send_keys(html_email)
            browser.find_element(By.NAME, "first_name").send_keys("Hana")
            browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            WebDriverWait(browser, 15).until(lambda d: d.title == "Thanks")
            assert browser.current_url == f"{landing}/thanks.html"

            # (b) fetch() from the allowed origin: CORS passes and the page reads the answer
            browser.get(f"{landing}/index.html")
            browser.find_element(By.ID, "js").click()
            WebDriverWait(browser, 15).until(lambda d: d.title != "Landing")
            assert browser.title.startswith("ok:"), browser.title
            submission_id = browser.title[3:]
            uuid.UUID(submission_id)

            # (c) the same page on a non-allowed origin: the browser blocks it
            browser.get(f"{elsewhere}/index.html")
            browser.find_element(By.ID, "js").click()
            WebDriverWait(browser, 15).until(lambda d: d.title != "Landing")
            assert browser.title == "blocked:TypeError: Failed to fetch"
            assert any("CORS" in entry["message"] for entry in browser.get_log("browser"))

            leads = api.get("/v1/leads", headers=auth).json()["data"]
            by_email = {lead["email"]: lead for lead in leads}
            assert set(by_email) == {html_email, fetch_email}
            assert by_email[html_email]["first_name"] == "Hana"
            assert by_email[html_email]["utm"] == {"source": "adwords", "campaign": "fall"}
            subs = api.get(f"/v1/forms/{form['id']}/submissions", headers=auth).json()["data"]
            assert submission_id in {s["id"] for s in subs}
            page = next(s for s in subs if s["fields"].get("email") == html_email)
            assert page["page_url"].startswith(f"{landing}/index.html") and "HeadlessChrome" in page["user_agent"]
    finally:
        landing_srv.shutdown()
        elsewhere_srv.shutdown()


def test_the_json_snippet_sends_the_time_the_form_was_shown(api_server, browser, tmp_path):
    """A form with a minimum fill time: the JSON snippet records when it loaded (`_ts`), so a person who takes
    longer than that gets their lead (before, `_ts` was never set and every lead was dropped)."""
    landing, landing_srv = serve_static(tmp_path)
    try:
        with httpx.Client(base_url=api_server, timeout=10) as api:
            signup = api.post("/v1/auth/signup", json={"org_name": "Js", "email": unique_email("owner"),
                                                       "password": PASSWORD, "name": "Owner"}).json()
            auth = {"Authorization": f"Bearer {signup['access_token']}"}
            form = api.post("/v1/forms", headers=auth, json={
                "name": "Js", "allowed_origins": [landing], "min_fill_seconds": 1}).json()
            embed = api.get(f"/v1/forms/{form['id']}/embed", headers=auth).json()
            email = unique_email("js")
            (tmp_path / "js.html").write_text(
                "<!doctype html><meta charset=utf-8><title>Js</title><script>" + embed["javascript"] + "</script>"
                f"<button id=send onclick=\"sendLead({{email: '{email}', first_name: 'Jo'}})"
                ".then(r => r.json()).then(j => document.title = 'ok:' + j.id)"
                ".catch(e => document.title = 'failed:' + e)\">Send</button>")
            browser.get(f"{landing}/js.html")
            # a person takes a moment: wait until the minimum fill time has passed since the snippet loaded
            WebDriverWait(browser, 30).until(lambda d: d.execute_script("return Date.now() - shownAt") > 1500)
            browser.find_element(By.ID, "send").click()
            WebDriverWait(browser, 15).until(lambda d: d.title != "Js")
            assert browser.title.startswith("ok:"), browser.title
            leads = api.get("/v1/leads", headers=auth).json()["data"]
            assert [lead["email"] for lead in leads] == [email]
            assert api.get(f"/v1/forms/{form['id']}/submissions", headers=auth,
                           params={"status": "spam"}).json()["data"] == []
    finally:
        landing_srv.shutdown()
