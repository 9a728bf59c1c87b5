#!/usr/bin/env python3
"""Query/Retrieve speed against DCMTK, side by side in one run, as ratios.

A real PACS (Orthanc, on loopback, TCP_NODELAY=1) holds the 400-slice 512x512 CT
and 1,000 one-image studies. Measured, interleaved, medians of --repeat runs, each
after `sync` (so no tool pays for another's write-back):

- C-MOVE of the CT into a fresh cache: `lightbox retrieve` (its own Storage SCP,
  parallel associations, fsync + index) against DCMTK `movescu` with DCMTK
  `storescp` (already running) writing the same study to disk.
- C-GET of the CT: `lightbox retrieve --method get` against DCMTK `getscu`.
- Both again with `--middle-first`: what fetching each series' middle image
  first (an IMAGE level query, then the middle, then the rest) costs, as the
  viewer's retrieves always do.
- C-FIND at study level returning 1,000 studies: `lightbox find` against `findscu`.

Whole processes are timed (Lightbox's retrieve includes its C-FIND planning and
its final index commit). Needs a release build, dcmtk, orthanc, curl, pydicom.

usage: python3 benches/compare_qr.py [--repeat 5]
"""
import argparse
import glob
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port):
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def timed(cmd, **kw):
    os.sync()
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kw)
    return time.perf_counter() - t


def small_studies(dir, n):
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid
    os.makedirs(dir, exist_ok=True)
    px = np.arange(64, dtype=np.uint16).reshape(8, 8).tobytes()
    for i in range(n):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.PatientName, ds.PatientID = f"BENCH^{i:04d}", f"B{i:04d}"
        ds.StudyDate = f"{2000 + i % 25}{1 + i % 12:02d}{1 + i % 28:02d}"
        ds.StudyDescription, ds.Modality, ds.AccessionNumber = "BENCH", "OT", f"A{i:04d}"
        ds.SeriesNumber, ds.InstanceNumber = 1, 1
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.PixelData = px
        ds.save_as(os.path.join(dir, f"{i:04d}.dcm"), enforce_file_format=True)


