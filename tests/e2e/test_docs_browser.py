"""/docs and /docs/redoc render in a real headless browser that can reach nothing but the API."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.conftest import missing_service
from tests.e2e.conftest import Served

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def headless_browser() -> str:
    named = os.environ.get("BOOKING_TEST_BROWSER")
    found = named or next((path for b in BROWSERS if (path := shutil.which(b))), None)
    if not found:
        missing_service(
            "docs browser test skipped: no headless browser on PATH (install Debian's "
            "`chromium`, or set BOOKING_TEST_BROWSER)"
        )
    assert found is not None
    return found


def rendered_dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, fetched with every host but 127.0.0.1 unresolvable."""
    browser = headless_browser()
    completed = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            # No network: any host other than the API's is unresolvable, as on a machine
            # without internet (a CDN script would fail to load and the page stay blank).
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")[-2000:]
    # Only what the scripts rendered: the page's inline script holds the whole document, so a
    # summary found there would prove nothing.
    return re.sub(r"(?s)<script\b.*?</script>", "", completed.stdout.decode(errors="replace"))


def test_docs_page_loads_only_from_the_api_itself(served: Served) -> None:
    page = httpx.get(f"{served.base_url}/docs").text
    for marker in ("src=", "href="):
        for ref in page.split(marker)[1:]:
            target = ref[1:].split(ref[0], 1)[0]
            assert target.startswith("/"), f"/docs loads {target} from elsewhere"
    assert httpx.get(
        f"{served.base_url}/docs/assets/swagger-ui-dist/swagger-ui-bundle.js"
    ).is_success


def test_swagger_ui_renders_every_operation_offline(served: Served, tmp_path: Path) -> None:
    dom = rendered_dom(f"{served.base_url}/docs", tmp_path / "profile")
    assert 'class="swagger-ui' in dom, dom[:2000]
    for summary in (
        "Create a provider",
        "Bookable slots of a provider",
        "Request a booking",
        "Poll a booking request",
        "Request a cancellation",
    ):
        assert summary in dom, f"{summary!r} not rendered by Swagger UI"
    assert dom.count('class="opblock ') >= 13  # one block per operation


def test_redoc_renders_offline(served: Served, tmp_path: Path) -> None:
    dom = rendered_dom(f"{served.base_url}/docs/redoc", tmp_path / "profile")
    assert "redoc-wrap" in dom, dom[:2000]
    for summary in ("Create a provider", "Request a booking", "Poll a booking request"):
        assert summary in dom, f"{summary!r} not rendered by ReDoc"
    assert "urn:booking:problem:" in dom  # the description and examples are rendered too


@pytest.mark.parametrize("path", ["/docs", "/docs/redoc"])
def test_docs_pages_answer_html(served: Served, path: str) -> None:
    response = httpx.get(f"{served.base_url}{path}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
