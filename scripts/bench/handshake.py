#!/usr/bin/env python3
"""Cold start -> go-plugin handshake line, for several provider binaries.

Used by scripts/bench-protocol.sh. Python standard library only.

For each run, each binary is spawned with the environment Terraform gives a
plugin (magic cookie, protocol versions 5,6, port range, PLUGIN_CLIENT_CERT),
the time from just before the spawn to the arrival of the first complete
stdout line is taken, and the process is SIGKILLed. Binaries are interleaved
run by run so that a burst of load on the shared machine hits all of them
alike. Every spawn gets its own empty TMPDIR, removed afterwards, so the
sockets a killed provider leaves behind (ours: <tmp>/.tmpXXXX/provider.sock,
Go: <tmp>/plugin*) are cleaned up.

  handshake.py --runs 50 --cert CERT.pem --tmp DIR --json OUT.json \
      NAME=PATH[=PREFIX] ...

PREFIX (e.g. "1|6|unix|") is checked against each handshake line. A binary
named "floor" with no PREFIX check is a measurement-floor reference (a
trivial program that prints one line).
"""

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

COOKIE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


def quantile(xs, q):
    s = sorted(xs)
    # nearest-rank, as in most latency reports
    k = max(0, min(len(s) - 1, int(round(q * len(s) + 0.5)) - 1))
    return s[k]


def one(path, env, tmp, timeout_s=10.0):
    """Returns (seconds, first line)."""
    os.makedirs(tmp)
    e = dict(env, TMPDIR=tmp)
    t0 = time.perf_counter_ns()
    p = subprocess.Popen(
        [path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, env=e, bufsize=0, close_fds=True,
    )
    buf = b""
    fd = p.stdout.fileno()
    deadline = time.monotonic() + timeout_s
    try:
        while b"\n" not in buf:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{path}: no handshake line within {timeout_s}s")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{path}: exited before the handshake line (status {p.wait()})")
            buf += chunk
        t1 = time.perf_counter_ns()
    finally:
        try:
            p.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        p.stdout.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return (t1 - t0) / 1e9, buf.split(b"\n", 1)[0].decode(errors="replace")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cert", required=True, help="PEM sent as PLUGIN_CLIENT_CERT")
    ap.add_argument("--tmp", required=True, help="scratch directory (must exist)")
    ap.add_argument("--json", required=True)
    ap.add_argument("binaries", nargs="+", metavar="NAME=PATH[=PREFIX]")
    a = ap.parse_args()
    a.tmp = os.path.abspath(a.tmp)

    with open(a.cert) as f:
        cert = f.read()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "TF_PLUGIN_MAGIC_COOKIE": COOKIE,
        "PLUGIN_PROTOCOL_VERSIONS": "5,6",
        "PLUGIN_MIN_PORT": "10000",
        "PLUGIN_MAX_PORT": "25000",
        "PLUGIN_CLIENT_CERT": cert,
    }
    bins = []
    for spec in a.binaries:
        parts = spec.split("=", 2)
        bins.append((parts[0], parts[1], parts[2] if len(parts) > 2 else None))

    samples = {n: [] for n, _, _ in bins}
    lines = {}
    seq = 0
    for i in range(a.warmup + a.runs):
        for name, path, prefix in bins:
            seq += 1
            dt, line = one(path, env, os.path.join(a.tmp, f"hs{seq}"))
            if prefix is not None and not line.startswith(prefix):
                sys.exit(f"{name}: unexpected handshake line {line[:80]!r} (want {prefix!r}...)")
            lines[name] = line
            if i >= a.warmup:
                samples[name].append(dt)

    out = {}
    for name, _, _ in bins:
        xs = samples[name]
        out[name] = {
            "runs": len(xs),
            "median_ms": statistics.median(xs) * 1e3,
            "p90_ms": quantile(xs, 0.90) * 1e3,
            "min_ms": min(xs) * 1e3,
            "max_ms": max(xs) * 1e3,
            "line": ("|".join(lines[name].split("|")[:5]) + "|…") if lines[name] else "(empty line)",
        }
        r = out[name]
        print(f"  {name:<10} median {r['median_ms']:7.2f} ms  p90 {r['p90_ms']:7.2f} ms  "
              f"min {r['min_ms']:6.2f}  max {r['max_ms']:7.2f}  ({r['runs']} runs)  {r['line']}")
    # leftovers: a killed Go plugin leaves plugin* sockets; we used private TMPDIRs
    left = os.listdir(a.tmp)
    if left:
        print(f"  note: removing {len(left)} leftover entries in scratch dir", file=sys.stderr)
        for x in left:
            shutil.rmtree(os.path.join(a.tmp, x), ignore_errors=True)
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
