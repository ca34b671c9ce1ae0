#!/usr/bin/env python3
"""Trains Portcullis' compact prompt-injection classifier, reproducibly.

    python3 -m venv training/.venv
    training/.venv/bin/pip install -r training/requirements.txt
    training/.venv/bin/python training/train_classifier.py          # writes the model
    training/.venv/bin/python training/train_classifier.py --check  # retrains, compares bytes

Model: logistic regression over hashed features (word unigrams, word bigrams, character
4-grams of the lowercased token stream), 2^18 buckets, weights quantized to int8. The feature
code below mirrors crates/portcullis-detect/src/classifier.rs byte for byte; the output file is
crates/portcullis-detect/model/injection.pcic. Data: training/corpora.py (sources in DATA.md);
only `split == "train"` rows are used here. A validation part is carved from them by a second
salted hash (VAL_SALT): the model is fitted on the rest, and the decision threshold is the
lowest one whose false-positive rate on the validation negatives, pooled and per family, is
at most VAL_FPR (never below 0.5, the confidence at which a finding counts). The eval rows only appear in the report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import pathlib
import struct
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpora  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "crates" / "portcullis-detect" / "model" / "injection.pcic"
BITS = 18
F_UNI, F_BI, F_CHAR4 = 1, 2, 4
FLAGS = F_UNI | F_BI | F_CHAR4
MASK64 = (1 << 64) - 1
VAL_SALT = "portcullis-val-v1"
VAL_SHARE = 20  # percent of the training rows held back for calibration
VAL_FPR = 0.01
FAMILY_MIN = 100
THR_FLOOR = 0.5


def fnv1a(seed: int, data: bytes) -> int:
    h = 0xCBF29CE484222325 ^ seed
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & MASK64
    return h


def features(text: str, flags: int = FLAGS) -> list[int]:
    """Same as classifier::features in Rust."""
    t = text.encode("utf-8")
    norm = bytearray()
    toks = []
    i, n = 0, len(t)
    while i < n:
        c = t[i]
        if (c < 128 and chr(c).isalnum()) or c >= 0x80:
            s = i
            while i < n and ((t[i] < 128 and chr(t[i]).isalnum()) or t[i] >= 0x80):
                i += 1
            e = min(s + 32, i)
            if norm:
                norm.append(0x20)
            ns = len(norm)
            norm.extend(bytes(t[s:e]).lower())
            toks.append((ns, len(norm)))
        else:
            i += 1
    out = []
    norm = bytes(norm)
    if flags & F_UNI:
        out.extend(fnv1a(1, norm[s:e]) for s, e in toks)
    if flags & F_BI:
        out.extend(fnv1a(2, norm[toks[k][0]:toks[k + 1][1]]) for k in range(len(toks) - 1))
    if flags & F_CHAR4 and len(norm) >= 4:
        out.extend(fnv1a(3, norm[k:k + 4]) for k in range(len(norm) - 3))
    return out


def design(texts, bits=BITS):
    rows, cols, vals = [], [], []
    mask = (1 << bits) - 1
    for r, t in enumerate(texts):
        hs = features(t)
        if not hs:
            continue
        inv = 1.0 / math.sqrt(len(hs))
        for h in hs:
            rows.append(r)
            cols.append(h & mask)
            vals.append(-inv if h >> 63 else inv)
    return np.array(rows, np.int64), np.array(cols, np.int64), np.array(vals, np.float64)


def train(X, y, n, d, l2=3e-4, iters=400, lr=0.05, rw=None):
    rows, cols, vals = X
    w = np.zeros(d)
    b = 0.0
    pos = y.sum()
    neg = n - pos
    sw = np.where(y == 1, n / (2 * pos), n / (2 * neg))  # balanced class weights
    if rw is not None:
        sw = sw * rw
    m_w = np.zeros(d); v_w = np.zeros(d); m_b = v_b = 0.0
    b1, b2, eps = 0.9, 0.999, 1e-8
    for it in range(1, iters + 1):
        z = np.bincount(rows, weights=w[cols] * vals, minlength=n) + b
        p = 1 / (1 + np.exp(-z))
        g = (p - y) * sw / n
        gw = np.bincount(cols, weights=g[rows] * vals, minlength=d) + l2 * w
        gb = g.sum()
        m_w = b1 * m_w + (1 - b1) * gw; v_w = b2 * v_w + (1 - b2) * gw * gw
        m_b = b1 * m_b + (1 - b1) * gb; v_b = b2 * v_b + (1 - b2) * gb * gb
        w -= lr * (m_w / (1 - b1 ** it)) / (np.sqrt(v_w / (1 - b2 ** it)) + eps)
        b -= lr * (m_b / (1 - b1 ** it)) / (math.sqrt(v_b / (1 - b2 ** it)) + eps)
    return w, b


def score(X, n, w, b):
    rows, cols, vals = X
    z = np.bincount(rows, weights=w[cols] * vals, minlength=n) + b
    return 1 / (1 + np.exp(-z))


def quantize(w):
    scale = float(np.abs(w).max() / 127.0) or 1e-9
    q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
    return q, np.float32(scale)


def metrics(p, y, thr):
    pred = p >= thr
    tp = int((pred & (y == 1)).sum()); fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum()); tn = int((~pred & (y == 0)).sum())
    return dict(tp=tp, fp=fp, fn=fn, tn=tn, recall=tp / max(tp + fn, 1), fpr=fp / max(fp + tn, 1),
                precision=tp / max(tp + fp, 1))


def family(r) -> str:
    """A row's family for calibration: its source without the version, and its kind."""
    return r["source"].rsplit("-", 1)[0] if r["source"][-1].isdigit() else r["source"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="retrain and compare with the committed model")
    ap.add_argument("--selftest", action="store_true", help="print feature hashes pinned by the Rust tests")
    ap.add_argument("--out", default=str(MODEL))
    a = ap.parse_args()
    if a.selftest:
        hs = features("Ignore ALL previous!", F_UNI | F_BI)
        print(len(hs), hs[0] == fnv1a(1, b"ignore"), hs[3] == fnv1a(2, b"ignore all"))
        return
    rows = corpora.all_rows()
    every = [r for r in rows if r["split"] == "train"]
    ev = [r for r in rows if r["split"] == "eval"]
    is_val = [int(hashlib.sha256((VAL_SALT + r["text"]).encode()).hexdigest()[:8], 16) % 100 < VAL_SHARE
              for r in every]
    tr = [r for r, v in zip(every, is_val) if not v]
    va = [r for r, v in zip(every, is_val) if v]
    y = np.array([r["label"] for r in tr], np.float64)
    d = 1 << BITS
    X = design([r["text"] for r in tr])
    # real corpora weigh more than generated text
    rw = np.array([1.0 if r["source"].startswith("generated") else 4.0 for r in tr])
    w, b = train(X, y, len(tr), d, rw=rw)
    q, scale = quantize(w)
    wq = q.astype(np.float64) * float(scale)
    p_tr = score(X, len(tr), wq, b)
    Xv = design([r["text"] for r in va])
    yv = np.array([r["label"] for r in va], np.float64)
    p_va = score(Xv, len(va), wq, b)
    # Threshold: the lowest score that at most VAL_FPR of the pooled validation negatives
    # exceed, raised so that it also holds on every family of negatives large enough to
    # measure (FAMILY_MIN rows; the pool is dominated by easy library docstrings), and never
    # below THR_FLOOR, the confidence at which any finding counts. VAL_FPR is a third of the
    # 3 % false-positive budget of issue 5, the rest left to the rules and to the shift between
    # validation and real text. (Until 2026-12-03: 0.5 % and a floor of 0.7, which the floor
    # decided.)
    def above(ps, rate):
        ps = np.sort(np.array(ps))
        k = int(np.floor(rate * len(ps)))  # this many may score above
        return float(ps[len(ps) - 1 - k] + 1e-6)

    fams = {}
    for r, p_, l in zip(va, p_va, yv):
        if l == 0:
            fams.setdefault(family(r), []).append(p_)
    per_family = {f: above(ps, VAL_FPR) for f, ps in sorted(fams.items()) if len(ps) >= FAMILY_MIN}
    pooled = above(p_va[yv == 0], VAL_FPR)
    thr = float(max([THR_FLOOR, pooled] + list(per_family.values())))
    Xe = design([r["text"] for r in ev])
    ye = np.array([r["label"] for r in ev], np.float64)
    p_ev = score(Xe, len(ev), wq, b)
    orig = {f.__name__ for f in corpora.ORIGINAL_SOURCES}
    orig_src = {r["source"] for f in corpora.ORIGINAL_SOURCES for r in f()[:1]}
    o = np.array([r["source"] in orig_src for r in ev])
    report = {
        "rows": {"train": len(tr), "validation": len(va), "eval": len(ev), "train_attacks": int(y.sum()),
                 "validation_attacks": int(yv.sum()), "eval_attacks": int(ye.sum())},
        "threshold": thr,
        "threshold_pooled": pooled,
        "threshold_per_negative_family": per_family,
        "train": metrics(p_tr, y, thr),
        "validation": metrics(p_va, yv, thr),
        "eval_whole_texts": metrics(p_ev, ye, thr),
        "eval_whole_texts_original_corpora": metrics(p_ev[o], ye[o], thr),
        "sources": sorted({r["source"] for r in rows}),
    }
    del orig
    blob = b"PCIC" + struct.pack("<IIIfff", 1, BITS, FLAGS, float(scale), float(b), thr) + q.tobytes()
    digest = hashlib.sha256(blob).hexdigest()
    report["sha256"] = digest
    print(json.dumps(report, indent=2))
    if a.check:
        old = pathlib.Path(a.out).read_bytes()
        same = hashlib.sha256(old).hexdigest() == digest
        print("committed model is", "identical" if same else "DIFFERENT")
        sys.exit(0 if same else 1)
    pathlib.Path(a.out).write_bytes(blob)
    (ROOT / "training" / "last_train_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {a.out} ({len(blob)} bytes)")


if __name__ == "__main__":
    main()
