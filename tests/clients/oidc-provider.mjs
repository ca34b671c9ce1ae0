#!/usr/bin/env node
// A real OpenID provider (the npm package `oidc-provider`) for Portcullis's federation tests
// (AUTH-6), on an OS-chosen loopback port. Prints exactly one line
// `listening on http://127.0.0.1:PORT` on stdout once bound; the issuer is that URL.
//
// Configuration comes from the environment:
//   OIDC_REDIRECT_URI   the static confidential client's redirect URI (required)
//   OIDC_RESOURCE       the one resource indicator (RFC 8707) it issues JWT access tokens for (required)
//   OIDC_CLIENT_ID      default `portcullis`
//   OIDC_CLIENT_SECRET  default `portcullis-test-secret`
// The account `alice` (password `wonderland`, groups ["engineering"]) signs in through a minimal
// interaction handler that a test drives over plain HTTP: GET the login form, POST the
// credentials, GET the consent form, POST the confirmation. Wrong passwords get the form again
// with a 401. Written for these tests on oidc-provider's documented interaction API.
import http from "node:http";
import crypto from "node:crypto";
import Provider, { errors } from "oidc-provider";

const redirectUri = process.env.OIDC_REDIRECT_URI;
const resource = process.env.OIDC_RESOURCE;
if (!redirectUri || !resource) {
  console.error("set OIDC_REDIRECT_URI and OIDC_RESOURCE");
  process.exit(2);
}
const clientId = process.env.OIDC_CLIENT_ID || "portcullis";
const clientSecret = process.env.OIDC_CLIENT_SECRET || "portcullis-test-secret";

const ACCOUNTS = {
  alice: {
    password: "wonderland",
    claims: {
      sub: "alice",
      name: "Alice Liddell",
      preferred_username: "alice",
      email: "alice@example.com",
      email_verified: true,
      groups: ["engineering"],
    },
  },
};

// Two signing keys, so that tokens must be matched to keys by kid.
function signingKey(type, options, alg) {
  const { privateKey } = crypto.generateKeyPairSync(type, options);
  const jwk = privateKey.export({ format: "jwk" });
  return { ...jwk, kid: `${alg.toLowerCase()}-${crypto.randomUUID().slice(0, 8)}`, alg, use: "sig" };
}
const jwks = {
  keys: [
    signingKey("rsa", { modulusLength: 2048 }, "RS256"),
    signingKey("ec", { namedCurve: "P-256" }, "ES256"),
  ],
};

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function page(res, status, title, body) {
  res.statusCode = status;
  res.setHeader("Content-Type", "text/html; charset=utf-8");
  res.setHeader("Cache-Control", "no-store");
  res.end(`<!doctype html><html><head><title>${escape(title)}</title></head><body>${body}</body></html>`);
}
function loginForm(res, uid, status = 200, message = "") {
  page(
    res,
    status,
    "Sign in",
    `${message ? `<p class="error">${escape(message)}</p>` : ""}` +
      `<form method="post" action="/interaction/${escape(uid)}/login">` +
      `<input name="login" autocomplete="username"><input name="password" type="password">` +
      `<button type="submit">Sign in</button></form>`,
  );
}
async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error("form too large");
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

let provider;
const server = http.createServer(async (req, res) => {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(\/login|\/confirm)?$/.exec(req.url.split("?")[0]);
  if (!m) return provider.callback()(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    const [, uid, action] = m;
    if (req.method === "GET" && !action) {
      if (details.prompt.name === "login") return loginForm(res, uid);
      return page(
        res,
        200,
        "Consent",
        `<p>${escape(details.params.client_id)} asks for ${escape(details.params.scope)}</p>` +
          `<form method="post" action="/interaction/${escape(uid)}/confirm"><button type="submit">Allow</button></form>`,
      );
    }
    if (req.method === "POST" && action === "/login" && details.prompt.name === "login") {
      const form = await readForm(req);
      const account = ACCOUNTS[form.get("login")];
      const given = Buffer.from(form.get("password") || "");
      const want = Buffer.from(account?.password || "");
      if (!account || given.length !== want.length || !crypto.timingSafeEqual(given, want)) {
        return loginForm(res, uid, 401, "wrong user name or password");
      }
      return provider.interactionFinished(req, res, { login: { accountId: form.get("login") } }, { mergeWithLastSubmission: false });
    }
    if (req.method === "POST" && action === "/confirm" && details.prompt.name === "consent") {
      const { accountId } = details.session;
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({ accountId, clientId: details.params.client_id });
      const d = details.prompt.details;
      if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(" "));
      if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(d.missingResourceScopes || {})) {
        grant.addResourceScope(indicator, scopes.join(" "));
      }
      const grantId = await grant.save();
      return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    }
    page(res, 400, "Bad request", "<p>unexpected interaction step</p>");
  } catch (e) {
    console.error("interaction error:", e && e.message);
    page(res, 400, "Error", `<p>${escape(e && e.message)}</p>`);
  }
});

server.listen(0, "127.0.0.1", () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  provider = new Provider(issuer, {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: [redirectUri],
        grant_types: ["authorization_code"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks,
    cookies: { keys: [crypto.randomBytes(32).toString("hex")] },
    pkce: { required: () => true },
    scopes: ["openid", "profile", "email", "groups", "crm:read"],
    claims: {
      openid: ["sub"],
      profile: ["name", "preferred_username"],
      email: ["email", "email_verified"],
      groups: ["groups"],
    },
    // Claims in the ID token itself: the access token is for the resource, not for userinfo.
    conformIdTokenClaims: false,
    async findAccount(_ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ ...account.claims }) };
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => resource,
        // A login that asked for the resource's scope gets its access token for the resource;
        // a plain login gets the provider's own (opaque, for userinfo).
        useGrantedResource: async (_ctx, model) => model.scopes.has("crm:read"),
        async getResourceServerInfo(_ctx, indicator) {
          if (indicator !== resource) throw new errors.InvalidTarget();
          return {
            scope: "crm:read",
            audience: resource,
            accessTokenTTL: 300,
            accessTokenFormat: "jwt",
            jwt: { sign: { alg: "ES256" } },
          };
        },
      },
    },
    ttl: {
      AccessToken: 300,
      AuthorizationCode: 60,
      IdToken: 300,
      Grant: 600,
      Interaction: 600,
      Session: 600,
    },
  });
  provider.on("server_error", (_ctx, err) => console.error("server_error:", err && err.message));
  console.log(`listening on ${issuer}`);
});

for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
