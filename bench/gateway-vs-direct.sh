#!/usr/bin/env bash
# Measures `tools/call` through Portcullis against the same upstream called directly, with the
# unchanged kit in ../shared/bench (mcpbench-upstream + mcpload + run-matrix.sh + summarize.py).
#
# usage: bench/gateway-vs-direct.sh OUT_DIR
# Environment:
#   PORTCULLIS   the gateway binary (default target/release/portcullis; build: cargo build --release -p portcullis)
#   KIT          the kit folder (default ../shared/bench)
#   UPSTREAM     mcpbench-upstream binary (default $KIT/mcpbench-upstream/target/release/mcpbench-upstream)
#   MCPLOAD      mcpload binary (default $KIT/mcpload/target/release/mcpload)
#   ROUNDS DURATION WARMUP CONCS PAYLOADS: passed to run-matrix.sh (defaults below)
#   SESSIONS     also measure gateway RSS holding this many concurrent sessions (default 1000; 0 = skip)
#   WAIT_FOR_COMMIT  audit.wait_for_commit of the gateway (default true, the product default: a call is
#                answered once its audit event is committed; false answers first, as a bare proxy)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: bench/gateway-vs-direct.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
KIT="${KIT:-$root/../shared/bench}"
PORTCULLIS="${PORTCULLIS:-$root/target/release/portcullis}"
UPSTREAM="${UPSTREAM:-$KIT/mcpbench-upstream/target/release/mcpbench-upstream}"
MCPLOAD="${MCPLOAD:-$KIT/mcpload/target/release/mcpload}"
for b in "$PORTCULLIS" "$UPSTREAM" "$MCPLOAD"; do
  [[ -x "$b" ]] || { echo "missing binary $b (see the build lines in $KIT/README.md and this script's header)" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port)
"$UPSTREAM" --addr "127.0.0.1:$UP_PORT" --mode stateless >"$out/upstream.log" 2>&1 &
UP=$!
data="$(mktemp -d)"
cat >"$data/portcullis.yaml" <<YAML
audit:
  wait_for_commit: ${WAIT_FOR_COMMIT:-true}
connectors:
  bench:
    type: http
    url: http://127.0.0.1:$UP_PORT/mcp
YAML
RUST_LOG=warn "$PORTCULLIS" serve --config "$data/portcullis.yaml" --listen 127.0.0.1:0 --data-dir "$data/state" >"$data/stdout" 2>"$out/gateway.log" &
GW=$!
trap 'kill $GW $UP 2>/dev/null; wait $GW $UP 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$data/stdout" 2>/dev/null && break
  sleep 0.1
done
GW_URL="$(sed -n 's/^listening on //p' "$data/stdout" | head -n1)/mcp/bench"
echo "upstream http://127.0.0.1:$UP_PORT/mcp (pid $UP), gateway $GW_URL (pid $GW)" | tee "$out/setup.txt"

"$MCPLOAD" --url "$GW_URL" -c 2 -d 1 -v >/dev/null

printf 'direct\thttp://127.0.0.1:%s/mcp\t-\t\n' "$UP_PORT" >"$out/targets.tsv"
printf 'portcullis\t%s\t%s\t\n' "$GW_URL" "$GW" >>"$out/targets.tsv"
ROUNDS="${ROUNDS:-2}" DURATION="${DURATION:-10}" WARMUP="${WARMUP:-2}" CONCS="${CONCS:-1 16 64}" \
  PAYLOADS="${PAYLOADS:-echo blob:4096 blob:65536}" UPSTREAM_PID=$UP MCPLOAD="$MCPLOAD" \
  "$KIT/run-matrix.sh" "$out/targets.tsv" "$out"
python3 "$KIT/summarize.py" "$out" >"$out/table.md"

SESSIONS="${SESSIONS:-1000}"
if [[ "$SESSIONS" -gt 0 ]]; then
  # RSS of a fresh gateway while it holds SESSIONS concurrent sessions (one per mcpload worker,
  # each with its connection open and calls in flight), so earlier runs' heap does not count.
  kill $GW; wait $GW 2>/dev/null || true
  rm -rf "$data/state" "$data/stdout"
  RUST_LOG=warn "$PORTCULLIS" serve --config "$data/portcullis.yaml" --listen 127.0.0.1:0 --data-dir "$data/state" >"$data/stdout" 2>>"$out/gateway.log" &
  GW=$!
  for _ in $(seq 1 100); do
    grep -q '^listening on ' "$data/stdout" 2>/dev/null && break
    sleep 0.1
  done
  GW_URL="$(sed -n 's/^listening on //p' "$data/stdout" | head -n1)/mcp/bench"
  idle=$(awk '/^VmRSS:/{print $2}' /proc/$GW/status)
  "$MCPLOAD" --url "$GW_URL" -c "$SESSIONS" -d 5 --warmup 1 --tool echo --label "sessions-$SESSIONS" --out "$out/sessions.jsonl" >/dev/null &
  LOAD=$!
  sleep 4
  rss=$(awk '/^VmRSS:/{print $2}' /proc/$GW/status)
  wait $LOAD || true
  hwm=$(awk '/^VmHWM:/{print $2}' /proc/$GW/status)
  echo "{\"sessions\": $SESSIONS, \"gw_rss_kb_idle\": $idle, \"gw_rss_kb_under_load\": $rss, \"gw_hwm_kb\": $hwm}" | tee "$out/sessions-rss.json"
fi
echo "results in $out/table.md"
