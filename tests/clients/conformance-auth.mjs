// Runs the MCP conformance suite's authorization-server scenarios (`conformance authorization`,
// 0.2.0 alpha) against Portcullis's built-in authorization server, playing the person at the
// browser: the suite prints an authorization URL and waits for its callback; this script signs
// in and consents over HTTP and follows the redirect to the suite's callback server.
//
// Usage: node conformance-auth.mjs ISSUER RESOURCE USER PASSWORD
// Prints one JSON line {"exit": N, "passed": [...], "failed": [...], "output": "..."}.
import { spawn } from "node:child_process";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const [issuer, resource, user, password] = process.argv.slice(2);
const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, "node_modules/conformance-alpha/dist/index.js");

/** A free loopback port for the suite's callback server (it binds it itself). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

const jar = new Map();
function keep(r) {
  for (const c of r.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const i = pair.indexOf("=");
    jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }
}
const cookies = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
function hidden(html, name) {
  const m = html.match(new RegExp(`name="${name}"\\s+value="([^"]*)"`)) ?? html.match(new RegExp(`value="([^"]*)"\\s+name="${name}"`));
  if (!m) throw new Error(`no hidden ${name} field in:\n${html.slice(0, 1000)}`);
  return m[1].replaceAll("&amp;", "&");
}

/** Signs in and consents, then delivers the redirect to the suite's callback server. */
async function browse(start, callbackPrefix) {
  let url = start;
  let method = "GET";
  let body;
  for (let hop = 0; hop < 10; hop++) {
    const r = await fetch(url, {
      method,
      redirect: "manual",
      headers: { cookie: cookies(), ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
      body,
    });
    keep(r);
    if (r.status >= 300 && r.status < 400) {
      const loc = new URL(r.headers.get("location"), url).toString();
      if (loc.startsWith(callbackPrefix)) {
        await fetch(loc);
        return;
      }
      url = loc;
      method = "GET";
      body = undefined;
      continue;
    }
    const html = await r.text();
    if (r.status !== 200) throw new Error(`HTTP ${r.status} at ${url}: ${html.slice(0, 500)}`);
    const request_id = hidden(html, "request_id");
    const csrf = hidden(html, "csrf");
    if (html.includes('name="password"')) {
      url = new URL("/oauth/login", issuer).toString();
      body = new URLSearchParams({ request_id, csrf, username: user, password });
    } else {
      url = new URL("/oauth/consent", issuer).toString();
      body = new URLSearchParams({ request_id, csrf, decision: "allow" });
    }
    method = "POST";
  }
  throw new Error("too many hops");
}

const port = await freePort();
const callback = `http://127.0.0.1:${port}/callback`;
// A public client registered the ordinary way (RFC 7591), with the suite's callback as redirect.
const reg = await fetch(new URL("/oauth/register", issuer), {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({
    client_name: "MCP conformance suite",
    redirect_uris: [callback],
    token_endpoint_auth_method: "none",
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
  }),
});
const client = await reg.json();
if (!client.client_id) {
  console.log(JSON.stringify({ exit: 2, passed: [], failed: ["registration"], output: JSON.stringify(client) }));
  process.exit(1);
}

const child = spawn(process.execPath, [cli, "authorization", "--url", issuer, "--client-id", client.client_id, "--resource", resource, "-p", String(port)], {
  cwd: here,
  stdio: ["ignore", "pipe", "pipe"],
});
let output = "";
let browsing;
child.stderr.on("data", (d) => (output += d));
child.stdout.on("data", (d) => {
  output += d;
  for (const line of String(d).split("\n")) {
    if (!browsing && line.startsWith(new URL("/oauth/authorize", issuer).toString())) {
      browsing = browse(line.trim(), callback).catch((e) => (output += `\nbrowser: ${e.stack}\n`));
    }
  }
});
const exit = await new Promise((resolve) => child.on("exit", (code) => resolve(code)));
await browsing;
// The suite's summary: one line per scenario, "✓ name: N passed, M failed" (✗ on failure).
const summary = [...output.matchAll(/^\s*[✓✗]\s+(\S+): (\d+) passed, (\d+) failed/gmu)];
const passed = summary.filter((m) => m[3] === "0" && m[2] !== "0").map((m) => m[1]);
const failed = summary.filter((m) => m[3] !== "0" || m[2] === "0").map((m) => m[1]);
console.log(JSON.stringify({ exit, passed, failed, output }));
process.exit(exit === 0 && failed.length === 0 ? 0 : 1);
