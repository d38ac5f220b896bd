"""`/docs` works offline: the page names only paygrid's own URLs, and paygrid serves them."""

from __future__ import annotations

import re

import httpx
from pydantic import SecretStr

from engine.config import Settings
from serve_app.app import create_app


async def test_docs_reference_only_local_assets_and_they_are_served() -> None:
    app = create_app(Settings(secret_key=SecretStr("docs-" + "x" * 40)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        page = await client.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url: *'([^']+)'""", page.text)
        named = [u for pair in urls for u in pair if u]
        assert any(u.endswith("swagger-ui-bundle.js") for u in named), page.text
        assert any(u.endswith("swagger-ui.css") for u in named), page.text
        for url in named:
            assert url.startswith("/"), f"{url} is not served by paygrid"
            assert (await client.get(url)).status_code == 200, url
