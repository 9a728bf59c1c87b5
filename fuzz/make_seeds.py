#!/usr/bin/env python3
"""Write the fuzzers' seed corpora into fuzz/seeds/<target>/ (committed, small).

Seeds come from pydicom's public test files, DCMTK's encoders (a JPEG lossless
stream pydicom does not ship) and hand-built protocol messages. Pixel-decoding
seeds follow the layout of lightbox::fuzzing::decode: 5 parameter bytes (rows-1 and
columns-1 as u16 little endian, flags) then the pixel data (native) or the frame's one fragment.

    python3 fuzz/make_seeds.py        # needs pydicom; dcmcjpeg for the lossless seed
"""

import io
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import pydicom
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_fragmented_frames

HERE = os.path.dirname(os.path.abspath(__file__))
SEEDS = os.path.join(HERE, "seeds")
ROOT = os.path.dirname(HERE)


def put(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def prefix(ds):
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows > 1024 or cols > 1024:
        return None
    flags = 0
    if int(ds.SamplesPerPixel) == 3:
        flags |= 1
    if int(ds.BitsAllocated) == 16:
        flags |= 2
    if int(getattr(ds, "PixelRepresentation", 0)) == 1:
        flags |= 4
    pi = str(ds.PhotometricInterpretation)
    flags |= {"YBR_FULL": 1, "YBR_FULL_422": 2}.get(pi, 0) << 3
    if int(ds.BitsAllocated) == 16 and int(ds.BitsStored) == 12:
        flags |= 0x20
    return struct.pack("<HHB", rows - 1, cols - 1, flags)


def first_fragment(ds):
    for frame in generate_fragmented_frames(ds.PixelData):
        return b"".join(frame)
    return None


def pixel_seed(target, name, path):
    ds = pydicom.dcmread(path)
    p = prefix(ds)
    if p is None:
        return
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        data = first_fragment(ds)
    else:
        frame = len(ds.PixelData) // int(getattr(ds, "NumberOfFrames", 1) or 1)
        data = ds.PixelData[:frame]
    put(target, name, p + data)


def main():
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)
    t = get_testdata_file
    # Whole files.
    for f in ["CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "JPEG-lossy.dcm",
              "SC_rgb_jpeg_dcmtk.dcm", "MR_small_jpeg_ls_lossless.dcm",
              "MR_small_jp2klossless.dcm", "image_dfl.dcm", "ExplVR_BigEnd.dcm",
              "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "SC_rgb_rle_2frame.dcm",
              "rtdose_1frame.dcm", "SC_rgb_small_odd.dcm"]:
        put("open_file", f, open(t(f), "rb").read())
    # Pixel data per codec.
    pixel_seed("decode_native", "MR_small", t("MR_small.dcm"))
    pixel_seed("decode_native", "SC_rgb_small_odd", t("SC_rgb_small_odd.dcm"))
    pixel_seed("decode_native", "CT_small", t("CT_small.dcm"))
    pixel_seed("decode_rle", "MR_small_RLE", t("MR_small_RLE.dcm"))
    pixel_seed("decode_rle", "SC_rgb_rle", t("SC_rgb_rle.dcm"))
    pixel_seed("decode_rle", "SC_rgb_rle_16bit", t("SC_rgb_rle_16bit.dcm"))
    pixel_seed("decode_jpeg_baseline", "SC_rgb_jpeg_dcmtk", t("SC_rgb_jpeg_dcmtk.dcm"))
    pixel_seed("decode_jpeg_baseline", "SC_rgb_small_odd_jpeg", t("SC_rgb_small_odd_jpeg.dcm"))
    pixel_seed("decode_jpeg_baseline", "SC_jpeg_no_color_transform", t("SC_jpeg_no_color_transform.dcm"))
    pixel_seed("decode_jpeg_extended", "JPEG-lossy", t("JPEG-lossy.dcm"))
    pixel_seed("decode_jpeg_extended", "JPGExtended", t("JPGExtended.dcm"))
    pixel_seed("decode_jpegls", "MR_small_jpeg_ls_lossless", t("MR_small_jpeg_ls_lossless.dcm"))
    pixel_seed("decode_jpegls", "JPEGLSNearLossless_08", t("JPEGLSNearLossless_08.dcm"))
    pixel_seed("decode_jpegls", "SC_rgb_jls_lossy_line", t("SC_rgb_jls_lossy_line.dcm"))
    pixel_seed("decode_j2k", "MR_small_jp2klossless", t("MR_small_jp2klossless.dcm"))
    pixel_seed("decode_j2k", "693_J2KI", t("693_J2KI.dcm"))
    pixel_seed("decode_j2k", "JPEG2000", t("JPEG2000.dcm"))
    pixel_seed("decode_j2k", "GDCMJ2K_TextGBR", t("GDCMJ2K_TextGBR.dcm"))
    # JPEG lossless (process 14, SV1) by DCMTK, from MR_small.
    dcmcjpeg = shutil.which("dcmcjpeg")
    if dcmcjpeg:
        with tempfile.TemporaryDirectory() as d:
            for flag, name in [("+e1", "MR_small_sv1"), ("+el", "MR_small_p14")]:
                out = os.path.join(d, name + ".dcm")
                subprocess.run([dcmcjpeg, flag, t("MR_small.dcm"), out], check=True)
                pixel_seed("decode_jpeg_lossless", name, out)
    else:
        print("dcmcjpeg not found: no JPEG lossless seed", file=sys.stderr)

    # DIMSE: command sets (implicit VR little endian) and PDUs.
    def element(group, elem, value):
        if len(value) % 2:
            value += b"\0"
        return struct.pack("<HHI", group, elem, len(value)) + value

    def command_set(fields):
        body = b"".join(element(0, e, v) for e, v in fields)
        return element(0, 0, struct.pack("<I", len(body))) + body

    echo = command_set([(0x0002, b"1.2.840.10008.1.1"), (0x0100, struct.pack("<H", 0x30)),
                        (0x0110, struct.pack("<H", 1)), (0x0800, struct.pack("<H", 0x0101))])
    store = command_set([(0x0002, b"1.2.840.10008.5.1.4.1.1.2"), (0x0100, struct.pack("<H", 1)),
                         (0x0110, struct.pack("<H", 7)), (0x0700, struct.pack("<H", 0)),
                         (0x0800, struct.pack("<H", 0)), (0x1000, b"1.2.3.4.5")])
    rsp = command_set([(0x0002, b"1.2.840.10008.5.1.4.1.1.2"), (0x0100, struct.pack("<H", 0x8001)),
                       (0x0120, struct.pack("<H", 7)), (0x0800, struct.pack("<H", 0x0101)),
                       (0x0900, struct.pack("<H", 0xA700))])
    put("command", "c_echo_rq", echo)
    put("command", "c_store_rq", store)
    put("command", "c_store_rsp", rsp)

    def pdata(pc, ctrl, data):
        item = struct.pack(">IBB", len(data) + 2, pc, ctrl) + data
        return struct.pack(">BBI", 4, 0, len(item)) + item

    put("pdu", "p_data_echo", pdata(1, 3, echo))
    put("pdu", "p_data_store", pdata(1, 3, store) )
    put("pdu", "p_data_dataset", pdata(1, 2, open(t("MR_small_implicit.dcm"), "rb").read()[-2000:]))
    put("pdu", "release_rq", bytes([5, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
    put("pdu", "abort", bytes([7, 0, 0, 0, 0, 4, 0, 0, 2, 0]))

    # C-FIND answers: a study-level identifier, implicit (0x00) and explicit (0x01).
    ds = pydicom.dcmread(t("CT_small.dcm"), stop_before_pixels=True)
    ident = pydicom.Dataset()
    for kw in ["SpecificCharacterSet", "StudyDate", "AccessionNumber", "PatientName",
               "PatientID", "PatientBirthDate", "StudyInstanceUID", "StudyID"]:
        if kw in ds:
            setattr(ident, kw, getattr(ds, kw))
    ident.QueryRetrieveLevel = "STUDY"
    ident.ModalitiesInStudy = ["CT", "SR"]
    ident.NumberOfStudyRelatedInstances = "400"
    def encode(d, implicit):
        buf = pydicom.filebase.DicomBytesIO()
        buf.is_little_endian = True
        buf.is_implicit_VR = implicit
        pydicom.filewriter.write_dataset(buf, d)
        return buf.getvalue()

    for explicit, tag in [(False, b"\x00"), (True, b"\x01")]:
        put("find_answer", "study_" + ("explicit" if explicit else "implicit"),
            tag + encode(ident, not explicit))
    japanese = pydicom.Dataset()
    japanese.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    japanese.PatientName = "Yamada^Tarou=\033$B;3ED\033(B^\033$BB@O:\033(B"
    put("find_answer", "iso2022", b"\x00" + encode(japanese, True))

    # DICOMDIR.
    dd = os.path.join(os.path.dirname(t("CT_small.dcm")), "dicomdirtests")
    for f in ["DICOMDIR", "DICOMDIR-nooffset", "DICOMDIR-reordered"]:
        put("dicomdir", f, open(os.path.join(dd, f), "rb").read())

    # Zip archives.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("DICOM/IM0001", open(t("MR_small.dcm"), "rb").read())
        z.writestr("DICOM/README.txt", b"a CD's readme")
    put("zip", "study", buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a/b/c.dcm", open(t("SC_rgb_small_odd.dcm"), "rb").read())
    put("zip", "stored", buf.getvalue())

    # Configuration and hanging protocols.
    readme = open(os.path.join(ROOT, "README.md")).read()
    start = readme.index("```toml\nae_title")
    put("config", "readme", readme[start + 8:readme.index("```", start + 8)].encode())
    put("config", "minimal", b'ae_title = "READING1"\nscp_port = 4242\n')
    hp = os.path.join(ROOT, "hanging-protocols")
    for f in sorted(os.listdir(hp)):
        put("protocol", f, open(os.path.join(hp, f), "rb").read())
    # Volume-rendering presets.
    vr = os.path.join(ROOT, "assets", "vr")
    for f in sorted(os.listdir(vr)):
        put("vr_preset", f, open(os.path.join(vr, f), "rb").read())

    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(SEEDS) for f in fs)
    print(f"seeds: {total // 1024} KB in {SEEDS}")


if __name__ == "__main__":
    main()
