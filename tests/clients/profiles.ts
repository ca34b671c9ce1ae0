// Shared by the TypeScript clients: command-line options and what each upstream server offers.
// py_client.py mirrors PROFILES; keep the two in step.

export const ALL_FEATURES = [
  "tools",
  "resources",
  "prompts",
  "progress",
  "sampling",
  "elicitation",
  "subscriptions",
  "cancellation",
  "logging",
] as const;

/** The canned LLM answer the client returns to sampling/createMessage. */
export const CANNED_SAMPLING_TEXT = "canned reply from the portcullis e2e client";
/** The name the client enters when it accepts an elicitation. */
export const ELICIT_NAME = "Ada Lovelace (portcullis e2e)";

export type Profile = {
  /** Tool names (without any namespace prefix) that tools/list must contain. */
  expectTools: string[];
  /** One tools/call and a substring its result must contain. */
  call: { name: string; args: Record<string, unknown>; expect: string };
  /** resources/list must hold a URI starting with this (after the URI prefix); the first is read. */
  resourceUriPrefix: string;
  /** A prompt to get; required arguments not given here are filled with "1". */
  prompt: { name: string; args: Record<string, string> };
  /** The features this server supports (the default for --features). */
  features: string[];
};

export const PROFILES: Record<string, Profile> = {
  // @modelcontextprotocol/server-everything 2026.8.31 (tool names as registered in its dist/tools).
  everything: {
    expectTools: [
      "echo",
      "get-sum",
      "trigger-long-running-operation",
      "toggle-simulated-logging",
      "toggle-subscriber-updates",
      "trigger-sampling-request",
      "trigger-elicitation-request",
    ],
    call: { name: "echo", args: { message: "hello portcullis" }, expect: "hello portcullis" },
    resourceUriPrefix: "demo://resource/static/document/",
    prompt: { name: "simple-prompt", args: {} },
    features: [...ALL_FEATURES],
  },
  // Portcullis's embedded demo connector (DESIGN.md "The embedded default").
  crm: {
    expectTools: ["search_customers", "get_customer", "delete_customer", "fetch_url", "export_customers"],
    call: { name: "search_customers", args: { query: "a", limit: 3 }, expect: "cus_" },
    resourceUriPrefix: "crm://schema",
    prompt: { name: "summarize_customer", args: { id: "cus_0001" } },
    features: ["tools", "resources", "prompts"],
  },
};

export type Options = {
  url: string;
  profile: string;
  namePrefix: string;
  uriPrefix: string;
  features: Set<string>;
  timeoutSec: number;
};

export function usage(prog: string): string {
  return (
    `usage: ${prog} URL [--profile ${Object.keys(PROFILES).join("|")}] [--name-prefix P] [--uri-prefix U]\n` +
    `       [--features ${ALL_FEATURES.join(",")}] [--timeout SECONDS]`
  );
}

export function parseOptions(argv: string[], prog: string): Options {
  const fail = (msg: string): never => {
    console.error(`${prog}: ${msg}\n${usage(prog)}`);
    process.exit(2);
  };
  let url: string | undefined;
  let profile = "everything";
  let namePrefix = "";
  let uriPrefix = "";
  let features: string | undefined;
  let timeoutSec = 120;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => argv[++i] ?? fail(`${a} needs a value`);
    if (a === "--profile") profile = val();
    else if (a === "--name-prefix") namePrefix = val();
    else if (a === "--uri-prefix") uriPrefix = val();
    else if (a === "--features") features = val();
    else if (a === "--timeout") timeoutSec = Number(val());
    else if (a.startsWith("--")) fail(`unknown option ${a}`);
    else if (url === undefined) url = a;
    else fail(`unexpected argument ${a}`);
  }
  if (!url) fail("missing the server URL");
  if (!PROFILES[profile]) fail(`unknown profile ${profile}`);
  const list = features === undefined ? PROFILES[profile].features : features.split(",").filter(Boolean);
  for (const f of list) if (!(ALL_FEATURES as readonly string[]).includes(f)) fail(`unknown feature ${f}`);
  if (!(timeoutSec > 0)) fail("--timeout must be a positive number of seconds");
  return { url: url!, profile, namePrefix, uriPrefix, features: new Set(list), timeoutSec };
}
