#!/usr/bin/env node
// An MCP server implementing the fixtures that the conformance suite's server scenarios ask for
// (their "Server Implementation Requirements": test_simple_text, test://static-text, ...), over
// Streamable HTTP on an OS-chosen loopback port. server-everything lacks these fixtures, so it fails
// most scenarios whatever the transport; this server lets the suite compare the gateway with a
// direct connection on every scenario. Written for these tests on the official TypeScript SDK.
//
// Prints exactly one line `listening on http://127.0.0.1:PORT` on stdout once bound; the MCP
// endpoint is /mcp.
import http from "node:http";
import { randomUUID } from "node:crypto";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  McpError,
  ErrorCode,
} from "@modelcontextprotocol/sdk/types.js";

// A 1x1 red PNG and a tiny silent WAV.
const PNG =
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
const WAV = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=";
const JSON_SCHEMA_2020_12 = "https://json-schema.org/draft/2020-12/schema";
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const text = (t) => ({ type: "text", text: t });

const TOOLS = [
  { name: "test_simple_text", description: "Returns simple text", inputSchema: { type: "object", properties: {} } },
  { name: "test_image_content", description: "Returns an image", inputSchema: { type: "object", properties: {} } },
  { name: "test_audio_content", description: "Returns audio", inputSchema: { type: "object", properties: {} } },
  { name: "test_embedded_resource", description: "Returns an embedded resource", inputSchema: { type: "object", properties: {} } },
  { name: "test_multiple_content_types", description: "Returns mixed content", inputSchema: { type: "object", properties: {} } },
  { name: "test_tool_with_logging", description: "Logs while running", inputSchema: { type: "object", properties: {} } },
  { name: "test_error_handling", description: "Always fails", inputSchema: { type: "object", properties: {} } },
  { name: "test_tool_with_progress", description: "Reports progress", inputSchema: { type: "object", properties: {} } },
  {
    name: "test_sampling",
    description: "Asks the client to sample",
    inputSchema: { type: "object", properties: { prompt: { type: "string" } }, required: ["prompt"] },
  },
  {
    name: "test_elicitation",
    description: "Asks the user through the client",
    inputSchema: { type: "object", properties: { message: { type: "string" } }, required: ["message"] },
  },
  { name: "test_elicitation_sep1034_defaults", description: "Elicitation with defaults", inputSchema: { type: "object", properties: {} } },
  { name: "test_elicitation_sep1330_enums", description: "Elicitation with enums", inputSchema: { type: "object", properties: {} } },
  {
    name: "json_schema_2020_12_tool",
    description: "Tool with JSON Schema 2020-12 features",
    inputSchema: {
      $schema: JSON_SCHEMA_2020_12,
      type: "object",
      $defs: { address: { type: "object", properties: { street: { type: "string" }, city: { type: "string" } } } },
      properties: { name: { type: "string" }, address: { $ref: "#/$defs/address" } },
      additionalProperties: false,
    },
  },
];

