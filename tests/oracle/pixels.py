"""Decode stored pixel values with pydicom (and pylibjpeg plugins) as an
independent oracle for Lightbox's decoders.

usage: python3 pixels.py OUT_DIR FILE...

For each file and each of its first and last frames, writes OUT_DIR/<n>.raw
(little-endian int32 samples, RGB interleaved for colour) and prints one JSON
line per file to stdout: {"file", "frames": [{"frame", "raw", "shape"}], "error"}.
Colour images are converted to RGB the way pydicom does for display.
"""
import json
import os
import sys

import numpy as np
import pydicom
from pydicom.pixels import pixel_array


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    n = 0
    for path in sys.argv[2:]:
        rec = {"file": path, "frames": [], "error": None}
        try:
            ds = pydicom.dcmread(path, force=True)
            if "PixelData" not in ds:
                rec["error"] = "no pixel data"
            else:
                nframes = int(getattr(ds, "NumberOfFrames", 1) or 1)
                for f in sorted({0, nframes - 1}):
                    arr = pixel_array(ds, index=f, as_rgb=True)
                    raw = os.path.join(out, f"{n}.raw")
                    n += 1
                    np.ascontiguousarray(arr.astype("<i8").clip(-(2**31), 2**31 - 1).astype("<i4")).tofile(raw)
                    rec["frames"].append({"frame": f, "raw": raw, "shape": list(arr.shape)})
        except Exception as e:  # the oracle reports, the test decides
            rec["error"] = f"{type(e).__name__}: {e}"
        print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
