"""The app in a real browser: `streamlit run app.py` on a local port, driven by Chromium.

Skipped where Chromium or Playwright is missing, unless RESNET_VIZ_REQUIRE_BROWSER is set, as
`.ci/run` does after `./dev system` has installed Debian's chromium. Each test saves a screenshot
of its page, into the test's temporary folder, or into RESNET_VIZ_SCREENSHOTS where that is set
(`RESNET_VIZ_SCREENSHOTS=/tmp/shots ./dev test tests/test_browser.py`, to look at them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REQUIRED = bool(os.environ.get("RESNET_VIZ_REQUIRE_BROWSER"))

try:
    from playwright.sync_api import Page, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]

pytestmark = pytest.mark.skipif(
    (CHROMIUM is None or sync_playwright is None) and not REQUIRED,
    reason="Chromium or Playwright is not installed (./dev system installs Chromium)",
)
SHOTS = os.environ.get("RESNET_VIZ_SCREENSHOTS")
# The first page of a fresh server traces its network; later pages are quicker.
LOAD_TIMEOUT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the app did not start within 60 s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def page(app_url: str) -> Iterator[Page]:
    assert sync_playwright is not None and CHROMIUM is not None, "Chromium and Playwright needed"
    outside: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        tab.on(
            "request",
            lambda request: (
                outside.append(request.url)
                if not request.url.startswith((app_url, "data:", "blob:", "about:"))
                else None
            ),
        )
        tab.set_default_timeout(LOAD_TIMEOUT_MS)
        yield tab
        browser.close()
    # The app works in a lecture hall without network: it asks nothing of anyone else.
    assert outside == []


def _settled(page: Page) -> None:
    """Wait until the script has finished its run (Streamlit's status widget disappears)."""
    page.wait_for_selector("[data-testid=stApp]")
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=stStatusWidget]')",
        timeout=LOAD_TIMEOUT_MS,
    )
    page.wait_for_timeout(500)
    assert page.locator("[data-testid=stException]").count() == 0


def _screenshot(page: Page, tmp_path: Path, name: str) -> None:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"app-{name}.png"))


def test_build_page_and_the_preset_picker(page: Page, app_url: str, tmp_path: Path) -> None:
    page.goto(f"{app_url}/?model=resnet50")
    _settled(page)
    page.get_by_text("25.6M").first.wait_for()
    assert page.get_by_role("heading", name="resnet50").count() == 1

    page.locator("[data-testid=stSidebar] [data-testid=stSelectbox]").first.click()
    page.get_by_role("option", name="resnet18", exact=True).click()
    _settled(page)
    page.get_by_text("11.7M").first.wait_for()
    assert "model=resnet18" in page.url
    _screenshot(page, tmp_path, "build")


def test_architecture_page_draws_the_diagram(page: Page, app_url: str, tmp_path: Path) -> None:
    page.goto(f"{app_url}/architecture?model=resnet34")
    _settled(page)
    frame = page.frame_locator("iframe").first
    frame.locator("svg").wait_for()
    text = frame.locator("svg").text_content() or ""
    assert "layer4.0" in text and "512×7×7" in text
    _screenshot(page, tmp_path, "architecture")


def test_activations_page_shows_maps_for_an_uploaded_photo(
    page: Page, app_url: str, tmp_path: Path
) -> None:
    page.goto(f"{app_url}/activations?model=resnet18")
    _settled(page)
    page.get_by_text("scaled per channel").first.wait_for()

    page.get_by_role("radio", name="Upload").click()
    _settled(page)
    page.locator("input[type=file]").set_input_files(str(ROOT / "assets" / "coffee.png"))
    _settled(page)
    page.get_by_text("coffee.png: 600x400").first.wait_for()
    grid = page.locator("[data-testid=stImage] img")
    assert grid.count() >= 3  # the photo, the network's view and the feature maps
    page.get_by_text("layer3.1.relu (2), 256x14x14").first.wait_for()
    _screenshot(page, tmp_path, "activations")


def test_switching_pages_keeps_the_view_in_the_link(page: Page, app_url: str) -> None:
    # Streamlit 1.67 empties the query string when st.navigation switches pages; the app
    # writes the session's model and input settings back on every run.
    page.goto(f"{app_url}/?model=resnet18~se-1&batch=4&dtype=float16")
    _settled(page)
    page.get_by_role("link", name="Architecture").click()
    _settled(page)
    assert "/architecture?model=resnet18~se-1&batch=4&dtype=float16" in page.url
    page.get_by_role("link", name="Build").click()
    _settled(page)
    page.get_by_text("For a batch of 4 at 224x224 in float16").first.wait_for()
    assert page.get_by_role("heading", name="resnet18 with se=True").count() == 1

    page.goto(f"{app_url}/activations?model=resnet18&sample=coffee&layer=layer2.1.conv1")
    _settled(page)
    page.get_by_text("layer2.1.conv1, 128x28x28").first.wait_for()
    assert "sample=coffee" in page.url and "layer=layer2.1.conv1" in page.url


def test_lecture_page_keys_folded_sidebar_and_focused_diagram(
    page: Page, app_url: str, tmp_path: Path
) -> None:
    page.set_viewport_size({"width": 1280, "height": 720})  # a projector
    page.goto(f"{app_url}/lecture?model=resnet18&step=3")
    _settled(page)
    page.locator(".lec-title", has_text="Stage 1").wait_for()
    # Out of the way for the hall, one click away for the lecturer.
    assert not page.locator("[data-testid=stSidebar]").is_visible()

    page.keyboard.press("ArrowRight")
    page.locator(".lec-title", has_text="Stage 2").wait_for()
    _settled(page)

    assert "step=4" in page.url
    # The diagram's frame has scrolled down to the highlighted conv3_x.
    (frame,) = [f for f in page.frames[1:] if f.locator("svg").count()]
    scrolled, height = frame.evaluate("() => [window.scrollY, window.innerHeight]")
    assert scrolled > 0
    top = frame.evaluate(
        "() => [...document.querySelectorAll('g.node')].find(g => "
        "g.querySelector('title').textContent === 'layer2').getBoundingClientRect().top"
    )
    assert 0 <= top < height
    _screenshot(page, tmp_path, "lecture")
    page.set_viewport_size({"width": 1400, "height": 900})


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("compute?model=resnet50", "Basic block vs bottleneck"),
        ("compare?model=resnet50&compare=resnet34,resnet50", "Diagram difference"),
        ("gradients?model=resnet20", "Gradient flow at initialisation"),
    ],
)
def test_each_other_page_draws_its_charts(
    page: Page, app_url: str, tmp_path: Path, path: str, expected: str
) -> None:
    page.goto(f"{app_url}/{path}")
    _settled(page)
    page.get_by_text(expected).first.wait_for()
    # Plotly draws into an SVG of its own once the chart has data.
    page.locator("[data-testid=stPlotlyChart] .main-svg").first.wait_for()
    _screenshot(page, tmp_path, path.split("?")[0])
