"""Encode a native DICOM image as HTJ2K (ISO 15444-15) with a real encoder and
write it as an HTJ2K DICOM file (HTJ2K Lossless, 1.2.840.10008.1.2.4.201).

    htj2k.py SRC.dcm OUT.dcm [ENCODER]

ENCODER (default openjph):
  ojph        OpenJPH's own command line encoder (Debian `openjph-tools`:
              `ojph_compress`, fed the samples as a raw file);
  openjph     the OpenJPH library through `imagecodecs` (PyPI).

Prints the encoder's name and version.
"""

import os
import subprocess
import sys
import tempfile

import numpy as np
import pydicom
from pydicom.encaps import encapsulate
from pydicom.uid import HTJ2KLossless


def ojph(arr: np.ndarray, signed: bool, bits: int) -> bytes:
    rows, cols = arr.shape
    with tempfile.TemporaryDirectory() as d:
        raw = os.path.join(d, "in.rawl")
        out = os.path.join(d, "out.j2c")
        arr.astype("<i2" if signed else "<u2").tofile(raw)
        subprocess.run(
            [
                "ojph_compress",
                "-i", raw,
                "-o", out,
                "-reversible", "true",
                "-dims", "{%d,%d}" % (cols, rows),
                "-num_comps", "1",
                "-signed", "true" if signed else "false",
                "-bit_depth", str(bits),
                "-downsamp", "{1,1}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(out, "rb") as f:
            return f.read()


def openjph(arr: np.ndarray) -> bytes:
    import imagecodecs

    return bytes(imagecodecs.htj2k_encode(arr, reversible=True))


def main() -> None:
    src, dst = sys.argv[1:3]
    encoder = sys.argv[3] if len(sys.argv) > 3 else "openjph"
    ds = pydicom.dcmread(src)
    arr = ds.pixel_array
    signed = ds.PixelRepresentation == 1
    bits = int(ds.BitsStored)
    if encoder == "ojph":
        stream = ojph(arr, signed, bits)
        print("ojph_compress (Debian openjph-tools)")
    elif encoder == "openjph":
        import imagecodecs

        stream = openjph(arr.astype(np.int16 if signed else np.uint16))
        print(imagecodecs.htj2k_version())
    else:
        sys.exit(f"unknown encoder {encoder}")
    ds.PixelData = encapsulate([stream])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = HTJ2KLossless
    ds.save_as(dst, enforce_file_format=True)


if __name__ == "__main__":
    main()
