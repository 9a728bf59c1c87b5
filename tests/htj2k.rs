//! HTJ2K (High-Throughput JPEG 2000, ISO 15444-15; HTJ2K Lossless,
//! 1.2.840.10008.1.2.4.201) made by real encoders and decoded by Lightbox bit
//! for bit: Debian's `ojph_compress` (OpenJPH's command line encoder) for
//! unsigned images, and the OpenJPH library (through `imagecodecs`) for signed
//! 16-bit ones over the whole range.
//!
//! Debian's `ojph_compress` 0.9.0 is not used for signed images: its raw and
//! TIFF readers hand 16-bit samples to the codec as unsigned, so a negative
//! sample of a component declared signed is coded as its two's-complement bit
//! pattern (−2000 as 63536), outside the component's range. OpenJPEG clamps
//! such values and OpenJPH's own 0.9 decoder writes the bits back, which is why
//! only the latter "round-trips". OpenJPH fixed its readers in 0.10.0 (its issue
//! #102); files from the fixed encoder, below, decode exactly.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use lightbox::dicom::Image;
use lightbox::synth::{self, SeriesSpec};

fn samples(path: &Path) -> Vec<i32> {
    let img = Image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let frame = img
        .frame(0)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    match frame.samples {
        lightbox::dicom::pixels::Samples::Mono(v) => v,
        other => panic!("{}: not grayscale: {other:?}", path.display()),
    }
}

/// A signed 16-bit image over the whole range (both extremes and a CT-like
/// run of negative values), and an unsigned 12-bit MR slice.
fn originals(dir: &Path) -> (PathBuf, PathBuf) {
    let mut s16 = SeriesSpec::axial("htj2k-signed16", 1, 64, 1.0);
    s16.bits_stored = 16;
    s16.signed = true;
    s16.rescale = None;
    synth::write_series(&dir.join("s16"), &s16, |_, c, r| {
        if r < 8 {
            // −2000 … 2264, as in a CT slice.
            (c as i32 + 64 * r as i32) * 8 - 2000
        } else if c == 0 && r == 8 {
            -32768
        } else if c == 1 && r == 8 {
            32767
        } else {
            ((c as i64 * 937 + r as i64 * 7919) % 65536 - 32768) as i32
        }
    })
    .expect("signed");
    let mut u12 = SeriesSpec::axial("htj2k-unsigned12", 1, 64, 1.0);
    u12.modality = "MR".into();
    u12.sop_class = "1.2.840.10008.5.1.4.1.1.4".into();
    u12.bits_stored = 12;
    u12.signed = false;
    u12.rescale = None;
    synth::write_series(&dir.join("u12"), &u12, |_, c, r| {
        ((c * 61 + r * 67) % 4096) as i32
    })
    .expect("unsigned");
    let one = |d: &str| {
        let v = lightbox::scan::list_files(&dir.join(d)).expect("list");
        assert_eq!(v.len(), 1);
        v[0].clone()
    };
    (one("s16"), one("u12"))
}

fn encode(src: &Path, dst: &Path, encoder: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/htj2k.py");
    let out = common::run_ok(
        Command::new(common::python())
            .arg(script)
            .arg(src)
            .arg(dst)
            .arg(encoder),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn htj2k_from_openjph_decodes_bit_for_bit() {
    common::require_tool("ojph_compress", "openjph-tools");
    let ok = Command::new(common::python())
        .args(["-c", "import imagecodecs; imagecodecs.htj2k_version()"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python cannot import imagecodecs (the OpenJPH library): pip install -r tests/oracle/requirements.txt (.ci/run does this)"
    );
    let tmp = common::tempdir();
    let (s16, u12) = originals(tmp.path());
    let cases = [
        (&u12, "ojph", "unsigned 12-bit, ojph_compress"),
        (&u12, "openjph", "unsigned 12-bit, OpenJPH library"),
        (&s16, "openjph", "signed 16-bit, OpenJPH library"),
    ];
    for (k, (src, encoder, what)) in cases.iter().enumerate() {
        let dst = tmp.path().join(format!("htj2k-{k}.dcm"));
        let by = encode(src, &dst, encoder);
        let header = lightbox::dicom::read_header(&dst).expect("header");
        assert_eq!(
            header.transfer_syntax, "1.2.840.10008.1.2.4.201",
            "{what}: the file is HTJ2K Lossless"
        );
        let want = samples(src);
        let got = samples(&dst);
        assert_eq!(got.len(), want.len(), "{what} ({by})");
        let wrong: Vec<(usize, i32, i32)> = want
            .iter()
            .zip(&got)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i, *a, *b))
            .take(5)
            .collect();
        assert!(
            wrong.is_empty(),
            "{what} ({by}): (index, stored, decoded) {wrong:?}"
        );
        if src == &&s16 {
            assert!(want.contains(&-32768) && want.contains(&32767) && want.contains(&-2000));
        }
    }
}
