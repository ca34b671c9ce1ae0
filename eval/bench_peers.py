#!/usr/bin/env python3
"""Throughput of portcullis-detect and detect-secrets on the same corpus, in the same run.

    cargo build --release -p portcullis-detect --examples
    eval/.venv/bin/python eval/bench_peers.py [MB]

The corpus is benches/corpus.rs's mix (JSON tool outputs, logs, prose; clean and dense),
written to files by examples/gen_corpus. portcullis is timed by examples/prof (wall clock and
the scanning thread's CPU time, one core, every detector on); detect-secrets by its own
`SecretsCollection.scan_file` with default plugins and filters (one process, one core).
gitleaks is not measured: no package registry reachable here carries it (Debian bookworm has
no gitleaks package; the npm and PyPI packages of that name are wrappers that download the
binary at run time).
"""

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
EX = ROOT / "target" / "release" / "examples"


def main():
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 4
    out = {}
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([str(EX / "gen_corpus"), d, str(mb)], check=True, capture_output=True)
        for name in ("clean", "dense"):
            p = subprocess.run([str(EX / "prof"), name], check=True, capture_output=True, text=True)
            line = [l for l in p.stdout.splitlines() if "MB/s CPU-time" in l][-1]
            out[f"portcullis {name} (8 MB)"] = line
        from detect_secrets import SecretsCollection
        from detect_secrets.settings import default_settings
        for name in ("clean", "dense"):
            path = os.path.join(d, f"{name}.txt")
            size = os.path.getsize(path)
            t0 = time.perf_counter()
            c0 = time.process_time()
            with default_settings():
                sc = SecretsCollection()
                sc.scan_file(path)
            wall = time.perf_counter() - t0
            cpu = time.process_time() - c0
            n = sum(len(v) for v in sc.data.values())
            out[f"detect-secrets {name} ({mb} MB)"] = f"{n} secrets, {size / wall / 1e6:.2f} MB/s wall, {size / cpu / 1e6:.2f} MB/s CPU-time"
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
