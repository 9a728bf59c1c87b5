#!/usr/bin/env python3
"""Viewer timings on this machine (software Vulkan: Mesa's lavapipe under Xvfb).

1. `lightbox demo` with the 400-slice 512x512 CT and its 200-slice prior already in
   the cache (the first run generates them, untimed), started with
   LIGHTBOX_TIMING=1: the time from process start to the first image on screen and
   to every image of both studies decoded and resident; the peak resident memory
   of the process in the hung 1x2 layout and in a 2x2 layout, against the voxel
   bytes of the open studies.
2. A W/L drag (LIGHTBOX_BENCH_WL=N: the window changes on N frames in a row) on
   the 512x512 CT and on a 3000x2500 CR: frame time (median, p95) and the number of
   texture uploads during the drag (must be 0: W/L only changes uniforms).
3. Scrolling (LIGHTBOX_BENCH_SCROLL=100: one slice step per frame, as a key or a
   wheel notch makes it, drawn in the frame of the step) on the 400-slice CT and
   on its 200-slice prior in the hung 1x2: time per step (median, p95) and the
   steps drawn without their slice's texture (goal 0).
4. Cine at 20 frames/s (LIGHTBOX_BENCH_CINE=20, five seconds): frames shown of
   frames due.
5. MPR (LIGHTBOX_BENCH_MPR=10): M on the CT (three planes through a crosshair
   and the 3-D view, 2x2), then ten 3-degree turns of the crosshair and ten
   15-degree turns of the 3-D view: the time until the planes and the first full
   3-D picture are drawn, per turn until drawn (median, p95), and the peak RSS
   against the voxels open; the same on a 2,000-slice 512x512 CT (--mpr-2000).

Medians of --repeat runs. Frame times under lavapipe are CPU rendering of a
1920x1080 window on this 2-core machine; a GPU draws the same frames far faster.

usage: python3 benches/viewer.py [--repeat 5]   (needs a release build and Xvfb)
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, env, timeout=600):
    """Run to completion; (stdout, stderr, peak RSS in MB)."""
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    p = subprocess.Popen(cmd, env=env, stdout=out, stderr=err, text=True)
    start = time.time()
    while True:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            break
        if time.time() - start > timeout:
            p.kill()
            sys.exit(f"timed out: {' '.join(cmd)}")
        time.sleep(0.02)
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    return out.read(), err.read(), usage.ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--frames", type=int, default=120, help="frames of W/L drag")
    ap.add_argument("--data", default=os.path.join(ROOT, "target", "bench-data"))
    ap.add_argument("--lightbox", default=os.path.join(ROOT, "target", "release", "lightbox"))
    ap.add_argument("--mpr-2000", action="store_true",
                    help="also MPR on a 2,000-slice CT (1 GB of voxels, generated once)")
    a = ap.parse_args()
    if not os.path.exists(a.lightbox):
        sys.exit("run `cargo build --release` first")
    cache = os.path.join(a.data, "viewer-cache")
    cr_dir = os.path.join(a.data, "cr-3000x2500")
    cr_cache = os.path.join(a.data, "viewer-cr-cache")
    if not os.path.isdir(cr_dir):
        subprocess.run([a.lightbox, "synth", cr_dir, "--what", "cr", "--cr-rows", "3000",
                        "--cr-columns", "2500"], check=True, capture_output=True)
    display = ":93"
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1920x1080x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = dict(os.environ, DISPLAY=display, XDG_RUNTIME_DIR="/tmp")
    base.pop("WAYLAND_DISPLAY", None)
    timing = dict(base, LIGHTBOX_TIMING="1")
    drag = dict(base, LIGHTBOX_BENCH_WL=str(a.frames))
    first, resident, rss12, rss22 = [], [], [], []
    wl = {"CT": [], "CR": []}
    scroll = {"CT": [], "prior": []}
    cine = []
    mpr = {}
    images = 0
    try:
        time.sleep(1)
        # Generate the demo (untimed) and import the CR once.
        run([a.lightbox, "demo", "--cache", cache], timing)
        run([a.lightbox, "view", cr_dir, "--cache", cr_cache], drag)
        for _ in range(a.repeat):
            out, err, rss = run([a.lightbox, "demo", "--cache", cache], timing)
            f = re.search(r"first image: (\d+) ms", out)
            r = re.search(r"all (\d+) images decoded: (\d+) ms", out)
            if not f or not r:
                sys.exit(f"no timings in the output:\n{out}\n{err[-2000:]}")
            first.append(int(f.group(1)))
            resident.append(int(r.group(2)))
            images = int(r.group(1))
            rss12.append(rss)
            _, _, rss = run([a.lightbox, "demo", "--cache", cache, "--layout", "2x2"], timing)
            rss22.append(rss)
            for name, cmd in (("CT", [a.lightbox, "demo", "--cache", cache]),
                              ("CR", [a.lightbox, "view", cr_dir, "--cache", cr_cache])):
                out, err, _ = run(cmd, drag)
                m = re.search(r"wl drag on (\d+)x(\d+): (\d+) frames, median ([\d.]+) ms, "
                              r"p95 ([\d.]+) ms, texture uploads during the drag: (\d+)", out)
                if not m:
                    sys.exit(f"no W/L drag figures:\n{out}\n{err[-2000:]}")
                wl[name].append((m.group(1), m.group(2), float(m.group(4)), float(m.group(5)),
                                 int(m.group(6))))
            for name, active in (("CT", "0"), ("prior", "1")):
                env = dict(base, LIGHTBOX_BENCH_SCROLL="100", LIGHTBOX_BENCH_ACTIVE=active)
                out, err, _ = run([a.lightbox, "demo", "--cache", cache], env)
                m = re.search(r"scroll (\d+) steps on a (\d+)-slice stack in \S+: median ([\d.]+) ms, "
                              r"p95 ([\d.]+) ms per step, steps drawn without their slice: (\d+)", out)
                if not m:
                    sys.exit(f"no scroll figures:\n{out}\n{err[-2000:]}")
                scroll[name].append((int(m.group(2)), float(m.group(3)), float(m.group(4)),
                                     int(m.group(5))))
            out, err, _ = run([a.lightbox, "demo", "--cache", cache],
                              dict(base, LIGHTBOX_BENCH_CINE="20"))
            m = re.search(r"(\d+) frames shown of (\d+) due", out)
            if not m:
                sys.exit(f"no cine figures:\n{out}\n{err[-2000:]}")
            cine.append((int(m.group(1)), int(m.group(2))))
            stacks = [("demo CT + prior", [a.lightbox, "demo", "--cache", cache])]
            if a.mpr_2000:
                big = os.path.join(a.data, "ct2000")
                if not os.path.isdir(big):
                    subprocess.run([a.lightbox, "synth", big, "--what", "ct", "--slices", "2000"],
                                   check=True, capture_output=True)
                stacks.append(("2,000-slice CT", [a.lightbox, "view", os.path.join(big, "ct"),
                                                  "--cache", os.path.join(a.data, "ct2000-cache")]))
            for name, cmd in stacks:
                out, err, _ = run(cmd, dict(base, LIGHTBOX_BENCH_MPR="10"))
                m = re.search(r"planes drawn (\d+) ms after M, the 3-D view's first full picture (\d+) ms; "
                              r".*?: median (\d+) ms, p95 (\d+) ms; a 15° turn of the 3-D view "
                              r"\((\d+)x(\d+)\) until its full picture: median (\d+) ms, p95 (\d+) ms; "
                              r"peak RSS (\d+) MB = ([\d.]+)x the (\d+) MB", out)
                if not m:
                    sys.exit(f"no MPR figures:\n{out}\n{err[-2000:]}")
                mpr.setdefault(name, []).append([float(x) for x in m.groups()])
    finally:
        xvfb.kill()
    med = statistics.median
    voxels = (400 + 200) * 512 * 512 * 2 / 1e6
    print(f"lightbox demo, {images} images (400 + 200 slices of 512x512), lavapipe, "
          f"medians of {a.repeat}:")
    print(f"  first image on screen: {med(first):.0f} ms after process start "
          f"(range {min(first)}-{max(first)})")
    print(f"  every image decoded and resident: {med(resident):.0f} ms after process start "
          f"(range {min(resident)}-{max(resident)})")
    print(f"  peak RSS, 1x2: {med(rss12):.0f} MB = {med(rss12) / voxels:.2f}x the {voxels:.0f} MB "
          f"of voxels; 2x2: {med(rss22):.0f} MB = {med(rss22) / voxels:.2f}x")
    for name, runs in wl.items():
        w, h = runs[0][0], runs[0][1]
        print(f"  W/L drag on the {w}x{h} {name}, {a.frames} frames: median frame "
              f"{med([r[2] for r in runs]):.1f} ms, p95 {med([r[3] for r in runs]):.1f} ms, "
              f"texture uploads during the drag: {max(r[4] for r in runs)}")
    for name, runs in scroll.items():
        print(f"  scroll, 100 steps of the {runs[0][0]}-slice {name} in 1x2: median "
              f"{med([r[1] for r in runs]):.1f} ms per step, p95 {med([r[2] for r in runs]):.1f} ms, "
              f"steps drawn without their slice: {max(r[3] for r in runs)}")
    shown = sum(c[0] for c in cine)
    due = sum(c[1] for c in cine)
    print(f"  cine at 20 frames/s for 5 s: {shown} of {due} frames shown "
          f"({100.0 * shown / max(due, 1):.0f}%, all runs)")
    for name, runs in mpr.items():
        col = lambda k: med([r[k] for r in runs])
        print(f"  MPR on the {name}: planes {col(0):.0f} ms after M, first full 3-D picture "
              f"{col(1):.0f} ms; a crosshair turn until drawn: median {col(2):.0f} ms, p95 {col(3):.0f} ms; "
              f"a 3-D turn ({col(4):.0f}x{col(5):.0f}) until its full picture: median {col(6):.0f} ms, "
              f"p95 {col(7):.0f} ms; peak RSS {col(8):.0f} MB = {col(9):.2f}x the {col(10):.0f} MB of voxels")


if __name__ == "__main__":
    main()
