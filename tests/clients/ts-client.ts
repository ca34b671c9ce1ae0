// A real MCP client on the official TypeScript SDK (@modelcontextprotocol/sdk), Streamable HTTP
// transport. It exercises one MCP endpoint feature by feature, prints a JSON report on stdout and
// exits non-zero, naming the failed check, when anything is wrong.
//
// Usage: tsx ts-client.ts URL [--profile everything|crm] [--name-prefix P] [--uri-prefix U]
//                            [--features tools,resources,prompts,progress,sampling,elicitation,
//                                        subscriptions,cancellation,logging]
// --name-prefix / --uri-prefix: the gateway's federated endpoint namespaces tools and prompts as
// `{connector}__{name}` and resource URIs as `{connector}+{uri}`; pass `everything__` and
// `everything+` there.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ListRootsRequestSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { parseOptions, PROFILES, type Options, CANNED_SAMPLING_TEXT, ELICIT_NAME } from "./profiles.ts";

type Check = { feature: string; ok: boolean; detail: string; ms: number };

const opts: Options = parseOptions(process.argv.slice(2), "tsx ts-client.ts");
const profile = PROFILES[opts.profile];
const n = (name: string) => opts.namePrefix + name;
const checks: Check[] = [];
const logMessages: unknown[] = [];
const resourceUpdates: string[] = [];
let samplingRequests = 0;
let elicitationRequests = 0;

