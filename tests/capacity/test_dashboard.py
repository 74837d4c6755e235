"""The dashboard in a real browser (Debian's headless Chromium through Selenium) against a live gateway on
loopback: numbers per region and category, stale sources marked in text and outline, drill-down by keyboard
with the 24 h trend, labelled controls and readable contrast, and live updates over the websocket (a feed
write shows up on the page without polling). Screenshots go to var/test-output/capacity/."""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from starlette.testclient import TestClient

from gateway.app import build_services, create_app
from gateway.capacity.dashboard import PATH
from tests.auth.fixtures import GatewayTokenAuth, obtain_token
from tests.capacity.conftest import capacity_settings
from tests.capacity.helpers import at, row

webdriver = pytest.importorskip("selenium.webdriver")
pytestmark = pytest.mark.skipif(not (shutil.which("chromium") and shutil.which("chromedriver")),
                                reason="needs Debian's chromium and chromium-driver (scripts/ensure-chromium.sh)")
SCREENSHOTS = Path("var/test-output/capacity")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    database_url = f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'gateway.db'}"
    services = build_services(capacity_settings(database_url))
    app = create_app(services=services)
    with TestClient(app) as client:
        client.auth = GatewayTokenAuth(app, database_url)
        fed = client.post("/ingest/capacity", json=[
            row("66666661", "IC-Utrecht", "zh-ic", 5, 2, at(5), "midden-nederland"),
            row("66666662", "SEH-Utrecht", "zh-seh", 4, 0, at(5), "midden-nederland"),
            row("66666663", "IC-Nijmegen", "zh-ic", 6, 3, at(600), "oost"),  # 10 h old: stale for IC
            row("66666665", "IC-Amersfoort", "zh-ic", 3, 0, at(60 * 20), "midden-nederland"),  # the trend's start
            row("66666664", "Crisis-Leiden", "ggz-crisisbed", 2, 0, at(5), "west"),  # full
        ])
        assert fed.json()["applied"] == 5, fed.text
        later = client.post("/ingest/capacity", json=[row("66666665", "IC-Amersfoort", "zh-ic", 3, 1, at(30),
                                                          "midden-nederland")])  # 20 h ago 0 free, now 1
        assert later.json()["applied"] == 1, later.text
    token = obtain_token(app, database_url)["access_token"]
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", token
    server.should_exit = True
    thread.join(timeout=10)
    services.capacity.hub.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=shutil.which("chromedriver")),
                              options=options)
    yield driver
    driver.quit()


