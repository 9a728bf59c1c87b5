#!/usr/bin/env python3
"""Viewer timings on this machine (software Vulkan: Mesa's lavapipe under Xvfb).

`lightbox demo` with the 400-slice 512x512 CT and its 200-slice prior already in
the cache (the first run generates them, untimed), started with LIGHTBOX_TIMING=1:
it prints the time from process start to the first image on screen and to every
image of both studies decoded and resident, then closes. Medians of --repeat runs.

usage: python3 benches/viewer.py [--repeat 5]   (needs a release build and Xvfb)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cache", default=os.path.join(ROOT, "target", "bench-data", "viewer-cache"))
    ap.add_argument("--lightbox", default=os.path.join(ROOT, "target", "release", "lightbox"))
    a = ap.parse_args()
    if not os.path.exists(a.lightbox):
        sys.exit("run `cargo build --release` first")
    display = ":93"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, DISPLAY=display, LIGHTBOX_TIMING="1", XDG_RUNTIME_DIR="/tmp")
    env.pop("WAYLAND_DISPLAY", None)
    first, resident = [], []
    try:
        time.sleep(1)
        for i in range(a.repeat + 1):
            out = subprocess.run([a.lightbox, "demo", "--cache", a.cache], env=env, capture_output=True,
                                 text=True, timeout=600)
            f = re.search(r"first image: (\d+) ms", out.stdout)
            r = re.search(r"all (\d+) images decoded: (\d+) ms", out.stdout)
            if not f or not r:
                sys.exit(f"no timings in the output:\n{out.stdout}\n{out.stderr[-2000:]}")
            if i == 0:
                continue  # the first run may have generated the demo studies
            first.append(int(f.group(1)))
            resident.append(int(r.group(2)))
            images = int(r.group(1))
    finally:
        xvfb.kill()
    m = statistics.median
    print(f"lightbox demo, {images} images (400 + 200 slices of 512x512), lavapipe, medians of {a.repeat}:")
    print(f"  first image on screen: {m(first):.0f} ms after process start")
    print(f"  every image decoded and resident: {m(resident):.0f} ms after process start")


if __name__ == "__main__":
    main()
