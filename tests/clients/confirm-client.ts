// A real MCP client on the official TypeScript SDK for the human-confirmation tests (issue 4,
// HC-1/HC-2): it calls one tool with a bearer token and answers the gateway's confirmation
// request (elicitation) as told, or declares no elicitation support at all.
//
// Usage: tsx confirm-client.ts MCP_URL TOKEN MODE TOOL ARGS_JSON
//   MODE: accept | decline | ignore (never answers) | none (no elicitation capability) | list
// Prints one JSON line: {"elicitations": N, "message": "...", "result": {...}} or {"error": "..."};
// with MODE list: {"tools": [...]}.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";

const [url, token, mode, tool, args] = process.argv.slice(2);
const capabilities = mode === "none" || mode === "list" ? {} : { elicitation: { form: {} } };
const client = new Client({ name: "portcullis-e2e-confirm", version: "1.0.0" }, { capabilities });
let elicitations = 0;
let message = "";
if (capabilities.elicitation) {
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    elicitations++;
    message = String(req.params.message);
    if (mode === "accept") return { action: "accept", content: { confirm: true } };
    if (mode === "decline") return { action: "decline" };
    return await new Promise<never>(() => {}); // ignore: the person never answers
  });
}
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { authorization: `Bearer ${token}` } },
});
try {
  await client.connect(transport);
  if (mode === "list") {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    console.log(JSON.stringify({ tools }));
  } else {
    const result = await client.callTool({ name: tool, arguments: JSON.parse(args ?? "{}") }, undefined, { timeout: 120_000 });
    console.log(JSON.stringify({ elicitations, message, result }));
  }
} catch (e) {
  console.log(JSON.stringify({ elicitations, message, error: String((e as Error)?.message ?? e) }));
}
await client.close().catch(() => {});
process.exit(0);