def _wait(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("the page did not get there in time")


def _cell(driver, region: str, group: str):  # type: ignore[no-untyped-def]
    return driver.find_element("css selector", f'td[data-region="{region}"][data-group="{group}"]')


def _luminance(css_colour: str) -> float:
    channels = [int(v) / 255 for v in re.findall(r"\d+", css_colour)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(foreground: str, background: str) -> float:
    high, low = sorted((_luminance(foreground), _luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_dashboard_shows_regions_stale_sources_and_drills_down(live, browser) -> None:  # type: ignore[no-untyped-def]
    base, token = live
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.get(f"{base}{PATH}#token={token}")
    _wait(lambda: browser.find_element("id", "status").text.startswith("Bijgewerkt"))
    assert "token" not in browser.current_url  # taken from the fragment, then removed
    hospital = _cell(browser, "midden-nederland", "ziekenhuis")
    assert hospital.text == "3 / 12" and "stale" not in hospital.get_attribute("class")
    stale = _cell(browser, "oost", "ziekenhuis")
    assert stale.text.splitlines() == ["3 / 6", "verouderd"] and "stale" in stale.get_attribute("class")
    assert _cell(browser, "limburg", "ziekenhuis").text == "–"  # nothing reported there
    full = _cell(browser, "west", "ggz").find_element("tag name", "button")
    assert full.text == "0 / 2" and full.get_attribute("class") == "none"
    browser.save_screenshot(str(SCREENSHOTS / "dashboard.png"))

    # keyboard only: focus the cell's button and press Enter
    button = hospital.find_element("tag name", "button")
    assert button.get_attribute("aria-label") == "Ziekenhuiszorg in Netwerk Acute Zorg Midden-Nederland"
    browser.execute_script("arguments[0].focus()", button)
    browser.switch_to.active_element.send_keys("\n")
    _wait(lambda: len(browser.find_elements("css selector", "#detail li")) == 3)
    items = sorted(li.text for li in browser.find_elements("css selector", "#detail li"))
    assert any("2 vrij van 5" in item for item in items) and any("0 vrij van 4" in item for item in items), items
    # the 24 h trend of the cell as a table: 20 h ago only Amersfoort (0 of 3), now 3 of 12
    trend = browser.find_element("id", "trend-table")
    assert "24 uur" in trend.find_element("tag name", "caption").text
    rows = [[cell.text for cell in tr.find_elements("css selector", "th, td")]
            for tr in trend.find_elements("css selector", "tbody tr")]
    assert rows[-1][1:] == ["3", "12"], rows
    assert ["0", "3"] in [r[1:] for r in rows], rows
    browser.execute_script("document.getElementById('detail').scrollIntoView()")
    browser.save_screenshot(str(SCREENSHOTS / "dashboard-drilldown.png"))


def test_dashboard_is_labelled_and_readable(live, browser) -> None:  # type: ignore[no-untyped-def]
    base, token = live
    browser.get(f"{base}{PATH}#token={token}")
    _wait(lambda: browser.find_element("id", "status").text.startswith("Bijgewerkt"))
    field = browser.find_element("id", "token")
    assert browser.find_element("css selector", 'label[for="token"]').text
    assert field.get_attribute("type") == "password"
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    for selector in ("h1", "td button.free", "td button.none", "td button.empty", ".stale-mark", "caption"):
        colour = browser.execute_script(f"return getComputedStyle(document.querySelector('{selector}')).color")
        assert _contrast(colour, background) >= 4.5, (selector, colour, background)
    headers = browser.find_elements("css selector", "#grid th[scope=col]")
    assert len(headers) == 13  # Regio + 12 category groups


def test_without_a_token_the_page_says_why(live, browser) -> None:  # type: ignore[no-untyped-def]
    base, _ = live
    browser.get(f"{base}/")
    browser.execute_script("sessionStorage.clear()")
    browser.get(f"{base}{PATH}")
    _wait(lambda: browser.find_element("id", "status").text.startswith("Niet geladen"))
    assert "token" in browser.find_element("id", "status").text
    assert _cell(browser, "oost", "ziekenhuis").text == "–"


def _open(browser, base: str, token: str) -> None:  # type: ignore[no-untyped-def]
    browser.get("about:blank")  # from the same page, only the fragment would change: no reload
    browser.get(f"{base}{PATH}#token={token}")


def test_cells_carry_the_24h_trend(live, browser) -> None:  # type: ignore[no-untyped-def]
    base, token = live
    _open(browser, base, token)
    _wait(lambda: browser.find_element("id", "status").text.startswith("Bijgewerkt"))
    button = _cell(browser, "midden-nederland", "ziekenhuis").find_element("tag name", "button")
    _wait(lambda: button.find_elements("css selector", "svg.trend polyline"))
    assert button.find_element("css selector", "svg").get_attribute("aria-hidden") == "true"
    description = browser.find_element("id", button.get_attribute("aria-describedby"))
    text = browser.execute_script("return arguments[0].textContent", description)
    assert text.startswith("Verloop vrij: 0 van 3") and "nu 3 van 12" in text, text
    assert not _cell(browser, "limburg", "ziekenhuis").find_elements("css selector", "svg")  # nothing reported
    # a group whose first category has no reports still shows the trend of the others (IC in oost, stale)
    assert _cell(browser, "oost", "ziekenhuis").find_elements("css selector", "svg.trend polyline")


def test_a_feed_write_arrives_live_without_polling(live, browser) -> None:  # type: ignore[no-untyped-def]
    base, token = live
    _open(browser, base, token)
    _wait(lambda: browser.find_element("id", "live").text == "Live: verbonden")
    # no polling: with nothing changing, the page makes no request at all
    browser.execute_script("window.requests = 0; const original = window.fetch;"
                           "window.fetch = (...args) => { window.requests++; return original(...args); };")
    time.sleep(3)
    assert browser.execute_script("return window.requests") == 0
    target = _cell(browser, "zuidwest", "ziekenhuis")
    assert target.text == "–"
    browser.save_screenshot(str(SCREENSHOTS / "dashboard-live-before.png"))
    response = httpx.post(f"{base}/ingest/capacity", headers={"Authorization": f"Bearer {token}"},
                          json=[row("66666666", "IC-Rotterdam", "zh-ic", 4, 3, at(1), "zuidwest")], timeout=30)
    assert response.json()["applied"] == 1, response.text
    started = time.monotonic()
    _wait(lambda: _cell(browser, "zuidwest", "ziekenhuis").text == "3 / 4", timeout=15)
    arrived = time.monotonic() - started
    browser.save_screenshot(str(SCREENSHOTS / "dashboard-live-after.png"))
    assert arrived < 10, f"the update took {arrived:.1f} s"
    assert browser.execute_script("return window.requests") >= 1  # it was the notification that refreshed
    # the token went in the first websocket message, never in a URL
    assert "token" not in browser.current_url