function createServer() {
  const server = new Server(
    { name: "portcullis-conformance-fixture", version: "1.0.0" },
    {
      capabilities: {
        tools: {},
        resources: { subscribe: true },
        prompts: {},
        logging: {},
        completions: {},
      },
    },
  );
  const subscriptions = new Set();

  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: TOOLS }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const args = req.params.arguments ?? {};
    const log = (data) =>
      server.notification(
        { method: "notifications/message", params: { level: "info", data } },
        { relatedRequestId: extra.requestId },
      );
    switch (req.params.name) {
      case "test_simple_text":
        return { content: [text("This is a simple text response for testing.")] };
      case "test_image_content":
        return { content: [{ type: "image", data: PNG, mimeType: "image/png" }] };
      case "test_audio_content":
        return { content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }] };
      case "test_embedded_resource":
        return {
          content: [
            {
              type: "resource",
              resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." },
            },
          ],
        };
      case "test_multiple_content_types":
        return {
          content: [
            text("Multiple content types test:"),
            { type: "image", data: PNG, mimeType: "image/png" },
            {
              type: "resource",
              resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: '{"test":"data","value":123}' },
            },
          ],
        };
      case "test_tool_with_logging":
        await log("Tool execution started");
        await delay(50);
        await log("Tool processing data");
        await delay(50);
        await log("Tool execution completed");
        return { content: [text("Tool with logging executed successfully")] };
      case "test_error_handling":
        return { isError: true, content: [text("This tool intentionally returns an error for testing")] };
      case "test_tool_with_progress": {
        const token = req.params._meta?.progressToken;
        for (const [i, p] of [0, 50, 100].entries()) {
          if (i > 0) await delay(50);
          if (token !== undefined) {
            await server.notification(
              { method: "notifications/progress", params: { progressToken: token, progress: p, total: 100 } },
              { relatedRequestId: extra.requestId },
            );
          }
        }
        return { content: [text("Tool with progress executed successfully")] };
      }
      case "test_sampling": {
        if (!server.getClientCapabilities()?.sampling) throw new McpError(ErrorCode.InvalidRequest, "the client does not support sampling");
        const r = await extra.sendRequest(
          {
            method: "sampling/createMessage",
            params: { messages: [{ role: "user", content: text(String(args.prompt)) }], maxTokens: 100 },
          },
          CreateMessageResultSchema,
        );
        const answer = r.content?.type === "text" ? r.content.text : JSON.stringify(r.content);
        return { content: [text(`LLM response: ${answer}`)] };
      }
      case "test_elicitation": {
        if (!server.getClientCapabilities()?.elicitation) throw new McpError(ErrorCode.InvalidRequest, "the client does not support elicitation");
        const r = await extra.sendRequest(
          {
            method: "elicitation/create",
            params: {
              message: String(args.message),
              requestedSchema: {
                type: "object",
                properties: {
                  username: { type: "string", description: "User's response" },
                  email: { type: "string", description: "User's email address" },
                },
                required: ["username", "email"],
              },
            },
          },
          ElicitResultSchema,
        );
        return { content: [text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
      }
      case "test_elicitation_sep1034_defaults": {
        const r = await extra.sendRequest(
          {
            method: "elicitation/create",
            params: {
              message: "Please review and update the form fields with defaults",
              requestedSchema: {
                type: "object",
                properties: {
                  name: { type: "string", description: "User name", default: "John Doe" },
                  age: { type: "integer", description: "User age", default: 30 },
                  score: { type: "number", description: "User score", default: 95.5 },
                  status: { type: "string", description: "User status", enum: ["active", "inactive", "pending"], default: "active" },
                  verified: { type: "boolean", description: "Verification status", default: true },
                },
              },
            },
          },
          ElicitResultSchema,
        );
        return { content: [text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
      }
      case "test_elicitation_sep1330_enums": {
        const r = await extra.sendRequest(
          {
            method: "elicitation/create",
            params: {
              message: "Please select options from the enum fields",
              requestedSchema: {
                type: "object",
                properties: {
                  untitledSingle: { type: "string", description: "Untitled single-select", enum: ["option1", "option2", "option3"] },
                  titledSingle: {
                    type: "string",
                    description: "Titled single-select",
                    oneOf: [
                      { const: "value1", title: "First Option" },
                      { const: "value2", title: "Second Option" },
                      { const: "value3", title: "Third Option" },
                    ],
                  },
                  legacyEnum: {
                    type: "string",
                    description: "Legacy titled enum",
                    enum: ["opt1", "opt2", "opt3"],
                    enumNames: ["Option One", "Option Two", "Option Three"],
                  },
                  untitledMulti: {
                    type: "array",
                    description: "Untitled multi-select",
                    items: { type: "string", enum: ["option1", "option2", "option3"] },
                  },
                  titledMulti: {
                    type: "array",
                    description: "Titled multi-select",
                    items: {
                      anyOf: [
                        { const: "value1", title: "First Choice" },
                        { const: "value2", title: "Second Choice" },
                        { const: "value3", title: "Third Choice" },
                      ],
                    },
                  },
                },
              },
            },
          },
          ElicitResultSchema,
        );
        return { content: [text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`)] };
      }
      case "json_schema_2020_12_tool":
        return { content: [text(`received ${JSON.stringify(args)}`)] };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Tool ${req.params.name} not found`);
    }
  });

  server.setRequestHandler(ListResourcesRequestSchema, async () => ({
    resources: [
      { uri: "test://static-text", name: "static-text", description: "A static text resource", mimeType: "text/plain" },
      { uri: "test://static-binary", name: "static-binary", description: "A static binary resource", mimeType: "image/png" },
      { uri: "test://watched-resource", name: "watched-resource", description: "A resource to subscribe to", mimeType: "text/plain" },
    ],
  }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({
    resourceTemplates: [
      { uriTemplate: "test://template/{id}/data", name: "template", description: "A templated resource", mimeType: "application/json" },
    ],
  }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
    const uri = req.params.uri;
    if (uri === "test://static-text") {
      return { contents: [{ uri, mimeType: "text/plain", text: "This is the content of the static text resource." }] };
    }
    if (uri === "test://static-binary") return { contents: [{ uri, mimeType: "image/png", blob: PNG }] };
    if (uri === "test://watched-resource") return { contents: [{ uri, mimeType: "text/plain", text: "watched" }] };
    const m = /^test:\/\/template\/([^/]+)\/data$/.exec(uri);
    if (m) {
      return {
        contents: [{ uri, mimeType: "application/json", text: JSON.stringify({ id: m[1], templateTest: true, data: `Data for ID: ${m[1]}` }) }],
      };
    }
    throw new McpError(ErrorCode.InvalidParams, `Resource ${uri} not found`);
  });
  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscriptions.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscriptions.delete(req.params.uri);
    return {};
  });

  const PROMPTS = [
    { name: "test_simple_prompt", description: "A simple prompt" },
    {
      name: "test_prompt_with_arguments",
      description: "A prompt with arguments",
      arguments: [
        { name: "arg1", description: "First test argument", required: true },
        { name: "arg2", description: "Second test argument", required: true },
      ],
    },
    {
      name: "test_prompt_with_embedded_resource",
      description: "A prompt with an embedded resource",
      arguments: [{ name: "resourceUri", description: "URI of the resource to embed", required: true }],
    },
    { name: "test_prompt_with_image", description: "A prompt with an image" },
  ];
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: PROMPTS }));
  server.setRequestHandler(GetPromptRequestSchema, async (req) => {
    const a = req.params.arguments ?? {};
    switch (req.params.name) {
      case "test_simple_prompt":
        return { messages: [{ role: "user", content: text("This is a simple prompt for testing.") }] };
      case "test_prompt_with_arguments":
        return { messages: [{ role: "user", content: text(`Prompt with arguments: arg1='${a.arg1}', arg2='${a.arg2}'`) }] };
      case "test_prompt_with_embedded_resource":
        return {
          messages: [
            {
              role: "user",
              content: { type: "resource", resource: { uri: a.resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } },
            },
            { role: "user", content: text("Please process the embedded resource above.") },
          ],
        };
      case "test_prompt_with_image":
        return {
          messages: [
            { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
            { role: "user", content: text("Please analyze the image above.") },
          ],
        };
      default:
        throw new McpError(ErrorCode.InvalidParams, `Prompt ${req.params.name} not found`);
    }
  });
  server.setRequestHandler(CompleteRequestSchema, async (req) => {
    const v = req.params.argument?.value ?? "";
    const values = ["paris", "park", "party"].filter((x) => x.startsWith(v));
    return { completion: { values, total: values.length, hasMore: false } };
  });
  server.setRequestHandler(SetLevelRequestSchema, async () => ({}));
  return server;
}

