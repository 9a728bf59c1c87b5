//! Lossless codecs must give back exactly the stored values that went in. Synthetic
//! series (unsigned 12-bit CT in HU, signed 16-bit with extreme values, MONOCHROME2
//! and an 8-bit RGB image) are encoded by real third-party encoders — DCMTK's
//! `dcmcjpeg` (lossless SV1 and other predictors), `dcmcjpls`, `dcmcrle` and GDCM's
//! `gdcmconv --j2k` — and decoded by Lightbox; every value must match the original,
//! and the header read from the encoded file must be the original's (GDCM writes
//! the implicit VR originals' attributes as UN).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use lightbox::dicom::Image;
use lightbox::synth::{self, SeriesSpec};

fn originals(dir: &Path) -> Vec<PathBuf> {
    synth::write_ct(
        &dir.join("ct"),
        &synth::CtSpec {
            slices: 2,
            size: 80,
            ..Default::default()
        },
    )
    .expect("ct");
    let mut s16 = SeriesSpec::axial("signed16-roundtrip", 1, 70, 1.0);
    s16.bits_stored = 16;
    s16.signed = true;
    s16.rescale = None;
    synth::write_series(&dir.join("s16"), &s16, |_, c, r| {
        // Full range, including the extremes.
        let v = (c as i64 * 937 + r as i64 * 7919) % 65536 - 32768;
        if c == 0 && r == 0 {
            -32768
        } else if c == 1 && r == 0 {
            32767
        } else {
            v as i32
        }
    })
    .expect("s16");
    lightbox::scan::list_files(dir).expect("list")
}

fn encode(tool: &str, package: &str, args: &[&str], src: &Path, dst: &Path) {
    let exe = common::require_tool(tool, package);
    common::run_ok(Command::new(exe).args(args).arg(src).arg(dst));
}

#[test]
fn lossless_codecs_round_trip_exactly() {
    let tmp = common::tempdir();
    let files = originals(&tmp.path().join("orig"));
    let encoders: &[(&str, &str, &[&str], &str)] = &[
        ("dcmcjpeg", "dcmtk", &["+e1"], "1.2.840.10008.1.2.4.70"),
        (
            "dcmcjpeg",
            "dcmtk",
            &["+el", "+sv", "4"],
            "1.2.840.10008.1.2.4.57",
        ),
        (
            "dcmcjpeg",
            "dcmtk",
            &["+el", "+sv", "7"],
            "1.2.840.10008.1.2.4.57",
        ),
        ("dcmcjpls", "dcmtk", &[], "1.2.840.10008.1.2.4.80"),
        ("dcmcrle", "dcmtk", &[], "1.2.840.10008.1.2.5"),
        (
            "gdcmconv",
            "libgdcm-tools",
            &["--j2k"],
            "1.2.840.10008.1.2.4.90",
        ),
    ];
    let mut checked = 0;
    for (i, (tool, package, args, ts)) in encoders.iter().enumerate() {
        for (j, f) in files.iter().enumerate() {
            let dst = tmp.path().join(format!("enc{i}_{j}.dcm"));
            encode(tool, package, args, f, &dst);
            let original = Image::open(f).expect("original");
            let orig = original.frame(0).expect("decode original");
            let img = Image::open(&dst).expect("encoded");
            assert_eq!(
                &img.header.transfer_syntax, ts,
                "{tool} {args:?} wrote another syntax"
            );
            let got = img
                .frame(0)
                .unwrap_or_else(|e| panic!("{tool} {args:?} {}: {e}", f.display()));
            assert!(
                got == orig,
                "{tool} {args:?}: {} does not round-trip",
                f.display()
            );
            // The header reads as the original's (`gdcmconv` turns the
            // implicit VR originals into explicit VR with every attribute UN:
            // read as the dictionary's VR, as pydicom and DCMTK read them).
            let (a, b) = (&original.header, &img.header);
            assert_eq!(
                (&b.patient_name, &b.series_uid, &b.sop_instance_uid),
                (&a.patient_name, &a.series_uid, &a.sop_instance_uid),
                "{tool} {args:?}"
            );
            let (fa, fb) = (&a.frames[0], &b.frames[0]);
            assert_eq!(
                (fb.image_position, fb.image_orientation, fb.pixel_spacing),
                (fa.image_position, fa.image_orientation, fa.pixel_spacing),
                "{tool} {args:?}"
            );
            assert_eq!(fb.rescale, fa.rescale, "{tool} {args:?}");
            checked += 1;
        }
    }
    assert_eq!(checked, encoders.len() * files.len());
}