class CheckFailed extends Error {}
function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new CheckFailed(msg);
}
function text(result: any): string {
  return (result?.content ?? [])
    .filter((c: any) => c.type === "text")
    .map((c: any) => c.text)
    .join("\n");
}
/** Waits (bounded) until `pred` holds; notifications arrive asynchronously on the GET stream. */
async function waitFor(pred: () => boolean, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!pred()) {
    assert(Date.now() < deadline, `timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const client = new Client(
  { name: "portcullis-e2e-ts-client", version: "1.0.0" },
  {
    capabilities: {
      sampling: {},
      elicitation: { form: {} },
      roots: { listChanged: true },
    },
  },
);
client.setRequestHandler(CreateMessageRequestSchema, async (req) => {
  samplingRequests++;
  return {
    model: "portcullis-canned-model",
    role: "assistant",
    stopReason: "endTurn",
    content: { type: "text", text: `${CANNED_SAMPLING_TEXT} (${req.params.messages.length} message(s))` },
  };
});
client.setRequestHandler(ElicitRequestSchema, async () => {
  elicitationRequests++;
  return { action: "accept", content: { name: ELICIT_NAME, check: true } };
});
client.setRequestHandler(ListRootsRequestSchema, async () => ({
  roots: [{ uri: "file:///tmp/portcullis-e2e", name: "e2e" }],
}));
client.setNotificationHandler(LoggingMessageNotificationSchema, async (m) => {
  logMessages.push(m.params);
});
client.setNotificationHandler(ResourceUpdatedNotificationSchema, async (m) => {
  resourceUpdates.push(m.params.uri);
});

async function run(feature: string, f: () => Promise<string>) {
  const t0 = Date.now();
  try {
    const detail = await f();
    checks.push({ feature, ok: true, detail, ms: Date.now() - t0 });
  } catch (e: any) {
    checks.push({ feature, ok: false, detail: String(e?.message ?? e), ms: Date.now() - t0 });
  }
}

async function main() {
  const transport = new StreamableHTTPClientTransport(new URL(opts.url));
  try {
    await client.connect(transport);
  } catch (e: any) {
    report(`initialize against ${opts.url} failed: ${e?.message ?? e}`);
    return;
  }
  const info = client.getServerVersion();
  checks.push({
    feature: "initialize",
    ok: true,
    detail: `server ${info?.name}@${info?.version}, session ${transport.sessionId ?? "(none)"}`,
    ms: 0,
  });
  const f = opts.features;

  if (f.has("tools")) {
    await run("tools", async () => {
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      for (const want of profile.expectTools) {
        assert(names.includes(n(want)), `tools/list lacks ${n(want)}; got ${JSON.stringify(names)}`);
      }
      const call = profile.call;
      const res: any = await client.callTool({ name: n(call.name), arguments: call.args });
      assert(!res.isError, `tools/call ${n(call.name)} returned isError: ${text(res)}`);
      assert(
        text(res).includes(call.expect) || JSON.stringify(res).includes(call.expect),
        `tools/call ${n(call.name)}: result lacks "${call.expect}": ${JSON.stringify(res).slice(0, 400)}`,
      );
      return `${names.length} tools; called ${n(call.name)}`;
    });
  }
  if (f.has("resources")) {
    await run("resources", async () => {
      const { resources } = await client.listResources();
      const mine = resources.filter((r) => r.uri.startsWith(opts.uriPrefix + profile.resourceUriPrefix));
      assert(
        mine.length > 0,
        `resources/list has no URI starting with ${opts.uriPrefix + profile.resourceUriPrefix}; got ${JSON.stringify(resources.map((r) => r.uri))}`,
      );
      const uri = mine[0].uri;
      const res = await client.readResource({ uri });
      assert(res.contents.length > 0, `resources/read ${uri} returned no contents`);
      assert(res.contents[0].uri === uri, `resources/read ${uri} returned content for ${res.contents[0].uri}`);
      return `${resources.length} resources; read ${uri}`;
    });
  }
  if (f.has("prompts")) {
    await run("prompts", async () => {
      const { prompts } = await client.listPrompts();
      const names = prompts.map((p) => p.name);
      const p = profile.prompt;
      assert(names.includes(n(p.name)), `prompts/list lacks ${n(p.name)}; got ${JSON.stringify(names)}`);
      const declared = prompts.find((x) => x.name === n(p.name))!;
      const args: Record<string, string> = { ...p.args };
      for (const a of declared.arguments ?? []) if (a.required && !(a.name in args)) args[a.name] = "1";
      const res = await client.getPrompt({ name: n(p.name), arguments: args });
      assert(res.messages.length > 0, `prompts/get ${n(p.name)} returned no messages`);
      return `${prompts.length} prompts; got ${n(p.name)}`;
    });
  }
  if (f.has("progress")) {
    await run("progress", async () => {
      const seen: number[] = [];
      const res: any = await client.callTool(
        { name: n("trigger-long-running-operation"), arguments: { duration: 1, steps: 4 } },
        undefined,
        { onprogress: (p) => seen.push(p.progress), timeout: 30_000 },
      );
      assert(!res.isError, `long-running tool returned isError: ${text(res)}`);
      assert(
        JSON.stringify(seen) === JSON.stringify([1, 2, 3, 4]),
        `expected progress notifications 1,2,3,4 for the call; got ${JSON.stringify(seen)}`,
      );
      return `progress ${seen.join(",")}`;
    });
  }
  if (f.has("sampling")) {
    await run("sampling", async () => {
      const res: any = await client.callTool({
        name: n("trigger-sampling-request"),
        arguments: { prompt: "hello from the e2e test", maxTokens: 20 },
      });
      assert(!res.isError, `sampling tool returned isError: ${text(res)}`);
      assert(samplingRequests === 1, `expected 1 sampling/createMessage request, got ${samplingRequests}`);
      assert(text(res).includes(CANNED_SAMPLING_TEXT), `sampling result lacks the client's canned reply: ${text(res)}`);
      return "sampling/createMessage answered and relayed back";
    });
  }
  if (f.has("elicitation")) {
    await run("elicitation", async () => {
      const res: any = await client.callTool({ name: n("trigger-elicitation-request"), arguments: {} });
      assert(!res.isError, `elicitation tool returned isError: ${text(res)}`);
      assert(elicitationRequests === 1, `expected 1 elicitation/create request, got ${elicitationRequests}`);
      assert(text(res).includes(ELICIT_NAME), `elicitation result lacks the accepted content: ${text(res)}`);
      return "elicitation/create accepted and relayed back";
    });
  }
  if (f.has("subscriptions")) {
    await run("subscriptions", async () => {
      const uri = opts.uriPrefix + "demo://resource/static/document/architecture.md";
      await client.subscribeResource({ uri });
      const toggle = await client.callTool({ name: n("toggle-subscriber-updates"), arguments: {} });
      assert(!(toggle as any).isError, `toggle-subscriber-updates failed: ${text(toggle)}`);
      try {
        await waitFor(() => resourceUpdates.includes(uri), 15_000, `notifications/resources/updated for ${uri}`);
      } finally {
        await client.callTool({ name: n("toggle-subscriber-updates"), arguments: {} });
        await client.unsubscribeResource({ uri });
      }
      return `resources/updated received for ${uri}`;
    });
  }
  if (f.has("logging")) {
    await run("logging", async () => {
      await client.setLoggingLevel("debug");
      const before = logMessages.length;
      await client.callTool({ name: n("toggle-simulated-logging"), arguments: {} });
      try {
        await waitFor(() => logMessages.length > before, 15_000, "a notifications/message (logging) notification");
      } finally {
        await client.callTool({ name: n("toggle-simulated-logging"), arguments: {} });
      }
      return `logging notification: ${JSON.stringify(logMessages[before]).slice(0, 120)}`;
    });
  }
  if (f.has("cancellation")) {
    await run("cancellation", async () => {
      const ac = new AbortController();
      let progressed = 0;
      const t0 = Date.now();
      const p = client.callTool(
        { name: n("trigger-long-running-operation"), arguments: { duration: 20, steps: 20 } },
        undefined,
        {
          signal: ac.signal,
          timeout: 60_000,
          onprogress: () => {
            progressed++;
            if (progressed === 1) ac.abort("portcullis e2e: cancelled by the client");
          },
        },
      );
      let err: any = null;
      try {
        await p;
      } catch (e) {
        err = e;
      }
      const ms = Date.now() - t0;
      assert(err, "the cancelled call completed instead of being cancelled");
      assert(ms < 10_000, `cancellation took ${ms} ms (the call runs 20 s): it was not cancelled`);
      // The session must stay usable after a cancellation.
      await client.ping();
      const res: any = await client.callTool({ name: n(profile.call.name), arguments: profile.call.args });
      assert(!res.isError, `call after cancellation failed: ${text(res)}`);
      return `cancelled after ${ms} ms (${String(err?.message ?? err).slice(0, 80)}); session still usable`;
    });
  }
  try {
    await transport.terminateSession();
  } catch (e: any) {
    checks.push({ feature: "terminate", ok: false, detail: `DELETE session failed: ${e?.message ?? e}`, ms: 0 });
  }
  await client.close();
  report(null);
}

function report(fatal: string | null) {
  const failed = checks.filter((c) => !c.ok);
  const out = {
    client: "typescript-sdk",
    url: opts.url,
    profile: opts.profile,
    ok: fatal === null && failed.length === 0,
    fatal,
    checks,
  };
  console.log(JSON.stringify(out, null, 2));
  if (!out.ok) {
    const why = fatal ?? failed.map((c) => `${c.feature}: ${c.detail}`).join("; ");
    console.error(`ts-client FAILED against ${opts.url}: ${why}`);
    process.exit(1);
  }
  process.exit(0);
}

const overall = setTimeout(() => {
  report(`the client did not finish within ${opts.timeoutSec} s (a request or notification never arrived)`);
}, opts.timeoutSec * 1000);
overall.unref();
main().catch((e) => report(`unexpected error: ${e?.stack ?? e}`));
