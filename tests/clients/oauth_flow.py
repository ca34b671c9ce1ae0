"""A real MCP client on the official Python SDK (`mcp`) doing Portcullis's whole OAuth 2.1 flow
headlessly (issue 3): 401 → protected resource metadata → authorization server metadata →
dynamic client registration → authorization code with PKCE (the login and consent forms are
driven over HTTP, as a browser would) → token → tools/list, tools/call → step-up on
insufficient_scope (the SDK re-authorizes by itself) → refresh of an expired stored token; then a
call with an expired token and one with a token for another resource get 401.

Prints a JSON report; exits non-zero naming the failed check.
Usage: python oauth_flow.py MCP_URL USER PASSWORD   (env EXPIRED_TOKEN: an expired access token)
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from urllib.parse import parse_qs, urljoin, urlparse

import anyio
import httpx2
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT = "http://127.0.0.1:9/callback"  # never served: the code is read from the Location header


class CheckFailed(Exception):
    pass


def check(cond: object, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


class MemoryStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None
        self.saves = 0

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.saves += 1

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """The person's browser: a cookie jar, the login and consent forms, and the redirect back."""

    def __init__(self, origin: str, user: str, password: str) -> None:
        self.origin = origin
        self.user = user
        self.password = password
        self.http = httpx2.AsyncClient(follow_redirects=False, timeout=30)
        self.pending: AuthorizationCodeResult | None = None
        self.pages: list[str] = []
        self.authorization_urls: list[str] = []

    @staticmethod
    def hidden(html: str, name: str) -> str:
        m = re.search(rf'name="{name}"\s+value="([^"]*)"', html) or re.search(rf'value="([^"]*)"\s+name="{name}"', html)
        check(m, f"the page has no hidden {name} field:\n{html[:2000]}")
        return m.group(1).replace("&amp;", "&")

    async def redirect_handler(self, url: str) -> None:
        self.authorization_urls.append(url)
        method, data = "GET", None
        for _ in range(10):
            r = await self.http.request(method, url, data=data)
            if 300 <= r.status_code < 400:
                loc = urljoin(url, r.headers["location"])
                if loc.startswith(REDIRECT):
                    q = parse_qs(urlparse(loc).query)
                    check("error" not in q, f"the server answered {q}")
                    check(q.get("iss") == [self.origin], f"iss {q.get('iss')} is not {self.origin} (RFC 9207)")
                    self.pending = AuthorizationCodeResult(
                        code=q["code"][0], state=q.get("state", [None])[0], iss=q.get("iss", [None])[0]
                    )
                    return
                check(loc.startswith(self.origin), f"redirected off the gateway to {loc}")
                method, data, url = "GET", None, loc
                continue
            check(r.status_code == 200, f"HTTP {r.status_code} at {url}: {r.text[:500]}")
            html = r.text
            request_id, csrf = self.hidden(html, "request_id"), self.hidden(html, "csrf")
            if 'name="password"' in html:
                self.pages.append("login")
                url = self.origin + "/oauth/login"
                data = {"request_id": request_id, "csrf": csrf, "username": self.user, "password": self.password}
            else:
                check('name="decision"' in html, f"neither a login nor a consent page:\n{html[:2000]}")
                self.pages.append("consent")
                url = self.origin + "/oauth/consent"
                data = {"request_id": request_id, "csrf": csrf, "decision": "allow"}
            method = "POST"
        raise CheckFailed("too many hops in the authorization pages")

    async def callback_handler(self) -> AuthorizationCodeResult:
        check(self.pending, "no authorization code came back")
        result, self.pending = self.pending, None
        return result


def provider(url: str, storage: MemoryStorage, browser: Browser) -> OAuthClientProvider:
    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="Portcullis e2e Python client",
            redirect_uris=[REDIRECT],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.redirect_handler,
        callback_handler=browser.callback_handler,
    )


CONFIRMATIONS: list[str] = []


async def confirm_destructive(context, params):
    """The person at the client confirms the destructive call the gateway asks about (HC-2)."""
    import mcp_types as types

    CONFIRMATIONS.append(params.message)
    return types.ElicitResult(action="accept", content={"confirm": True})


async def session_run(url: str, auth: OAuthClientProvider, body) -> object:
    async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, elicitation_callback=confirm_destructive) as s:
                await s.initialize()
                return await body(s)


