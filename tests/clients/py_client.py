"""A real MCP client on the official Python SDK (`mcp`, Streamable HTTP client transport).

It exercises one MCP endpoint feature by feature, prints a JSON report on stdout and exits
non-zero, naming the failed check, when anything is wrong. Mirrors ts-client.ts and its
profiles.ts; keep them in step.

Usage: python py_client.py URL [--profile everything|crm] [--name-prefix P] [--uri-prefix U] [--protocol-version V]
           [--features tools,resources,prompts,progress,sampling,elicitation,subscriptions,
                       cancellation,logging] [--timeout SECONDS]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from typing import Any, Awaitable, Callable

import anyio
import mcp_types as types
from mcp.client.session import ClientRequestContext, ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning

# The session negotiates 2025-11-25, where subscribe and logging are current; the SDK warns
# about their removal in 2026-07-28 regardless.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

ALL_FEATURES = [
    "tools",
    "resources",
    "prompts",
    "progress",
    "sampling",
    "elicitation",
    "subscriptions",
    "cancellation",
    "logging",
]
CANNED_SAMPLING_TEXT = "canned reply from the portcullis e2e client"
ELICIT_NAME = "Ada Lovelace (portcullis e2e)"

PROFILES: dict[str, dict[str, Any]] = {
    "everything": {
        "expect_tools": [
            "echo",
            "get-sum",
            "trigger-long-running-operation",
            "toggle-simulated-logging",
            "toggle-subscriber-updates",
            "trigger-sampling-request",
            "trigger-elicitation-request",
        ],
        "call": {"name": "echo", "args": {"message": "hello portcullis"}, "expect": "hello portcullis"},
        "resource_uri_prefix": "demo://resource/static/document/",
        "prompt": {"name": "simple-prompt", "args": {}},
        "features": ALL_FEATURES,
    },
    "crm": {
        "expect_tools": ["search_customers", "get_customer", "delete_customer", "fetch_url", "export_customers"],
        "call": {"name": "search_customers", "args": {"query": "a", "limit": 3}, "expect": "cus_"},
        "resource_uri_prefix": "crm://schema",
        "prompt": {"name": "summarize_customer", "args": {"id": "cus_0001"}},
        "features": ["tools", "resources", "prompts"],
    },
}


class CheckFailed(Exception):
    pass


def check(cond: Any, msg: str) -> None:
    if not cond:
        raise CheckFailed(msg)


def text_of(result: Any) -> str:
    return "\n".join(c.text for c in getattr(result, "content", []) if getattr(c, "type", None) == "text")


async def wait_for(pred: Callable[[], bool], seconds: float, what: str) -> None:
    with anyio.move_on_after(seconds):
        while not pred():
            await anyio.sleep(0.02)
    check(pred(), f"timed out after {seconds} s waiting for {what}")


class Runner:
    def __init__(self, opts: argparse.Namespace) -> None:
        self.opts = opts
        self.profile = PROFILES[opts.profile]
        self.checks: list[dict[str, Any]] = []
        self.log_messages: list[Any] = []
        self.resource_updates: list[str] = []
        self.sampling_requests = 0
        self.elicitation_requests = 0

    def n(self, name: str) -> str:
        return self.opts.name_prefix + name

    async def on_sampling(
        self, ctx: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        self.sampling_requests += 1
        return types.CreateMessageResult(
            role="assistant",
            model="portcullis-canned-model",
            stop_reason="endTurn",
            content=types.TextContent(
                type="text", text=f"{CANNED_SAMPLING_TEXT} ({len(params.messages)} message(s))"
            ),
        )

    async def on_elicitation(self, ctx: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.elicitation_requests += 1
        return types.ElicitResult(action="accept", content={"name": ELICIT_NAME, "check": True})

    async def on_roots(self, ctx: ClientRequestContext) -> types.ListRootsResult:
        return types.ListRootsResult(roots=[types.Root(uri="file:///tmp/portcullis-e2e", name="e2e")])

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.log_messages.append(params.model_dump(mode="json"))

    async def on_message(self, message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            self.resource_updates.append(message.params.uri)

    async def run(self, feature: str, f: Callable[[], Awaitable[str]]) -> None:
        t0 = time.monotonic()
        try:
            detail = await f()
            self.checks.append({"feature": feature, "ok": True, "detail": detail, "ms": int((time.monotonic() - t0) * 1000)})
        except Exception as e:  # noqa: BLE001 - every failure becomes a named, reported check
            msg = f"{type(e).__name__}: {e}"
            self.checks.append({"feature": feature, "ok": False, "detail": msg, "ms": int((time.monotonic() - t0) * 1000)})

    async def main(self) -> None:
        if self.opts.protocol_version:
            # The SDK offers its newest handshake revision; an older one is offered by replacing
            # that constant (the SDK reads it at initialize time).
            import mcp.client.session as client_session

            client_session.LATEST_HANDSHAKE_VERSION = self.opts.protocol_version
        async with streamable_http_client(self.opts.url) as (read, write):
            async with ClientSession(
                read,
                write,
                sampling_callback=self.on_sampling,
                elicitation_callback=self.on_elicitation,
                list_roots_callback=self.on_roots,
                logging_callback=self.on_log,
                message_handler=self.on_message,
                client_info=types.Implementation(name="portcullis-e2e-py-client", version="1.0.0"),
            ) as session:
                init = await session.initialize()
                self.checks.append(
                    {
                        "feature": "initialize",
                        "ok": True,
                        "detail": f"server {init.server_info.name}@{init.server_info.version}, protocol {init.protocol_version}",
                        "ms": 0,
                    }
                )
                if self.opts.protocol_version:
                    check(
                        init.protocol_version == self.opts.protocol_version,
                        f"asked for protocol {self.opts.protocol_version}, the server negotiated {init.protocol_version}",
                    )
                await self.features(session)

    async def features(self, s: ClientSession) -> None:
        f = set(self.opts.features)
        p = self.profile
        n = self.n

        async def tools() -> str:
            listed = await s.list_tools()
            names = [t.name for t in listed.tools]
            for want in p["expect_tools"]:
                check(n(want) in names, f"tools/list lacks {n(want)}; got {names}")
            call = p["call"]
            res = await s.call_tool(n(call["name"]), call["args"])
            check(not res.is_error, f"tools/call {n(call['name'])} returned isError: {text_of(res)}")
            dumped = json.dumps(res.model_dump(mode="json"))
            check(call["expect"] in dumped, f"tools/call {n(call['name'])}: result lacks {call['expect']!r}: {dumped[:400]}")
            return f"{len(names)} tools; called {n(call['name'])}"

        async def resources() -> str:
            listed = await s.list_resources()
            want = self.opts.uri_prefix + p["resource_uri_prefix"]
            mine = [str(r.uri) for r in listed.resources if str(r.uri).startswith(want)]
            check(mine, f"resources/list has no URI starting with {want}; got {[str(r.uri) for r in listed.resources]}")
            res = await s.read_resource(mine[0])
            check(res.contents, f"resources/read {mine[0]} returned no contents")
            check(str(res.contents[0].uri) == mine[0], f"resources/read {mine[0]} returned content for {res.contents[0].uri}")
            return f"{len(listed.resources)} resources; read {mine[0]}"

        async def prompts() -> str:
            listed = await s.list_prompts()
            names = [x.name for x in listed.prompts]
            name = n(p["prompt"]["name"])
            check(name in names, f"prompts/list lacks {name}; got {names}")
            declared = next(x for x in listed.prompts if x.name == name)
            args = dict(p["prompt"]["args"])
            for a in declared.arguments or []:
                if a.required and a.name not in args:
                    args[a.name] = "1"
            res = await s.get_prompt(name, args)
            check(res.messages, f"prompts/get {name} returned no messages")
            return f"{len(names)} prompts; got {name}"

        async def progress() -> str:
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(progress)

            res = await s.call_tool(
                n("trigger-long-running-operation"), {"duration": 1, "steps": 4}, progress_callback=on_progress
            )
            check(not res.is_error, f"long-running tool returned isError: {text_of(res)}")
            check(seen == [1, 2, 3, 4], f"expected progress notifications 1,2,3,4 for the call; got {seen}")
            return f"progress {seen}"

        async def sampling() -> str:
            res = await s.call_tool(n("trigger-sampling-request"), {"prompt": "hello from the e2e test", "maxTokens": 20})
            check(not res.is_error, f"sampling tool returned isError: {text_of(res)}")
            check(self.sampling_requests == 1, f"expected 1 sampling/createMessage request, got {self.sampling_requests}")
            check(CANNED_SAMPLING_TEXT in text_of(res), f"sampling result lacks the client's canned reply: {text_of(res)}")
            return "sampling/createMessage answered and relayed back"

        async def elicitation() -> str:
            res = await s.call_tool(n("trigger-elicitation-request"), {})
            check(not res.is_error, f"elicitation tool returned isError: {text_of(res)}")
            check(self.elicitation_requests == 1, f"expected 1 elicitation/create request, got {self.elicitation_requests}")
            check(ELICIT_NAME in text_of(res), f"elicitation result lacks the accepted content: {text_of(res)}")
            return "elicitation/create accepted and relayed back"

        async def subscriptions() -> str:
            uri = self.opts.uri_prefix + "demo://resource/static/document/architecture.md"
            await s.subscribe_resource(uri)
            toggle = await s.call_tool(n("toggle-subscriber-updates"), {})
            check(not toggle.is_error, f"toggle-subscriber-updates failed: {text_of(toggle)}")
            try:
                await wait_for(lambda: uri in self.resource_updates, 15, f"notifications/resources/updated for {uri}")
            finally:
                await s.call_tool(n("toggle-subscriber-updates"), {})
                await s.unsubscribe_resource(uri)
            return f"resources/updated received for {uri}"

        async def logging() -> str:
            await s.set_logging_level("debug")
            before = len(self.log_messages)
            await s.call_tool(n("toggle-simulated-logging"), {})
            try:
                await wait_for(lambda: len(self.log_messages) > before, 15, "a notifications/message (logging) notification")
            finally:
                await s.call_tool(n("toggle-simulated-logging"), {})
            return f"logging notification: {json.dumps(self.log_messages[before])[:120]}"

        async def cancellation() -> str:
            progressed = anyio.Event()
            outcome: dict[str, Any] = {}

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                progressed.set()

            t0 = time.monotonic()
            async with anyio.create_task_group() as tg:

                async def call() -> None:
                    outcome["result"] = await s.call_tool(
                        n("trigger-long-running-operation"), {"duration": 20, "steps": 20}, progress_callback=on_progress
                    )

                tg.start_soon(call)
                with anyio.fail_after(10):
                    await progressed.wait()
                # Cancelling the awaiting task makes the SDK send notifications/cancelled.
                tg.cancel_scope.cancel()
            ms = int((time.monotonic() - t0) * 1000)
            check("result" not in outcome, "the cancelled call completed instead of being cancelled")
            check(ms < 10_000, f"cancellation took {ms} ms (the call runs 20 s): it was not cancelled")
            await s.send_ping()
            call = p["call"]
            res = await s.call_tool(n(call["name"]), call["args"])
            check(not res.is_error, f"call after cancellation failed: {text_of(res)}")
            return f"cancelled after {ms} ms; session still usable"

        for name, fn in [
            ("tools", tools),
            ("resources", resources),
            ("prompts", prompts),
            ("progress", progress),
            ("sampling", sampling),
            ("elicitation", elicitation),
            ("subscriptions", subscriptions),
            ("logging", logging),
            ("cancellation", cancellation),
        ]:
            if name in f:
                await self.run(name, fn)


def parse(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="py_client.py", description="Exercise an MCP endpoint with the Python SDK.")
    ap.add_argument("url")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="everything")
    ap.add_argument("--name-prefix", default="", help="prefix of tool and prompt names, e.g. everything__")
    ap.add_argument("--uri-prefix", default="", help="prefix of resource URIs, e.g. everything+")
    ap.add_argument("--features", default=None, help=",".join(ALL_FEATURES))
    ap.add_argument(
        "--protocol-version", default=None, help="offer this protocol revision at initialize (default: the SDK's newest)"
    )
    ap.add_argument("--timeout", type=float, default=120.0, help="overall limit in seconds")
    opts = ap.parse_args(argv)
    feats = PROFILES[opts.profile]["features"] if opts.features is None else [x for x in opts.features.split(",") if x]
    for x in feats:
        if x not in ALL_FEATURES:
            ap.error(f"unknown feature {x}; known: {','.join(ALL_FEATURES)}")
    opts.features = feats
    return opts


def main() -> int:
    opts = parse(sys.argv[1:])
    r = Runner(opts)
    fatal: str | None = None

    async def go() -> None:
        nonlocal fatal
        with anyio.move_on_after(opts.timeout) as scope:
            await r.main()
        if scope.cancelled_caught:
            fatal = f"the client did not finish within {opts.timeout} s (a request or notification never arrived)"

    try:
        anyio.run(go)
    except BaseException as e:  # noqa: BLE001 - report connection failures as JSON too
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        inner = e
        while isinstance(inner, BaseExceptionGroup) and inner.exceptions:
            inner = inner.exceptions[0]
        fatal = f"session with {opts.url} failed: {type(inner).__name__}: {inner}"
    failed = [c for c in r.checks if not c["ok"]]
    ok = fatal is None and not failed
    print(
        json.dumps(
            {"client": "python-sdk", "url": opts.url, "profile": opts.profile, "ok": ok, "fatal": fatal, "checks": r.checks},
            indent=2,
        )
    )
    if not ok:
        why = fatal or "; ".join(f"{c['feature']}: {c['detail']}" for c in failed)
        print(f"py_client FAILED against {opts.url}: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
