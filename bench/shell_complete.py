#!/usr/bin/env python3
"""Tab completion in a directory of 10,000 entries (issue 21's figure: the
candidates appear within 50 ms of the key).

Starts a dfs-master on free ports in a temporary folder (listing needs no
node), makes DIR with ENTRIES folders file-00000.. through one `dfs-cli
shell` fed by a pipe, then drives an interactive `dfs-cli shell` on a
pseudo-terminal (pexpect): types `ls DIR/file-0120`, presses Tab and times
from the key to the last candidate on the screen (file-01209). Cold: the
listing cache is empty (a command ran since the last Tab), so the 10,000
entries come from the master; warm: Tab again at once (the 2 s cache).
Prints each run and the medians.

  bench/shell_complete.py [--runs N] [--entries N] [BUILD]   (BUILD: build/release)
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import pexpect


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--entries", type=int, default=10000)
    ap.add_argument("build", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", "build", "release"))
    a = ap.parse_args()
    master_bin = os.path.join(a.build, "master", "dfs-master")
    cli_bin = os.path.join(a.build, "client", "dfs-cli")
    for b in (master_bin, cli_bin):
        if not os.access(b, os.X_OK):
            sys.exit(f"shell_complete.py: no {b}")
    work = tempfile.mkdtemp(prefix="dfs-complete.")
    master = None
    try:
        os.mkdir(os.path.join(work, "master"))
        log = open(os.path.join(work, "master.log"), "w")
        master = subprocess.Popen([master_bin, "--dir", os.path.join(work, "master"), "--port", "0",
                                   "--log-level", "warn"], stdout=log, stderr=log)
        addr_file = os.path.join(work, "master", "master.addr")
        deadline = time.monotonic() + 30
        while not (os.path.exists(addr_file) and os.path.getsize(addr_file) > 0):
            if master.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"shell_complete.py: dfs-master did not start (see {work}/master.log)")
            time.sleep(0.05)
        addr = open(addr_file).read().strip()

        d = "/bench/complete"
        script = f"mkdir -p {d}\n" + "".join(f"mkdir {d}/file-{i:05d}\n" for i in range(a.entries))
        t = time.monotonic()
        r = subprocess.run([cli_bin, "--master", addr, "shell", "-e"], input=script.encode(), capture_output=True)
        if r.returncode != 0:
            sys.exit(f"shell_complete.py: making the entries failed: {r.stderr.decode()}")
        print(f"{a.entries} entries made in {time.monotonic() - t:.1f} s through one shell")

        env = dict(os.environ, DFS_HISTORY="", TERM="xterm")
        p = pexpect.spawn(cli_bin, ["--master", addr, "shell"], env=env, encoding="utf-8", timeout=10,
                          dimensions=(40, 160))
        p.delaybeforesend = None  # pexpect sleeps 50 ms before each send by default: not part of the figure
        p.expect(":/> ")
        last = "file-01209"
        cold, warm = [], []
        for run in range(a.runs):
            p.send(f"ls {d}/file-0120")
            p.expect("file-0120")  # the echo of what was typed
            t0 = time.perf_counter()
            p.send("\t")
            p.expect(last)
            cold.append((time.perf_counter() - t0) * 1000)
            p.expect("> ")  # the line again, under the candidates
            t0 = time.perf_counter()
            p.send("\t")
            p.expect(last)
            warm.append((time.perf_counter() - t0) * 1000)
            p.expect("> ")
            p.send("\x03")  # clear the line
            p.expect("> ")
            p.sendline("pwd")  # a command empties the listing cache: the next Tab is cold again
            p.expect("> ")
            print(f"run {run + 1}: cold {cold[-1]:.1f} ms, warm {warm[-1]:.1f} ms")
        p.sendeof()
        p.expect(pexpect.EOF)
        print(f"median of {a.runs}: cold {statistics.median(cold):.1f} ms (max {max(cold):.1f}), "
              f"warm {statistics.median(warm):.1f} ms (max {max(warm):.1f}); {a.entries} entries")
    finally:
        if master is not None:
            master.kill()
            master.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
