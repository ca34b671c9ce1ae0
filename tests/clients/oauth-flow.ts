// A real MCP client on the official TypeScript SDK doing Portcullis's whole OAuth 2.1 flow
// headlessly (issue 3): 401 → protected resource metadata → authorization server metadata →
// dynamic client registration → authorization code with PKCE (the login and consent forms are
// driven over HTTP, as a browser would) → token → tools/list, tools/call → step-up to a wider
// scope on insufficient_scope → refresh; then a call with an expired token and one with a
// token for another resource get 401. Prints a JSON report; exits non-zero naming the failed check.
//
// Usage: tsx oauth-flow.ts MCP_URL USER PASSWORD   (env EXPIRED_TOKEN: an expired access token for MCP_URL)
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  UnauthorizedError,
  auth,
  extractWWWAuthenticateParams,
  type OAuthClientProvider,
} from "@modelcontextprotocol/sdk/client/auth.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import type {
  OAuthClientInformationMixed,
  OAuthClientMetadata,
  OAuthTokens,
} from "@modelcontextprotocol/sdk/shared/auth.js";

const [mcpUrl, user, password] = process.argv.slice(2);
if (!mcpUrl || !user || !password) {
  console.error("usage: tsx oauth-flow.ts MCP_URL USER PASSWORD");
  process.exit(2);
}
const origin = new URL(mcpUrl).origin;
const REDIRECT = "http://127.0.0.1:9/callback"; // never served: the code is read from the Location header

type Check = { check: string; ok: boolean; detail: string };
const checks: Check[] = [];
class CheckFailed extends Error {}
function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new CheckFailed(msg);
}
async function check(name: string, f: () => Promise<string>) {
  try {
    checks.push({ check: name, ok: true, detail: await f() });
  } catch (e) {
    checks.push({ check: name, ok: false, detail: String((e as Error)?.stack ?? e) });
    finish();
  }
}
function finish(): never {
  console.log(JSON.stringify({ client: "ts-sdk-oauth", checks }, null, 2));
  process.exit(checks.every((c) => c.ok) ? 0 : 1);
}

