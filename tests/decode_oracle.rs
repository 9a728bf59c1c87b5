//! Decoded stored values against pydicom (with the pylibjpeg plugins: libjpeg,
//! OpenJPEG) for every file of pydicom's corpus. This is the oracle for JPEG 2000,
//! which DCMTK cannot read, and a second, independent check of every other codec.

mod common;

use lightbox::dicom::{Image, Samples};

/// Lossy codecs whose decoders may legitimately differ (IDCT precision).
fn lossy_jpeg(ts: &str) -> bool {
    matches!(ts, "1.2.840.10008.1.2.4.50" | "1.2.840.10008.1.2.4.51")
}

#[test]
fn stored_values_match_pydicom() {
    let files = common::pydicom_corpus();
    let oracle = common::pydicom_oracle(&files);
    let mut failures = Vec::new();
    let mut compared = 0;
    let mut j2k = 0;
    for path in &files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let Some(rec) = oracle.get(path) else {
            failures.push(format!("{name}: oracle has no record"));
            continue;
        };
        if let Some(e) = &rec.error {
            // pydicom cannot decode it; Lightbox must still fail cleanly or decode.
            if let Ok(img) = Image::open(path) {
                let _ = img.frame(0);
            }
            eprintln!(
                "note: {name}: pydicom cannot decode ({})",
                e.lines().next().unwrap_or("")
            );
            continue;
        }
        let image = match Image::open(path) {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!(
                    "{name}: pydicom decodes it, Lightbox cannot open it: {e}"
                ));
                continue;
            }
        };
        let ts = image.header.transfer_syntax.clone();
        for of in &rec.frames {
            let ours = match image.frame(of.frame) {
                Ok(p) => p,
                Err(e) => {
                    failures.push(format!(
                        "{name} frame {}: pydicom decodes it, Lightbox fails: {e}",
                        of.frame
                    ));
                    continue;
                }
            };
            let (values, channels): (Vec<i32>, usize) = match &ours.samples {
                Samples::Mono(v) => (v.clone(), 1),
                Samples::Rgb(v) => (
                    v.iter().map(|&x| x.min(i32::MAX as u32) as i32).collect(),
                    3,
                ),
            };
            let expected_len: usize = of.shape.iter().product();
            if values.len() != expected_len {
                failures.push(format!(
                    "{name} frame {}: {} samples ({}×{}×{channels}), pydicom shape {:?}",
                    of.frame,
                    values.len(),
                    ours.rows,
                    ours.columns,
                    of.shape
                ));
                continue;
            }
            // Colour converted from YBR rounds differently in each library: ±1.
            let ybr = image
                .header
                .pixel
                .as_ref()
                .is_some_and(|p| format!("{:?}", p.photometric).starts_with("Ybr"));
            // Lossy JPEG follows libjpeg 6b (DCMTK, checked to ±1 in fidelity_dcmtk);
            // pylibjpeg's libjpeg upsamples chroma differently: up to 3 on colour edges.
            let tol = if lossy_jpeg(&ts) {
                3
            } else if channels == 3 && ybr {
                1
            } else {
                0
            };
            let bad = values
                .iter()
                .zip(of.values.iter())
                .filter(|(a, b)| (**a - **b).abs() > tol)
                .count();
            if bad > 0 {
                let worst = values
                    .iter()
                    .zip(of.values.iter())
                    .map(|(a, b)| (a - b).abs())
                    .max()
                    .unwrap_or(0);
                failures.push(format!(
                    "{name} frame {}: {bad} of {} samples differ by more than {tol} (worst {worst})",
                    of.frame,
                    values.len()
                ));
            } else {
                compared += 1;
                if ts.starts_with("1.2.840.10008.1.2.4.9") {
                    j2k += 1;
                }
            }
        }
    }
    eprintln!("{compared} frames identical to pydicom ({j2k} JPEG 2000)");
    assert!(compared >= 55, "too few frames compared: {compared}");
    assert!(j2k >= 3, "JPEG 2000 files were not compared: {j2k}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
