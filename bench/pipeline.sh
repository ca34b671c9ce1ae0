#!/usr/bin/env bash
# Issue 6's benchmark: `tools/call` through the whole Portcullis pipeline (token check, policy,
# schema validation, detection on arguments and results, audit) against the bare proxy (the same
# binary with authentication, policy and inspection off) and the same upstream called directly,
# interleaved in one run, with the unchanged kit in ../shared/bench.
#
# usage: bench/pipeline.sh OUT_DIR
# Environment:
#   PORTCULLIS   the gateway binary (default target/release/portcullis; build: cargo build --release -p portcullis)
#   KIT          the kit folder (default ../shared/bench)
#   UPSTREAM     mcpbench-upstream binary (default $KIT/mcpbench-upstream/target/release/mcpbench-upstream)
#   MCPLOAD      mcpload binary (default $KIT/mcpload/target/release/mcpload)
#   BASELINE     optional: another Portcullis binary (an earlier commit's build); its whole pipeline
#                runs as a fourth target, `pipeline-base`, interleaved in the same run, so a change
#                is measured against what it replaces on the same machine at the same time
#   ROUNDS DURATION WARMUP CONCS PAYLOADS: passed to run-matrix.sh (defaults below)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:?usage: bench/pipeline.sh OUT_DIR}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
KIT="${KIT:-$root/../shared/bench}"
PORTCULLIS="${PORTCULLIS:-$root/target/release/portcullis}"
UPSTREAM="${UPSTREAM:-$KIT/mcpbench-upstream/target/release/mcpbench-upstream}"
MCPLOAD="${MCPLOAD:-$KIT/mcpload/target/release/mcpload}"
for b in "$PORTCULLIS" "$UPSTREAM" "$MCPLOAD" ${BASELINE:+"$BASELINE"}; do
  [[ -x "$b" ]] || { echo "missing binary $b (see the build lines in $KIT/README.md and this script's header)" >&2; exit 1; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
UP_PORT=$(free_port)
"$UPSTREAM" --addr "127.0.0.1:$UP_PORT" --mode stateless >"$out/upstream.log" 2>&1 &
UP=$!
work="$(mktemp -d)"
pids=("$UP")
trap 'kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT

# The bench upstream does not annotate its tools, so MCP's defaults make them destructive
# (scope bench:admin, confirmation). The admin vouches for them: read scope, marked read-only,
# so the baseline policy lets a reader call them without confirmation (as a demo search).
# The kit checks that a blob arrives with exactly the bytes asked for, and its records carry
# fake e-mail addresses: personal data in results is detected and recorded (`log`) rather than
# masked, so the result keeps its length. Secrets keep the built-in redaction; detection runs
# on every argument and result either way (the cost of rewriting is in the inspection crate's
# `results` benchmark, `demo_records_*`).
cat >"$work/full.yaml" <<YAML
inspection:
  default_rules: false
  rules:
    - {match: secret, action: redact}
    - {match: pii, direction: response, action: log}
connectors:
  bench:
    type: http
    url: http://127.0.0.1:$UP_PORT/mcp
    scopes:
      echo: bench:read
      blob: bench:read
    tools:
      echo: {read_only: true}
      blob: {read_only: true}
YAML
cat >"$work/bare.yaml" <<YAML
audit:
  wait_for_commit: false
inspection:
  enabled: false
  pin_tools: false
connectors:
  bench:
    type: http
    url: http://127.0.0.1:$UP_PORT/mcp
YAML

start() { # NAME CONFIG EXTRA_ARGS... ; sets GW_PID and GW_BASE (binary: $BIN, default $PORTCULLIS)
  local name=$1 cfg=$2
  shift 2
  RUST_LOG=warn "${BIN:-$PORTCULLIS}" serve --config "$cfg" --listen 127.0.0.1:0 --data-dir "$work/$name" "$@" \
    >"$work/$name.stdout" 2>"$out/$name.log" &
  GW_PID=$!
  pids+=("$GW_PID")
  for _ in $(seq 1 200); do
    grep -q '^listening on ' "$work/$name.stdout" 2>/dev/null && break
    sleep 0.1
  done
  GW_BASE="$(sed -n 's/^listening on //p' "$work/$name.stdout" | head -n1)"
  [[ -n "$GW_BASE" ]] || { echo "gateway $name did not start; see $out/$name.log" >&2; exit 1; }
}

start bare "$work/bare.yaml" --no-auth
BARE_PID=$GW_PID BARE_URL="$GW_BASE/mcp/bench"

# The full pipeline: a user and a token for the bench endpoint, minted with the CLI.
full() { # NAME BINARY ; sets FULL_PID FULL_URL TOKEN
  local name=$1
  BIN=$2
  mkdir -p "$work/$name"
  echo "bench-password-$RANDOM$RANDOM" | "$BIN" users add bench --role end_user --password-stdin --data-dir "$work/$name" >/dev/null
  start "$name" "$work/full.yaml"
  FULL_PID=$GW_PID FULL_URL="$GW_BASE/mcp/bench"
  TOKEN="$("$BIN" tokens issue --data-dir "$work/$name" --user bench --client bench-client \
    --resource "$FULL_URL" --scope bench:read --ttl-secs 86400)"
  BIN=
}
if [[ -n "${BASELINE:-}" ]]; then
  full base "$BASELINE"
  BASE_PID=$FULL_PID BASE_URL=$FULL_URL BASE_TOKEN=$TOKEN
  "$MCPLOAD" --url "$BASE_URL" -c 1 -d 1 --tool blob --bytes 4096 -H "Authorization: Bearer $BASE_TOKEN" >/dev/null
  "$BASELINE" --version >"$out/baseline-version.txt" 2>&1 || true
fi
full full "$PORTCULLIS"
echo "upstream http://127.0.0.1:$UP_PORT/mcp, bare $BARE_URL, full $FULL_URL${BASELINE:+, baseline $BASE_URL}" | tee "$out/setup.txt"

# One check each (the first response of each worker), so a misconfiguration fails here.
"$MCPLOAD" --url "$BARE_URL" -c 1 -d 1 -v >/dev/null
"$MCPLOAD" --url "$FULL_URL" -c 1 -d 1 -v -H "Authorization: Bearer $TOKEN" >/dev/null
"$MCPLOAD" --url "$FULL_URL" -c 1 -d 1 --tool blob --bytes 4096 -H "Authorization: Bearer $TOKEN" >/dev/null

printf 'direct\thttp://127.0.0.1:%s/mcp\t-\t\n' "$UP_PORT" >"$out/targets.tsv"
printf 'bare\t%s\t%s\t\n' "$BARE_URL" "$BARE_PID" >>"$out/targets.tsv"
printf 'pipeline\t%s\t%s\t-H "Authorization: Bearer %s"\n' "$FULL_URL" "$FULL_PID" "$TOKEN" >>"$out/targets.tsv"
if [[ -n "${BASELINE:-}" ]]; then
  printf 'pipeline-base\t%s\t%s\t-H "Authorization: Bearer %s"\n' "$BASE_URL" "$BASE_PID" "$BASE_TOKEN" >>"$out/targets.tsv"
fi
ROUNDS="${ROUNDS:-2}" DURATION="${DURATION:-10}" WARMUP="${WARMUP:-2}" CONCS="${CONCS:-1 16}" \
  PAYLOADS="${PAYLOADS:-echo blob:4096 blob:65536}" UPSTREAM_PID=$UP MCPLOAD="$MCPLOAD" \
  "$KIT/run-matrix.sh" "$out/targets.tsv" "$out"
# The token is a secret, even a bench one: keep it out of what is committed
# (before anything below can fail).
sed -i "s/$TOKEN/REDACTED/g" "$out/targets.tsv" "$out"/*.jsonl 2>/dev/null || true
[[ -z "${BASE_TOKEN:-}" ]] || sed -i "s/$BASE_TOKEN/REDACTED/g" "$out/targets.tsv" "$out"/*.jsonl 2>/dev/null || true
# run-matrix.sh writes bc's output as is, and bc prints a value under 1 without its leading zero
# (`"upstream_cpu_s":.930`), which is not JSON: add the zero before summarizing.
sed -i -E 's/:(-?)\./:\10./g' "$out/proc.jsonl"
python3 "$KIT/summarize.py" "$out" >"$out/table.md"
echo "results in $out/table.md"
