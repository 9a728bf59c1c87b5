#!/usr/bin/env python3
"""Sending, and retrieving from a PACS with Nagle's algorithm on, side by side in
one run, as ratios.

- **Send**: the 400-slice 512x512 CT (200 MB) pushed over loopback to DCMTK's
  `storescp` (`--fork`, so parallel associations are served; writing to disk) by
  DCMTK's `storescu` and by `lightbox send` (its node's 4 associations, and
  `--parallel 1`). Every tool and the receiver with TCP_NODELAY=1.
- **Nagle**: `lightbox retrieve` of the same CT by C-MOVE and by C-GET from two
  Orthancs holding it, one started as Debian ships it (no TCP_NODELAY in its
  environment: Nagle on) and one with TCP_NODELAY=1; and by C-MOVE from two DCMTK
  `dcmqrscp`s, the same way. The goal: within 1.5x. `--lightbox BIN` measures
  another build (say, one from before a change).

Whole processes timed, interleaved, medians of --repeat runs, each after `sync`.
Needs a release build, dcmtk, orthanc, curl.

usage: python3 benches/compare_net.py [--repeat 5] [--only send|nagle]
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_qr import free_port, timed, upload, wait_port  # noqa: E402


def orthanc(tmp, name, nodelay, lb_port):
    db = os.path.join(tmp, name)
    os.makedirs(db)
    http, dicom = free_port(), free_port()
    cfg = {"Name": name, "StorageDirectory": db, "IndexDirectory": db, "HttpPort": http,
           "DicomPort": dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
           "AuthenticationEnabled": False, "Plugins": [],
           "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True,
           "DicomModalities": {"lightbox": ["LIGHTBOX", "127.0.0.1", lb_port]}}
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    env = dict(os.environ)
    env.pop("TCP_NODELAY", None)
    if nodelay:
        env["TCP_NODELAY"] = "1"
    p = subprocess.Popen(["Orthanc", path], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_port(http)
    wait_port(dicom)
    return p, http, dicom


def dcmqrscp(tmp, name, nodelay, lb_port, files):
    """DCMTK's dcmqrscp (AE DCMQR) holding `files`, knowing LIGHTBOX at lb_port."""
    db = os.path.join(tmp, name)
    os.makedirs(db)
    copies = []
    for i, f in enumerate(files):
        dst = os.path.join(db, f"f{i:05}.dcm")
        shutil.copy(f, dst)
        copies.append(dst)
    subprocess.run(["dcmqridx", db] + copies, check=True)
    port = free_port()
    cfg = os.path.join(tmp, name + ".cfg")
    with open(cfg, "w") as f:
        f.write(f"NetworkTCPPort = {port}\nMaxPDUSize = 65536\nMaxAssociations = 16\n"
                f"HostTable BEGIN\nlightbox = (LIGHTBOX, 127.0.0.1, {lb_port})\nHostTable END\n"
                "VendorTable BEGIN\nVendorTable END\n"
                f"AETable BEGIN\nDCMQR {db} RW (5000, 2048mb) ANY\nAETable END\n")
    env = dict(os.environ)
    env.pop("TCP_NODELAY", None)
    if nodelay:
        env["TCP_NODELAY"] = "1"
    p = subprocess.Popen(["dcmqrscp", "-c", cfg], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    wait_port(port)
    return p, port


def bench_send(lb, ct, tmp, repeat):
    env = dict(os.environ, TCP_NODELAY="1")
    port = free_port()
    out = os.path.join(tmp, "storescp-out")
    os.makedirs(out)
    scp = subprocess.Popen(["storescp", "--fork", "-aet", "STORESCP", "-od", out, str(port)],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t = {"storescu": [], "lb": [], "lb1": []}
    try:
        wait_port(port)
        peer = ["--host", "127.0.0.1", "--port", str(port), "--called-aet", "STORESCP"]
        for i in range(repeat):
            t["storescu"].append(timed(["storescu", "-aec", "STORESCP", "127.0.0.1", str(port)] + ct,
                                       env=env))
            for key, extra in (("lb", []), ("lb1", ["--parallel", "1"])):
                cache = os.path.join(tmp, f"cache-{key}{i}")
                # --force: a fresh ledger anyway, but say it.
                t[key].append(timed([lb, "send"] + peer + extra + ["--force", "--cache", cache,
                                                                   os.path.dirname(ct[0])], env=env))
                shutil.rmtree(cache)
            shutil.rmtree(out)
            os.makedirs(out)
    finally:
        scp.kill()
    m = {k: statistics.median(v) for k, v in t.items()}
    print(f"send 400x512x512 CT to storescp --fork, TCP_NODELAY=1; medians of {repeat}")
    print(f"  storescu {m['storescu']*1e3:.0f} ms, lightbox send {m['lb']*1e3:.0f} ms "
          f"(4 associations) -> {m['storescu']/m['lb']:.2f}x as fast; "
          f"--parallel 1 {m['lb1']*1e3:.0f} ms -> {m['storescu']/m['lb1']:.2f}x")


def bench_nagle(lb, ct, study, tmp, repeat):
    lb_port = free_port()
    servers = {}
    try:
        for name, nodelay in (("nagle", False), ("nodelay", True)):
            servers[name] = orthanc(tmp, name, nodelay, lb_port)
            upload(servers[name][1], ct)
        t = {f"{s}-{m}": [] for s in servers for m in ("move", "get")}
        for i in range(repeat):
            for s, (_, _, dicom) in servers.items():
                peer = ["--host", "127.0.0.1", "--port", str(dicom), "--called-aet", "ORTHANC",
                        "--aet", "LIGHTBOX"]
                for m in ("move", "get"):
                    cache = os.path.join(tmp, f"cache-{s}-{m}{i}")
                    t[f"{s}-{m}"].append(timed([lb, "retrieve"] + peer + [
                        "--study", study, "--method", m, "--cache", cache,
                        "--scp-port", str(lb_port), "--scp-bind", "127.0.0.1"]))
                    shutil.rmtree(cache)
    finally:
        for p, _, _ in servers.values():
            p.kill()
            p.wait()
    m = {k: statistics.median(v) for k, v in t.items()}
    print(f"retrieve 400x512x512 CT from Orthanc, Nagle on vs TCP_NODELAY=1; medians of {repeat}")
    for op in ("move", "get"):
        a, b = m[f"nagle-{op}"], m[f"nodelay-{op}"]
        print(f"  C-{op.upper()}: Nagle on {a*1e3:.0f} ms, TCP_NODELAY {b*1e3:.0f} ms "
              f"-> {a/b:.2f}x (goal <= 1.5x)")
    # dcmqrscp, C-MOVE (its sub-operations come on associations it opens).
    qr = {}
    try:
        for name, nodelay in (("qr-nagle", False), ("qr-nodelay", True)):
            qr[name] = dcmqrscp(tmp, name, nodelay, lb_port, ct)
        t = {name: [] for name in qr}
        for i in range(repeat):
            for name, (_, port) in qr.items():
                cache = os.path.join(tmp, f"cache-{name}{i}")
                t[name].append(timed([lb, "retrieve", "--host", "127.0.0.1", "--port", str(port),
                                      "--called-aet", "DCMQR", "--aet", "LIGHTBOX", "--study",
                                      study, "--method", "move", "--cache", cache, "--scp-port",
                                      str(lb_port), "--scp-bind", "127.0.0.1"]))
                shutil.rmtree(cache)
    finally:
        for p, _ in qr.values():
            p.kill()
            p.wait()
    a, b = statistics.median(t["qr-nagle"]), statistics.median(t["qr-nodelay"])
    print(f"retrieve the same CT from dcmqrscp by C-MOVE; medians of {repeat}")
    print(f"  C-MOVE: Nagle on {a*1e3:.0f} ms, TCP_NODELAY {b*1e3:.0f} ms -> {a/b:.2f}x "
          f"(goal <= 1.5x)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", choices=["send", "nagle"])
    ap.add_argument("--work", default=os.path.join(ROOT, "target", "bench-data"))
    ap.add_argument("--lightbox", default=os.path.join(ROOT, "target", "release", "lightbox"))
    a = ap.parse_args()
    lb = a.lightbox
    if not os.path.exists(lb):
        sys.exit(f"{lb} not found: run `cargo build --release` first")
    src = os.path.join(a.work, "ct512x400", "ct")
    if len(glob.glob(os.path.join(src, "*.dcm"))) != 400:
        subprocess.run([lb, "synth", os.path.dirname(src), "--what", "ct", "--slices", "400",
                        "--size", "512"], check=True, capture_output=True)
    ct = sorted(glob.glob(os.path.join(src, "*.dcm")))
    study = subprocess.run([lb, "dump", ct[0], "--json"], check=True, capture_output=True, text=True)
    study = json.loads(study.stdout)["0020000D"]["Value"][0]
    os.makedirs(a.work, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        if a.only in (None, "send"):
            bench_send(lb, ct, tmp, a.repeat)
        if a.only in (None, "nagle"):
            bench_nagle(lb, ct, study, tmp, a.repeat)


if __name__ == "__main__":
    main()
