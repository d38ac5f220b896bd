"""A console user over plain HTTP: its own cookie jar, sign-in, and the hidden fields a page's
forms carry (the CSRF token, each form's Idempotency-Key)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

COOKIE = "paygrid_console"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
_LOGIN = re.compile(r'name="login_token" value="([^"]+)"')


def idempotency_key(html: str, action: str) -> str:
    """The Idempotency-Key of the form posting to `action` on a rendered page."""
    form = re.search(
        rf'action="{re.escape(action)}".*?name="idempotency_key" value="([^"]+)"', html, re.S
    )
    assert form is not None, f"no form for {action}"
    return form.group(1)


def csrf_token(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page carries no CSRF token"
    return found.group(1)


def login_token(html: str) -> str:
    found = _LOGIN.search(html)
    assert found is not None, "the sign-in page carries no login token"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, key: str) -> httpx.Response:
    """The sign-in form fetched (its login cookie kept by `http`) and posted with `key`."""
    form = await http.get("/console/sign-in")
    assert form.status_code == 200, form.text
    return await http.post(
        "/console/sign-in", data={"api_key": key, "login_token": login_token(form.text)}
    )


@dataclass
class Console:
    http: httpx.AsyncClient

    @classmethod
    async def signed_in(cls, base_url: str, key: str) -> Console:
        console = cls(httpx.AsyncClient(base_url=base_url, timeout=60))
        response = await sign_in(console.http, key)
        assert response.status_code == 303, response.text
        return console

    async def page(self, path: str, **params: str) -> httpx.Response:
        # No params: keep the query `path` already has (httpx would replace it).
        return await self.http.get(path, params=params or None)

    async def post(self, path: str, fields: dict[str, str]) -> httpx.Response:
        return await self.http.post(path, data=fields)

    async def close(self) -> None:
        await self.http.aclose()
