#!/usr/bin/env python3
"""Local-archive speed, side by side in one run, as ratios.

- Import of a 400-slice CT folder: `lightbox import` (copy, fsync, index) against
  `cp -r` of the same folder.
- Storage SCP: DCMTK `storescu -xi` pushing the same files over loopback to DCMTK's
  `storescp` and to `lightbox listen` (both with TCP_NODELAY=1).
- `lightbox cache ls` of a cache holding 10,000 studies (one small image each,
  written with pydicom and imported once), the whole process timed.

usage: python3 benches/compare_store.py [--slices 400] [--size 512] [--repeat 5]
Needs a release build, dcmtk. Medians of --repeat runs; the machine is shared and
noisy, read the ratios. Every timed run starts after `sync`, so no tool pays for
another's write-back; neither `cp` nor `storescp` fsyncs, Lightbox does.
"""
import argparse
import glob
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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


def timed(fn):
    # Start from no dirty pages: on ext4 (data=ordered) an fsync's journal commit
    # also writes back other files' dirty data, so without this one tool would pay
    # for the previous one's write-back.
    os.sync()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def cache_ls_bench(lb, work, n, repeat):
    """A cache of `n` one-image studies (made once, kept under `work`); `cache ls` timings."""
    cache = os.path.join(work, f"cache-{n}-studies")
    if not os.path.exists(os.path.join(cache, "index.sqlite")):
        import numpy as np
        import pydicom
        from pydicom.dataset import Dataset, FileMetaDataset
        from pydicom.uid import ExplicitVRLittleEndian, generate_uid
        src = os.path.join(work, f"studies-{n}")
        os.makedirs(src, exist_ok=True)
        px = np.arange(64, dtype=np.uint16).reshape(8, 8).tobytes()
        for i in range(n):
            ds = Dataset()
            ds.file_meta = FileMetaDataset()
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
            ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
            ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
            ds.PatientName, ds.PatientID = f"PATIENT^{i // 3:05d}", f"P{i // 3:05d}"
            ds.StudyDate = f"{2000 + i % 25}{1 + i % 12:02d}{1 + i % 28:02d}"
            ds.StudyDescription, ds.Modality = "CHEST", ["CT", "MR", "CR"][i % 3]
            ds.SeriesNumber, ds.InstanceNumber = 1, 1
            ds.Rows = ds.Columns = 8
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.PixelData = px
            ds.save_as(os.path.join(src, f"{i:05d}.dcm"), enforce_file_format=True)
        subprocess.run([lb, "import", src, "--cache", cache], check=True, capture_output=True)
        shutil.rmtree(src)
    out = subprocess.run([lb, "cache", "--cache", cache, "stats"], check=True, capture_output=True, text=True)
    if f"{n} studies" not in out.stdout.replace(",", ""):
        print(out.stdout)
    times = []
    for _ in range(max(repeat, 5)):
        times.append(timed(lambda: subprocess.run([lb, "cache", "--cache", cache, "ls"], check=True,
                                                  stdout=subprocess.DEVNULL)))
    return times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=400)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--studies", type=int, default=10000)
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
    cp_t, imp_t, scp_dcmtk, scp_lb = [], [], [], []
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        subprocess.run(["cat"] + files, check=True, stdout=subprocess.DEVNULL)  # warm cache
        for i in range(a.repeat):
            dst = os.path.join(tmp, f"cp{i}")
            cp_t.append(timed(lambda: subprocess.run(["cp", "-r", src, dst], check=True)))
            shutil.rmtree(dst)
            cache = os.path.join(tmp, f"cache{i}")
            imp_t.append(timed(lambda: subprocess.run([lb, "import", src, "--cache", cache], check=True,
                                                      capture_output=True)))
            shutil.rmtree(cache)
        # Storage SCPs: start one, push every file with storescu, stop it.
        def receive(server_cmd, called_ae, port):
            p = subprocess.Popen(server_cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_port(port)
                return timed(lambda: subprocess.run(
                    ["storescu", "-xi", "-aec", called_ae, "127.0.0.1", str(port)] + files,
                    env=env, check=True, capture_output=True))
            finally:
                p.kill()
                p.wait()

        for i in range(a.repeat):
            out = os.path.join(tmp, f"storescp{i}")
            os.makedirs(out)
            port = free_port()
            scp_dcmtk.append(receive(["storescp", "--output-directory", out, str(port)], "ANY-SCP", port))
            shutil.rmtree(out)
            cache = os.path.join(tmp, f"scpcache{i}")
            port = free_port()
            scp_lb.append(receive([lb, "listen", "--port", str(port), "--bind", "127.0.0.1", "--cache", cache],
                                  "LIGHTBOX", port))
            shutil.rmtree(cache)
    ls_t = cache_ls_bench(lb, a.work, a.studies, a.repeat)
    m = statistics.median
    print(f"cache ls: {a.studies} studies listed in {m(ls_t)*1e3:.1f} ms (whole process, median)")
    print(f"{a.slices} files of {a.size}x{a.size}; medians of {a.repeat}")
    print(f"import:  cp -r {m(cp_t)*1e3:.0f} ms, lightbox import {m(imp_t)*1e3:.0f} ms "
          f"-> {m(imp_t)/m(cp_t):.2f}x cp")
    print(f"receive: storescp {m(scp_dcmtk)*1e3:.0f} ms, lightbox listen {m(scp_lb)*1e3:.0f} ms "
          f"-> lightbox speed {m(scp_dcmtk)/m(scp_lb):.2f}x storescp")


if __name__ == "__main__":
    main()
