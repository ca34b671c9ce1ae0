// Drives the real MCP Inspector CLI (@modelcontextprotocol/inspector-cli) against one MCP endpoint:
// tools/list, tools/call, resources/list + read, prompts/list + get, each as its own CLI process,
// as a user would run it. Prints a JSON report; exits non-zero naming the failed step.
//
// Usage: tsx inspector-check.ts URL [--profile everything|crm] [--name-prefix P] [--uri-prefix U]
//                               [--features tools,resources,prompts] [--timeout SECONDS]
import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { parseOptions, PROFILES } from "./profiles.ts";

const opts = parseOptions(process.argv.slice(2), "tsx inspector-check.ts");
const profile = PROFILES[opts.profile];
const n = (name: string) => opts.namePrefix + name;
const require = createRequire(import.meta.url);
const cliDir = path.join(path.dirname(require.resolve("@modelcontextprotocol/inspector-cli/package.json")), "build");
const steps: { step: string; ok: boolean; detail: string; argv: string[] }[] = [];

class StepFailed extends Error {}

/** Runs one Inspector CLI command and returns its parsed JSON output. */
function inspector(step: string, args: string[]): any {
  const argv = ["cli.js", "--cli", opts.url, "--transport", "http", ...args];
  // The CLI reads its own package.json through a path that it checks relative to the working
  // directory but imports relative to its module (inspector-cli 1.0.3); running it from its
  // build directory makes both agree.
  const r = spawnSync(process.execPath, argv, {
    cwd: cliDir,
    encoding: "utf8",
    timeout: opts.timeoutSec * 1000,
    maxBuffer: 64 * 1024 * 1024,
  });
  const where = `inspector ${args.join(" ")}`;
  if (r.error) throw new StepFailed(`${where}: could not run: ${r.error.message}`);
  if (r.status !== 0) {
    throw new StepFailed(`${where}: exit ${r.status ?? r.signal}: ${(r.stderr + r.stdout).trim().slice(-600)}`);
  }
  try {
    return JSON.parse(r.stdout);
  } catch {
    throw new StepFailed(`${where}: output is not JSON: ${r.stdout.slice(0, 400)}`);
  }
}

function run(step: string, args: string[], verify: (out: any) => string): any {
  try {
    const out = inspector(step, args);
    const detail = verify(out);
    steps.push({ step, ok: true, detail, argv: args });
    return out;
  } catch (e: any) {
    steps.push({ step, ok: false, detail: String(e?.message ?? e), argv: args });
    return null;
  }
}
function check(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new StepFailed(msg);
}
function text(result: any): string {
  return (result?.content ?? []).map((c: any) => c.text ?? "").join("\n");
}

if (opts.features.has("tools")) {
  run("tools/list", ["--method", "tools/list"], (out) => {
    const names: string[] = (out.tools ?? []).map((t: any) => t.name);
    for (const t of profile.expectTools.filter((t) => !t.startsWith("trigger-sampling") && !t.startsWith("trigger-elicitation"))) {
      // The Inspector CLI declares no sampling or elicitation capability, so servers may hide those tools.
      check(names.includes(n(t)), `tools/list lacks ${n(t)}; got ${JSON.stringify(names)}`);
    }
    return `${names.length} tools`;
  });
  const call = profile.call;
  const kv = Object.entries(call.args).map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`);
  run("tools/call", ["--method", "tools/call", "--tool-name", n(call.name), ...(kv.length ? ["--tool-arg", ...kv] : [])], (out) => {
    check(!out.isError, `tools/call ${n(call.name)} returned isError: ${text(out)}`);
    check(JSON.stringify(out).includes(call.expect), `tools/call ${n(call.name)}: result lacks "${call.expect}"`);
    return `called ${n(call.name)}`;
  });
}
if (opts.features.has("resources")) {
  const listed = run("resources/list", ["--method", "resources/list"], (out) => {
    const want = opts.uriPrefix + profile.resourceUriPrefix;
    check(
      (out.resources ?? []).some((r: any) => r.uri.startsWith(want)),
      `resources/list has no URI starting with ${want}; got ${JSON.stringify((out.resources ?? []).map((r: any) => r.uri))}`,
    );
    return `${out.resources.length} resources`;
  });
  if (listed) {
    const uri = listed.resources.find((r: any) => r.uri.startsWith(opts.uriPrefix + profile.resourceUriPrefix)).uri;
    run("resources/read", ["--method", "resources/read", "--uri", uri], (out) => {
      check(out.contents?.[0]?.uri === uri, `resources/read ${uri} returned ${JSON.stringify(out).slice(0, 300)}`);
      return `read ${uri}`;
    });
  }
}
if (opts.features.has("prompts")) {
  const name = n(profile.prompt.name);
  const listed = run("prompts/list", ["--method", "prompts/list"], (out) => {
    const names = (out.prompts ?? []).map((p: any) => p.name);
    check(names.includes(name), `prompts/list lacks ${name}; got ${JSON.stringify(names)}`);
    return `${names.length} prompts`;
  });
  if (listed) {
    const declared = listed.prompts.find((p: any) => p.name === name);
    const args: Record<string, string> = { ...profile.prompt.args };
    for (const a of declared.arguments ?? []) if (a.required && !(a.name in args)) args[a.name] = "1";
    const kv = Object.entries(args).map(([k, v]) => `${k}=${v}`);
    run("prompts/get", ["--method", "prompts/get", "--prompt-name", name, ...(kv.length ? ["--prompt-args", ...kv] : [])], (out) => {
      check((out.messages ?? []).length > 0, `prompts/get ${name} returned no messages`);
      return `got ${name}`;
    });
  }
}

const failed = steps.filter((s) => !s.ok);
const ok = failed.length === 0 && steps.length > 0;
console.log(JSON.stringify({ client: "mcp-inspector-cli", url: opts.url, profile: opts.profile, ok, steps }, null, 2));
if (!ok) {
  const why = steps.length === 0 ? "no step ran (check --features)" : failed.map((s) => `${s.step}: ${s.detail}`).join("; ");
  console.error(`inspector-check FAILED against ${opts.url}: ${why}`);
  process.exit(1);
}