/** An in-memory OAuth client: what a desktop MCP client keeps between runs. */
class MemoryProvider implements OAuthClientProvider {
  info?: OAuthClientInformationMixed;
  saved?: OAuthTokens;
  verifier = "";
  authorizationUrl?: URL;
  tokenSaves = 0;
  get redirectUrl() {
    return REDIRECT;
  }
  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "Portcullis e2e TypeScript client",
      redirect_uris: [REDIRECT],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(i: OAuthClientInformationMixed) {
    this.info = i;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(t: OAuthTokens) {
    this.saved = t;
    this.tokenSaves++;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
}

/** A cookie jar for the login and consent pages (a browser's part). */
const jar = new Map<string, string>();
function keepCookies(r: Response) {
  for (const c of r.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const i = pair.indexOf("=");
    jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }
}
function cookieHeader() {
  return [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
}
function hidden(html: string, name: string): string {
  const m = html.match(new RegExp(`name="${name}"\\s+value="([^"]*)"`)) ?? html.match(new RegExp(`value="([^"]*)"\\s+name="${name}"`));
  assert(m, `the page has no hidden ${name} field:\n${html.slice(0, 2000)}`);
  return m[1].replaceAll("&amp;", "&");
}

/** Drives the authorization pages like a person in a browser: signs in when asked, allows on
 *  the consent page, and returns the code the server redirects to the client with. */
async function signInAndConsent(authorizationUrl: URL, pages: string[]): Promise<string> {
  let url = authorizationUrl.toString();
  let method = "GET";
  let body: URLSearchParams | undefined;
  for (let hop = 0; hop < 10; hop++) {
    const r = await fetch(url, {
      method,
      redirect: "manual",
      headers: { cookie: cookieHeader(), ...(body ? { "content-type": "application/x-www-form-urlencoded" } : {}) },
      body,
    });
    keepCookies(r);
    if (r.status >= 300 && r.status < 400) {
      const loc = new URL(r.headers.get("location")!, url);
      if (loc.toString().startsWith(REDIRECT)) {
        assert(!loc.searchParams.get("error"), `the server answered ${loc.searchParams.get("error")}: ${loc.searchParams.get("error_description")}`);
        assert(loc.searchParams.get("iss") === origin, `iss ${loc.searchParams.get("iss")} is not ${origin} (RFC 9207)`);
        const code = loc.searchParams.get("code");
        assert(code, `no code in ${loc}`);
        return code;
      }
      assert(loc.origin === origin, `redirected off the gateway to ${loc}`);
      url = loc.toString();
      method = "GET";
      body = undefined;
      continue;
    }
    const html = await r.text();
    assert(r.status === 200, `HTTP ${r.status} at ${url}: ${html.slice(0, 500)}`);
    assert((r.headers.get("content-security-policy") ?? "").includes("frame-ancestors 'none'"), "the page has no anti-framing CSP");
    const request_id = hidden(html, "request_id");
    const csrf = hidden(html, "csrf");
    if (html.includes('name="password"')) {
      pages.push("login");
      url = new URL("/oauth/login", origin).toString();
      body = new URLSearchParams({ request_id, csrf, username: user, password });
    } else {
      assert(html.includes('name="decision"'), `neither a login nor a consent page:\n${html.slice(0, 2000)}`);
      pages.push("consent");
      url = new URL("/oauth/consent", origin).toString();
      body = new URLSearchParams({ request_id, csrf, decision: "allow" });
    }
    method = "POST";
  }
  throw new CheckFailed("too many hops in the authorization pages");
}

const provider = new MemoryProvider();
/** The last 403 the gateway answered, kept so the application can read its challenge. */
let last403: Response | undefined;
const recordingFetch: typeof fetch = async (input, init) => {
  const r = await fetch(input, init);
  if (r.status === 403) last403 = r.clone();
  return r;
};
const transportOpts = { authProvider: provider, fetch: recordingFetch };

/** The person at the client confirms destructive calls when the gateway asks (HC-2). */
let elicitations = 0;
async function connect(): Promise<Client> {
  const client = new Client({ name: "portcullis-e2e-oauth", version: "1.0.0" }, { capabilities: { elicitation: { form: {} } } });
  client.setRequestHandler(ElicitRequestSchema, async (req) => {
    elicitations++;
    assert(String(req.params.message).includes("delete_customer"), `unexpected confirmation: ${req.params.message}`);
    return { action: "accept", content: { confirm: true } };
  });
  await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), transportOpts));
  return client;
}

let client!: Client;

await check("401 leads to discovery, registration and the authorization page", async () => {
  let refused = false;
  try {
    await connect();
  } catch (e) {
    refused = e instanceof UnauthorizedError;
    if (!refused) throw e;
  }
  assert(refused, "the unauthenticated connect was not refused with 401");
  assert(provider.info?.client_id, "dynamic client registration gave no client_id");
  const u = provider.authorizationUrl;
  assert(u, "no authorization URL");
  assert(u.searchParams.get("code_challenge_method") === "S256", "PKCE S256 not used");
  assert(u.searchParams.get("resource") === mcpUrl, `resource indicator ${u.searchParams.get("resource")} is not ${mcpUrl}`);
  return `client ${provider.info.client_id}, scope ${u.searchParams.get("scope")}`;
});

await check("login and consent forms give a code; the token works", async () => {
  const pages: string[] = [];
  const code = await signInAndConsent(provider.authorizationUrl!, pages);
  assert(pages.join(",") === "login,consent", `pages: ${pages}`);
  const t = new StreamableHTTPClientTransport(new URL(mcpUrl), transportOpts);
  await t.finishAuth(code);
  assert(provider.saved?.access_token && provider.saved.refresh_token, "no access and refresh token");
  client = await connect();
  return `scope ${provider.saved.scope}, expires_in ${provider.saved.expires_in}`;
});

await check("tools/list shows only what the scopes allow", async () => {
  const names = (await client.listTools()).tools.map((t) => t.name);
  assert(names.includes("search_customers"), `tools: ${names}`);
  assert(!names.includes("delete_customer"), `delete_customer listed without crm:admin: ${names}`);
  return names.join(", ");
});