async def main(url: str, user: str, password: str, checks: list[dict]) -> None:
    origin = f"{urlparse(url).scheme}://{urlparse(url).netloc}"

    async def step(name: str, f) -> None:
        try:
            checks.append({"check": name, "ok": True, "detail": str(await f())})
        except Exception:
            checks.append({"check": name, "ok": False, "detail": traceback.format_exc()})
            raise CheckFailed(name)

    storage = MemoryStorage()
    browser = Browser(origin, user, password)

    async def first_use():
        async def body(s: ClientSession):
            names = [t.name for t in (await s.list_tools()).tools]
            check("search_customers" in names, f"tools: {names}")
            check("delete_customer" not in names, f"delete_customer listed without crm:admin: {names}")
            r = await s.call_tool("search_customers", {"query": "a", "limit": 2})
            check(not r.is_error, f"search_customers failed: {r}")
            return names

        names = await session_run(url, provider(url, storage, browser), body)
        check(browser.pages == ["login", "consent"], f"pages: {browser.pages}")
        check(storage.client and storage.client.client_id, "no dynamic registration")
        q = parse_qs(urlparse(browser.authorization_urls[0]).query)
        check(q.get("code_challenge_method") == ["S256"], "PKCE S256 not used")
        check(q.get("resource") == [url], f"resource indicator {q.get('resource')}")
        check(storage.tokens and storage.tokens.refresh_token, "no refresh token")
        return f"scope {storage.tokens.scope}; tools {', '.join(names)}"

    await step("401 → discovery → registration → login and consent → token → tools", first_use)

    # The client that steps up lives on for the refresh below, as a long-running client would.
    stepped = provider(url, storage, browser)

    async def step_up():
        browser.pages.clear()

        async def body(s: ClientSession):
            r = await s.call_tool("delete_customer", {"id": "cus_0011"})
            check(not r.is_error, f"delete_customer failed after step-up: {r}")
            names = [t.name for t in (await s.list_tools()).tools]
            check("delete_customer" in names and "search_customers" in names, f"tools: {names}")

        await session_run(url, stepped, body)
        check(browser.pages == ["consent"], f"pages: {browser.pages}")
        check(len(CONFIRMATIONS) == 1 and "delete_customer" in CONFIRMATIONS[0], f"confirmations: {CONFIRMATIONS}")
        scope = parse_qs(urlparse(browser.authorization_urls[-1]).query).get("scope", [""])[0].split()
        check("crm:admin" in scope and "crm:read" in scope, f"step-up asked for {scope}")
        return f"granted {storage.tokens.scope}"

    await step("step-up: insufficient_scope → re-authorize with the wider scope → succeed", step_up)

    async def refresh():
        old = storage.tokens
        saves, urls = storage.saves, len(browser.authorization_urls)

        async def body(s: ClientSession):
            await s.list_tools()

        # The SDK refreshes, before calling, a token whose lifetime it knows to be over; the
        # hour it would take is simulated by moving the client's expiry time into the past.
        stepped.context.token_expiry_time = time.time() - 1
        await session_run(url, stepped, body)
        check(storage.saves == saves + 1, f"tokens saved {storage.saves - saves} times")
        check(len(browser.authorization_urls) == urls, "a refresh should not need the browser")
        check(storage.tokens.refresh_token != old.refresh_token, "the refresh token was not rotated")
        check(storage.tokens.access_token != old.access_token, "no new access token")
        return "refreshed and rotated"

    await step("refresh an expired stored token", refresh)

    async def raw(target: str, token: str):
        async with httpx2.AsyncClient(timeout=30) as http:
            r = await http.post(
                target,
                headers={"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}},
            )
            return r.status_code, r.headers.get("www-authenticate", "")

    async def expired():
        token = os.environ.get("EXPIRED_TOKEN")
        check(token, "EXPIRED_TOKEN is not set")
        status, challenge = await raw(url, token)
        check(status == 401 and 'error="invalid_token"' in challenge and "expired" in challenge, f"{status} {challenge}")
        return challenge

    await step("an expired token gets 401", expired)

    async def other_resource():
        status, challenge = await raw(origin + "/mcp", storage.tokens.access_token)
        check(status == 401 and 'error="invalid_token"' in challenge and "another resource" in challenge, f"{status} {challenge}")
        return challenge

    await step("a token for another resource gets 401", other_resource)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print("usage: python oauth_flow.py MCP_URL USER PASSWORD", file=sys.stderr)
        sys.exit(2)
    checks: list[dict] = []
    ok = True
    try:
        anyio.run(main, *sys.argv[1:4], checks)
    except CheckFailed:
        ok = False
    except Exception:
        ok = False
        checks.append({"check": "unexpected error", "ok": False, "detail": traceback.format_exc()})
    print(json.dumps({"client": "python-sdk-oauth", "checks": checks}, indent=2))
    sys.exit(0 if ok and all(c["ok"] for c in checks) else 1)
