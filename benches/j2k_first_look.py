#!/usr/bin/env python3
"""JPEG 2000 in the viewer: how soon a whole stack is on screen.

The synthetic 400-slice 512x512 CT, every file encoded by GDCM (`gdcmconv --j2k`,
lossless), opened with `lightbox view DIR` under Xvfb (lavapipe) with
LIGHTBOX_TIMING=1: the time from process start until every slice has something
on screen (the previews: each frame decoded two resolution levels down, 1/4 of
its size each way, while the middle slice is decoded in full), and until every
slice is decoded in full. Side by side in the same run, alternating: SimpleITK's
ImageSeriesReader loading the same folder (GDCM with OpenJPEG, the same decoder
library), and `lightbox volume DIR` (the full load without a window).

usage: python3 benches/j2k_first_look.py [--repeat 5]   (needs a release build,
Xvfb, gdcmconv and SimpleITK)
"""
import argparse
import glob
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def timed(cmd, env=None, timeout=600):
    start = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr[-2000:]}")
    return (time.perf_counter() - start) * 1e3, p.stdout


def sitk_load(d):
    import SimpleITK as sitk

    start = time.perf_counter()
    r = sitk.ImageSeriesReader()
    r.SetFileNames(r.GetGDCMSeriesFileNames(d))
    a = sitk.GetArrayFromImage(r.Execute())
    assert a.shape == (400, 512, 512), a.shape
    return (time.perf_counter() - start) * 1e3


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--data", default=os.path.join(ROOT, "target", "bench-data"))
    ap.add_argument("--lightbox", default=os.path.join(ROOT, "target", "release", "lightbox"))
    a = ap.parse_args()
    if not os.path.exists(a.lightbox):
        sys.exit("run `cargo build --release` first")
    # The same folders as benches/compare.py's.
    native = os.path.join(a.data, "ct512x400")
    j2k = os.path.join(a.data, "ct512x400-jpeg-2000-lossless")
    if not os.path.isdir(native):
        subprocess.run([a.lightbox, "synth", native, "--what", "ct", "--slices", "400"],
                       check=True, capture_output=True)
    if len(glob.glob(os.path.join(native, "ct", "*.dcm"))) != 400:
        sys.exit(f"{native}/ct: expected the 400 CT slices")
    if len(glob.glob(os.path.join(j2k, "*.dcm"))) != 400:
        os.makedirs(j2k, exist_ok=True)
        files = sorted(glob.glob(os.path.join(native, "ct", "*.dcm")))
        procs = []
        for f in files:
            procs.append(subprocess.Popen(["gdcmconv", "--j2k", f,
                                           os.path.join(j2k, os.path.basename(f))]))
            if len(procs) >= 2:
                procs.pop(0).wait()
        for p in procs:
            p.wait()
    n = len(glob.glob(os.path.join(j2k, "*.dcm")))
    if n != 400:
        sys.exit(f"{j2k}: {n} files, expected 400 (the CT's slices)")
    cache = os.path.join(a.data, "j2k-viewer-cache")
    display = ":94"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, DISPLAY=display, XDG_RUNTIME_DIR="/tmp", LIGHTBOX_TIMING="1")
    env.pop("WAYLAND_DISPLAY", None)
    look, full, sitk, volume, previews = [], [], [], [], []
    try:
        time.sleep(1)
        timed([a.lightbox, "view", j2k, "--cache", cache], env)  # import, untimed
        for _ in range(a.repeat):
            _, out = timed([a.lightbox, "view", j2k, "--cache", cache], env)
            s = re.search(r"all (\d+) images on screen: (\d+) ms .*\((\d+) as previews\)", out)
            d = re.search(r"all (\d+) images decoded: (\d+) ms", out)
            if not s or not d:
                sys.exit(f"no timings in the output:\n{out}")
            look.append(int(s.group(2)))
            previews.append(int(s.group(3)))
            full.append(int(d.group(2)))
            sitk.append(sitk_load(j2k))
            volume.append(timed([a.lightbox, "volume", j2k])[0])
    finally:
        xvfb.kill()
    med = statistics.median
    print(f"400 x 512x512 CT, JPEG 2000 lossless (gdcmconv), medians of {a.repeat}, "
          f"same run, alternating:")
    print(f"  viewer, every slice on screen (previews at 1/4 size: {min(previews)}-{max(previews)}): "
          f"{med(look):.0f} ms after process start (range {min(look)}-{max(look)})")
    print(f"  viewer, every slice decoded in full: {med(full):.0f} ms (range {min(full)}-{max(full)})")
    print(f"  lightbox volume (full load, no window): {med(volume):.0f} ms")
    print(f"  SimpleITK ImageSeriesReader: {med(sitk):.0f} ms")
    print(f"  SimpleITK / viewer first look: {med(sitk) / med(look):.1f}x; "
          f"SimpleITK / viewer full: {med(sitk) / med(full):.2f}x; "
          f"SimpleITK / lightbox volume: {med(sitk) / med(volume):.2f}x")


if __name__ == "__main__":
    main()
