"""A real MCP client on the official Python SDK that lists the tools of one endpoint, then calls
the tools it is given, one after another, in one session, and prints what came back as one JSON
object on stdout. The inspection tests (issue 6) read what reached the client from it.

Usage: python call_tools.py URL CALLS_JSON [--token TOKEN] [--timeout SECONDS]
  CALLS_JSON: [{"name": "search_customers", "arguments": {"query": "a"}}, ...]
Prints: {"tools": [names], "calls": [{"result": {...}} | {"error": {"code": N, "message": "..."}}]}
A call the gateway refuses with a JSON-RPC error is an entry with "error", not a failure; a client
that cannot connect at all prints {"fatal": "..."} and exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

warnings.filterwarnings("ignore", category=MCPDeprecationWarning)


async def run(url: str, calls: list[dict], token: str | None, timeout: float) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    out: dict = {"tools": [], "calls": []}
    async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write) as s:
                await s.initialize()
                out["tools"] = [t.name for t in (await s.list_tools()).tools]
                for call in calls:
                    try:
                        r = await s.call_tool(call["name"], call.get("arguments", {}))
                        out["calls"].append({"result": r.model_dump(mode="json", by_alias=True)})
                    except MCPError as e:
                        out["calls"].append(
                            {"error": {"code": e.error.code, "message": e.error.message}}
                        )
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("calls")
    p.add_argument("--token")
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    try:
        out = anyio.run(run, a.url, json.loads(a.calls), a.token, a.timeout)
    except Exception as e:  # noqa: BLE001 - report anything as one line for the Rust test
        print(json.dumps({"fatal": repr(e)}))
        sys.exit(1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
