#!/usr/bin/env python3
"""Storage SCP under load and abuse, side by side in one run.

Fifty DCMTK `storescu` processes at once, each sending 8 slices of the 400-slice
CT (every file once), while 40 idle TCP connections (a slowloris) are held open
against the same SCP, to:
- DCMTK `storescp --fork` (one process per association), and
- `lightbox listen` (one thread per association, scp_artim_timeout_s = 5).
Reported: wall time of the 50 pushes, for Lightbox its peak RSS, its threads
before and after, how many idle sockets it had closed 10 s after the pushes, and
that every object arrived. The machine is shared and noisy: read the ratios.

usage: python3 benches/scp_load.py [--slices 400] [--size 512] [--associations 50] [--idle 40]
Needs a release build (`cargo build --release`) and dcmtk.
"""
import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


def still_open(socks):
    n = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(1) == b"":
                continue
            n += 1
        except BlockingIOError:
            n += 1
        except OSError:
            pass
    return n


def push(port, called, files, n_assoc, env):
    chunks = [files[i::n_assoc] for i in range(n_assoc)]
    results = []

    def one(chunk):
        r = subprocess.run(["storescu", "-xi", "-aec", called, "127.0.0.1", str(port)] + chunk,
                           env=env, capture_output=True)
        results.append(r.returncode)

    ts = [threading.Thread(target=one, args=(c,)) for c in chunks]
    t = time.perf_counter()
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    return time.perf_counter() - t, sum(1 for r in results if r != 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=400)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--associations", type=int, default=50)
    ap.add_argument("--idle", type=int, default=40)
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-data"))
    ap.add_argument("--lightbox", default=os.path.join(ROOT, "target", "release", "lightbox"))
    a = ap.parse_args()
    lb = a.lightbox
    if not os.path.exists(lb):
        sys.exit(f"{lb} not found: run `cargo build --release` first")
    src = os.path.join(a.work, f"ct{a.size}x{a.slices}", "ct")
    if len(glob.glob(os.path.join(src, "*.dcm"))) != a.slices:
        subprocess.run([lb, "synth", os.path.dirname(src), "--what", "ct", "--slices", str(a.slices),
                        "--size", str(a.size)], check=True, capture_output=True)
    files = sorted(glob.glob(os.path.join(src, "*.dcm")))
    env = dict(os.environ, TCP_NODELAY="1")
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        # DCMTK storescp, forking per association.
        out = os.path.join(tmp, "storescp")
        os.makedirs(out)
        port = free_port()
        p = subprocess.Popen(["storescp", "--fork", "--output-directory", out, str(port)], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(a.idle)]
            os.sync()
            dcmtk_t, dcmtk_fail = push(port, "ANY-SCP", files, a.associations, env)
            time.sleep(10)
            dcmtk_open = still_open(idle)
            for s in idle:
                s.close()
            dcmtk_n = len(os.listdir(out))
        finally:
            p.kill()
            p.wait()
        # Lightbox.
        cfg = os.path.join(tmp, "config.toml")
        with open(cfg, "w") as f:
            f.write('ae_title = "LIGHTBOX"\nscp_artim_timeout_s = 5\n')
        cache = os.path.join(tmp, "cache")
        port = free_port()
        p = subprocess.Popen([lb, "listen", "--port", str(port), "--bind", "127.0.0.1", "--cache", cache],
                             env=dict(env, LIGHTBOX_CONFIG=cfg), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            wait_port(port)
            time.sleep(1)
            before = threads(p.pid)
            idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(a.idle)]
            os.sync()
            lb_t, lb_fail = push(port, "LIGHTBOX", files, a.associations, env)
            time.sleep(10)
            lb_open = still_open(idle)
            for s in idle:
                s.close()
            time.sleep(1)
            after = threads(p.pid)
            peak = proc_status(p.pid, "VmHWM:") // 1024
        finally:
            p.kill()
            p.wait()
        stats = subprocess.run([lb, "cache", "--cache", cache, "stats"], capture_output=True, text=True).stdout
        shutil.rmtree(cache)
    mb = sum(os.path.getsize(f) for f in files) / 1e6
    print(f"{a.associations} associations at once, {len(files)} files ({mb:.0f} MB), "
          f"{a.idle} idle connections held open")
    print(f"storescp --fork: {dcmtk_t*1e3:.0f} ms, {dcmtk_fail} failed pushes, {dcmtk_n} files, "
          f"{dcmtk_open} of {a.idle} idle connections still open 10 s later")
    print(f"lightbox listen: {lb_t*1e3:.0f} ms ({dcmtk_t/lb_t:.2f}x storescp's speed), {lb_fail} failed "
          f"pushes, {stats.strip()}; peak RSS {peak} MB; threads {before} before, {after} after; "
          f"{lb_open} of {a.idle} idle connections still open 10 s later")


if __name__ == "__main__":
    main()