const transports = new Map();
let port = 0;

/** DNS-rebinding protection for a loopback server without auth: only loopback Host and Origin. */
function loopbackOnly(req) {
  const okHost = (h) => /^(127\.0\.0\.1|localhost|\[::1\])(:\d+)?$/i.test(h ?? "");
  if (!okHost(req.headers.host)) return false;
  const origin = req.headers.origin;
  if (origin) {
    try {
      if (!okHost(new URL(origin).host)) return false;
    } catch {
      return false;
    }
  }
  return true;
}

function jsonError(res, status, message) {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

const httpServer = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== "/mcp") return jsonError(res, 404, "not found: the MCP endpoint is /mcp");
    if (!loopbackOnly(req)) return jsonError(res, 403, "Forbidden: Host or Origin is not loopback");
    const sid = req.headers["mcp-session-id"];
    let transport = sid ? transports.get(sid) : undefined;
    if (sid && !transport) return jsonError(res, 404, "Session not found");
    if (!transport) {
      if (req.method !== "POST") return jsonError(res, 400, "Bad Request: no session; initialize first");
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, transport),
      });
      transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
      await createServer().connect(transport);
    }
    await transport.handleRequest(req, res);
  } catch (e) {
    console.error("conformance-server: request failed:", e);
    if (!res.headersSent) jsonError(res, 500, "Internal server error");
  }
});
httpServer.listen(0, "127.0.0.1", () => {
  port = httpServer.address().port;
  process.stdout.write(`listening on http://127.0.0.1:${port}\n`);
});
