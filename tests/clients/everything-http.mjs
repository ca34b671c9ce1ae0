#!/usr/bin/env node
// Runs @modelcontextprotocol/server-everything over Streamable HTTP on a loopback port the OS
// chooses, and prints exactly one line `listening on http://127.0.0.1:PORT` on stdout once bound.
// Why a wrapper: the server reads PORT from the environment and logs the requested port, not the
// bound one, and binds every interface; tests need an OS-chosen loopback port they can learn.
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const origListen = http.Server.prototype.listen;
let announced = false;
http.Server.prototype.listen = function (...args) {
  // express calls listen(PORT, cb): force loopback and an OS-chosen port.
  const cb = args.find((a) => typeof a === "function");
  this.once("listening", () => {
    if (announced) return;
    announced = true;
    const addr = this.address();
    process.stdout.write(`listening on http://127.0.0.1:${addr.port}\n`);
  });
  return origListen.call(this, 0, "127.0.0.1", cb);
};
// The server logs every request with console.log; keep stdout for the listening line only.
console.log = (...a) => console.error(...a);

const require = createRequire(import.meta.url);
const pkgDir = path.dirname(require.resolve("@modelcontextprotocol/server-everything/package.json"));
await import(pathToFileURL(path.join(pkgDir, "dist", "transports", "streamableHttp.js")).href);