await check("tools/call with the granted scope", async () => {
  const r: any = await client.callTool({ name: "search_customers", arguments: { query: "a", limit: 2 } });
  assert(!r.isError, JSON.stringify(r));
  return "search_customers answered";
});

await check("step-up: insufficient_scope, re-authorize with the wider scope, succeed", async () => {
  // SDK 1.32.2 answers a 403 insufficient_scope by calling auth(), which refreshes first when it
  // holds a refresh token; a refresh cannot widen the scope (RFC 6749 §6), so the retry gets the
  // same 403 and the SDK gives up with it. The application then does what the challenge asks:
  // drop the narrow tokens and authorize again with the challenge's scope.
  provider.authorizationUrl = undefined;
  let refused: unknown;
  try {
    await client.callTool({ name: "delete_customer", arguments: { id: "cus_0007" } });
  } catch (e) {
    refused = e;
  }
  assert(refused, "delete_customer was allowed with crm:read");
  assert(last403, `no 403 challenge was seen (error: ${refused})`);
  const { error, scope } = extractWWWAuthenticateParams(last403);
  assert(error === "insufficient_scope", `challenge error ${error}`);
  assert(scope && scope.split(" ").includes("crm:admin") && scope.split(" ").includes("crm:read"), `challenge scope ${scope}`);
  provider.saved = undefined;
  const started = await auth(provider, { serverUrl: mcpUrl, scope });
  assert(started === "REDIRECT" && provider.authorizationUrl, `auth() answered ${started}`);
  assert(provider.authorizationUrl.searchParams.get("scope") === scope, `asked for ${provider.authorizationUrl.searchParams.get("scope")}`);
  const pages: string[] = [];
  const code = await signInAndConsent(provider.authorizationUrl, pages);
  assert(pages.join(",") === "consent", `already signed in, only the consent page is expected: ${pages}`);
  assert((await auth(provider, { serverUrl: mcpUrl, authorizationCode: code })) === "AUTHORIZED", "code exchange failed");
  client = await connect();
  const r: any = await client.callTool({ name: "delete_customer", arguments: { id: "cus_0007" } });
  assert(!r.isError, JSON.stringify(r));
  assert(elicitations === 1, `the destructive call was confirmed ${elicitations} times, not once`);
  const names = (await client.listTools()).tools.map((t) => t.name);
  assert(names.includes("delete_customer") && names.includes("search_customers"), `tools after step-up: ${names}`);
  return `granted ${provider.saved?.scope}`;
});

await check("refresh: a rejected access token is renewed with the refresh token", async () => {
  const before = provider.tokenSaves;
  const oldRefresh = provider.saved!.refresh_token;
  provider.saved = { ...provider.saved!, access_token: "no-longer-valid" };
  const c = await connect();
  await c.listTools();
  assert(provider.tokenSaves === before + 1, `tokens saved ${provider.tokenSaves - before} times`);
  assert(provider.saved!.refresh_token && provider.saved!.refresh_token !== oldRefresh, "the refresh token was not rotated");
  return "refreshed and rotated";
});

async function rawInitialize(url: string, token: string) {
  const r = await fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "initialize", params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } } }),
  });
  return { status: r.status, challenge: r.headers.get("www-authenticate") ?? "" };
}

await check("an expired token gets 401 invalid_token", async () => {
  const expired = process.env.EXPIRED_TOKEN;
  assert(expired, "EXPIRED_TOKEN is not set");
  const { status, challenge } = await rawInitialize(mcpUrl, expired);
  assert(status === 401 && challenge.includes('error="invalid_token"') && challenge.includes("expired"), `${status} ${challenge}`);
  return challenge;
});

await check("a token for another resource gets 401 invalid_token", async () => {
  const other = new URL("/mcp", origin).toString();
  const { status, challenge } = await rawInitialize(other, provider.saved!.access_token);
  assert(status === 401 && challenge.includes('error="invalid_token"') && challenge.includes("another resource"), `${status} ${challenge}`);
  return challenge;
});

finish();
