"""``/docs`` works on an install with no internet: the Swagger UI page loads its JavaScript,
CSS and favicon from the server itself, never from a CDN."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.integration.conftest import Api, LiveServer
from tests.integration.test_email_browser import chromium_or_skip

ASSET_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
}


def referenced_urls(html: str) -> list[str]:
    """Every ``src`` and ``href`` the page loads."""
    return re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)


async def test_docs_reference_only_same_origin_assets_and_they_are_served(api: Api) -> None:
    page = await api.client.get("/docs")
    assert 200 == page.status_code
    urls = referenced_urls(page.text)
    assert 4 == len(urls), urls  # the CSS, the two scripts, the favicon

    off_site = [url for url in urls if urlsplit(url).netloc or not url.startswith("/")]
    assert [] == off_site, "the page must load nothing from another origin"
    for url in urls:
        asset = await api.client.get(url)  # no key: public like the page
        assert 200 == asset.status_code, url
        suffix = url[url.rindex(".") :]
        assert asset.headers["content-type"].startswith(ASSET_TYPES[suffix]), url
        assert asset.content, url


async def test_swagger_ui_renders_the_operations_with_the_network_cut_off(
    live_server: LiveServer,
) -> None:
    chromium = chromium_or_skip()
    from playwright.async_api import Route, async_playwright  # only where a browser will run

    blocked: list[str] = []

    async def same_origin_only(route: Route) -> None:
        if route.request.url.startswith(live_server.url + "/"):
            await route.continue_()
        else:
            blocked.append(route.request.url)
            await route.abort("internetdisconnected")

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            context = await browser.new_context()
            await context.route("**/*", same_origin_only)
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            shown = await page.goto(f"{live_server.url}/docs")
            assert shown is not None
            assert 200 == shown.status
            await page.wait_for_selector(".opblock", timeout=30_000)
            operations = await page.locator(".opblock").count()
            title = await page.inner_text(".info .title")
        finally:
            await browser.close()
    assert [] == blocked, "the page asked for something outside the server"
    assert [] == errors
    assert operations > 20, "Swagger UI rendered the API's operations"
    assert title.startswith("Preloop")