def upload(http, files):
    for i in range(0, len(files), 200):
        cmd = ["curl", "-sS", "--fail"]
        for j, f in enumerate(files[i:i + 200]):
            if j:
                cmd.append("--next")
            cmd += ["-o", "/dev/null", "-X", "POST", f"http://127.0.0.1:{http}/instances",
                    "--data-binary", f"@{f}"]
        subprocess.run(cmd, check=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
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
    env = dict(os.environ, TCP_NODELAY="1")
    db = os.path.join(a.work, "orthanc-qr")
    fresh = not os.path.exists(db)
    os.makedirs(db, exist_ok=True)
    http, dicom, lb_port, dcmtk_port = free_port(), free_port(), free_port(), free_port()
    cfg = {"Name": "bench", "StorageDirectory": db, "IndexDirectory": db, "HttpPort": http,
           "DicomPort": dicom, "DicomAet": "ORTHANC", "RemoteAccessAllowed": False,
           "AuthenticationEnabled": False, "Plugins": [],
           "DicomAlwaysAllowFind": True, "DicomAlwaysAllowGet": True, "DicomAlwaysAllowMove": True,
           "DicomModalities": {"lightbox": ["LIGHTBOX", "127.0.0.1", lb_port],
                               "storescp": ["STORESCP", "127.0.0.1", dcmtk_port]}}
    with tempfile.TemporaryDirectory(dir=a.work) as tmp:
        cfg_path = os.path.join(tmp, "orthanc.json")
        with open(cfg_path, "w") as f:
            json.dump(cfg, f)
        orthanc = subprocess.Popen(["Orthanc", cfg_path], env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        storescp = None
        try:
            wait_port(http)
            wait_port(dicom)
            stats = json.load(urllib.request.urlopen(f"http://127.0.0.1:{http}/statistics"))
            if fresh or int(stats["CountInstances"]) < 1400:
                small = os.path.join(tmp, "small")
                small_studies(small, 1000)
                upload(http, ct + sorted(glob.glob(os.path.join(small, "*.dcm"))))
            out = os.path.join(tmp, "storescp-out")
            os.makedirs(out)
            storescp = subprocess.Popen(["storescp", "--output-directory", out, str(dcmtk_port)],
                                        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_port(dcmtk_port)
            peer = ["--host", "127.0.0.1", "--port", str(dicom), "--called-aet", "ORTHANC"]
            k = ["-k", "QueryRetrieveLevel=STUDY", "-k", f"StudyInstanceUID={study}"]
            t = {k_: [] for k_ in ["movescu", "lb_move", "lb_move_mid", "getscu", "lb_get",
                                   "lb_get_mid", "findscu", "lb_find"]}
            for i in range(a.repeat):
                t["movescu"].append(timed(["movescu", "-S", "-aec", "ORTHANC", "-aem", "STORESCP"] + k
                                          + ["127.0.0.1", str(dicom)], env=env))
                shutil.rmtree(out)
                os.makedirs(out)
                cache = os.path.join(tmp, f"cache-move{i}")
                t["lb_move"].append(timed([lb, "retrieve"] + peer + ["--aet", "LIGHTBOX", "--study", study,
                                          "--cache", cache, "--scp-port", str(lb_port),
                                          "--scp-bind", "127.0.0.1"], env=env))
                shutil.rmtree(cache)
                t["lb_move_mid"].append(timed([lb, "retrieve"] + peer + [
                    "--aet", "LIGHTBOX", "--study", study, "--cache", cache, "--scp-port",
                    str(lb_port), "--scp-bind", "127.0.0.1", "--middle-first"], env=env))
                shutil.rmtree(cache)
                gdir = os.path.join(tmp, f"getscu{i}")
                os.makedirs(gdir)
                t["getscu"].append(timed(["getscu", "-S", "-aec", "ORTHANC", "-od", gdir] + k
                                         + ["127.0.0.1", str(dicom)], env=env))
                shutil.rmtree(gdir)
                cache = os.path.join(tmp, f"cache-get{i}")
                t["lb_get"].append(timed([lb, "retrieve"] + peer + ["--study", study, "--method", "get",
                                                                    "--cache", cache], env=env))
                shutil.rmtree(cache)
                t["lb_get_mid"].append(timed([lb, "retrieve"] + peer + [
                    "--study", study, "--method", "get", "--cache", cache, "--middle-first"],
                    env=env))
                shutil.rmtree(cache)
                t["findscu"].append(timed(["findscu", "-S", "-aec", "ORTHANC", "-k",
                                           "QueryRetrieveLevel=STUDY", "-k", "PatientName",
                                           "-k", "PatientID", "-k", "StudyDate", "-k", "StudyInstanceUID",
                                           "-k", "AccessionNumber", "-k", "StudyDescription",
                                           "-k", "ModalitiesInStudy", "127.0.0.1", str(dicom)], env=env))
                t["lb_find"].append(timed([lb, "find"] + peer, env=env))
            n = subprocess.run([lb, "find"] + peer + ["--json"], check=True, capture_output=True, text=True)
            matches = len(json.loads(n.stdout))
        finally:
            if storescp:
                storescp.kill()
            orthanc.kill()
            orthanc.wait()
    m = {k_: statistics.median(v) for k_, v in t.items()}
    print(f"Orthanc on loopback, TCP_NODELAY=1; medians of {a.repeat}")
    print(f"C-MOVE 400x512x512 CT: movescu+storescp {m['movescu']*1e3:.0f} ms, lightbox "
          f"{m['lb_move']*1e3:.0f} ms -> lightbox {m['movescu']/m['lb_move']:.2f}x as fast")
    print(f"C-GET  400x512x512 CT: getscu {m['getscu']*1e3:.0f} ms, lightbox "
          f"{m['lb_get']*1e3:.0f} ms -> lightbox {m['getscu']/m['lb_get']:.2f}x as fast")
    print(f"--middle-first: C-MOVE {m['lb_move_mid']*1e3:.0f} ms, C-GET "
          f"{m['lb_get_mid']*1e3:.0f} ms -> {m['lb_move_mid']/m['lb_move']:.2f}x and "
          f"{m['lb_get_mid']/m['lb_get']:.2f}x the time without")
    print(f"C-FIND study level, {matches} matches: findscu {m['findscu']*1e3:.0f} ms, lightbox "
          f"{m['lb_find']*1e3:.0f} ms -> lightbox takes {m['lb_find']/m['findscu']:.2f}x findscu's time")


if __name__ == "__main__":
    main()
