#!/usr/bin/env python3
"""Runs the test executables a `cargo test --no-run --message-format=json` build listed,
two at a time (the slow ones first), each from its package's folder as `cargo test` would.

Why: the integration tests against real peers (PostgreSQL, Knot, moto, registries, etcd)
spend about half their time waiting on those servers, and `cargo test` runs one test
executable after another. Every executable the build produced is run: none is picked by
name, so a new test file cannot be left out.

Usage: run_test_binaries.py BUILD_JSON [JOBS]
Prints each executable's output when it ends (with cargo's "Running" header and its
"test result" line); exits 1 when any failed, listing them.
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

# Measured wall times (seconds, 2-core machine) of the slowest executables: started first,
# so that the pool does not end on one long run. Anything not named runs after these.
SLOW_FIRST = ["live", "postgres", "failover_drill", "dns", "hardening", "qovery", "registry"]


def executables(build_json):
    seen, out = set(), []
    with open(build_json) as f:
        for line in f:
            try:
                msg = json.loads(line)
            except json.JSONDecodeError:
                continue
            if msg.get("reason") != "compiler-artifact" or not msg.get("profile", {}).get("test"):
                continue
            exe = msg.get("executable")
            if not exe or exe in seen:
                continue
            seen.add(exe)
            target = msg["target"]
            out.append(
                {
                    "exe": exe,
                    "name": target["name"],
                    "src": target["src_path"],
                    "dir": os.path.dirname(msg["manifest_path"]),
                    "package": msg["package_id"],
                }
            )
    return out


def order(e):
    try:
        return (0, SLOW_FIRST.index(e["name"]))
    except ValueError:
        return (1, e["exe"])


def run(e):
    env = dict(os.environ)
    env["CARGO_MANIFEST_DIR"] = e["dir"]
    start = time.monotonic()
    p = subprocess.run([e["exe"]], cwd=e["dir"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return e, p.returncode, p.stdout.decode("utf-8", "replace"), time.monotonic() - start


def main():
    build_json = sys.argv[1]
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    todo = sorted(executables(build_json), key=order)
    if not todo:
        print("error: the build listed no test executable", file=sys.stderr)
        return 1
    failed = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for e, code, output, took in pool.map(run, todo):
            rel = os.path.relpath(e["src"], e["dir"])
            print(f"     Running {rel} ({os.path.relpath(e['exe'])}) [{took:.0f}s]", flush=True)
            print(output, end="" if output.endswith("\n") else "\n", flush=True)
            if code != 0:
                failed.append(f"{rel} of {e['package'].split('#')[0].rsplit('/', 1)[-1]} (exit {code})")
    if failed:
        print("error: these test executables failed:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    print(f"ok: {len(todo)} test executables passed ({jobs} at a time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
