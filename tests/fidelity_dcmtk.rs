//! Fidelity against DCMTK, the trusted reference renderer: every image of pydicom's
//! real test corpus and of our synthetic series is rendered by Lightbox's CPU
//! pipeline and by DCMTK (`dcmj2pnm`, or `dcml2pnm` for JPEG-LS) with the same VOI —
//! the file's first window, an explicit window, and min-max — and every 8-bit
//! output pixel must agree within ±1.

mod common;

use std::path::Path;
use std::process::Command;

use lightbox::dicom::{Image, Samples};
use lightbox::imaging::lut::Window;
use lightbox::imaging::render::{RenderOptions, VoiChoice, render};

#[derive(Debug, Clone)]
enum Mode {
    FileWindow,
    /// The file's first VOI LUT (DCMTK `+Wl 1`).
    FileLut(usize),
    Explicit(f64, f64),
    MinMax,
    Colour,
}

fn dcmtk_args(mode: &Mode) -> Vec<String> {
    match mode {
        Mode::FileWindow => vec!["+Wi".into(), "1".into()],
        Mode::FileLut(_) => vec!["+Wl".into(), "1".into()],
        Mode::Explicit(c, w) => vec!["+Ww".into(), c.to_string(), w.to_string()],
        Mode::MinMax => vec!["+Wm".into()],
        Mode::Colour => vec![],
    }
}

fn our_voi(mode: &Mode) -> VoiChoice {
    match mode {
        Mode::FileWindow => VoiChoice::FromFile(1),
        Mode::FileLut(n_windows) => VoiChoice::FromFile(n_windows + 1),
        Mode::Explicit(c, w) => VoiChoice::Explicit(Window::new(*c, *w)),
        Mode::MinMax => VoiChoice::MinMax,
        Mode::Colour => VoiChoice::Auto,
    }
}

/// Outcome of one comparison.
enum Outcome {
    Match,
    Mismatch(String),
    DcmtkCannot(String),
}

fn compare(path: &Path, image: &Image, frame: u32, mode: &Mode, tmp: &Path) -> Outcome {
    let ts = image.header.transfer_syntax.as_str();
    let tool = if ts == "1.2.840.10008.1.2.4.80" || ts == "1.2.840.10008.1.2.4.81" {
        common::require_tool("dcml2pnm", "dcmtk")
    } else {
        common::require_tool("dcmj2pnm", "dcmtk")
    };
    let out = tmp.join("ref.pnm");
    let _ = std::fs::remove_file(&out);
    let status = Command::new(&tool)
        .arg("--no-overlays")
        .args(["--frame", &(frame + 1).to_string()])
        .args(dcmtk_args(mode))
        .arg(path)
        .arg(&out)
        .output()
        .expect("run dcmtk");
    if !status.status.success() || !out.exists() {
        let err = String::from_utf8_lossy(&status.stderr);
        return Outcome::DcmtkCannot(err.lines().next().unwrap_or("").to_string());
    }
    let reference = common::read_pnm(&out);
    let pixels = match image.frame(frame) {
        Ok(p) => p,
        Err(e) => return Outcome::Mismatch(format!("DCMTK decodes it, Lightbox fails: {e}")),
    };
    // dcmj2pnm does not apply Display Shutters (tests/overlays.rs checks ours).
    let opts = RenderOptions {
        voi: our_voi(mode),
        ignore_shutter: true,
        ..Default::default()
    };
    let ours = match render(&image.header, frame, &pixels, &opts) {
        Ok(r) => r,
        Err(e) => return Outcome::Mismatch(format!("render failed: {e}")),
    };
    if (ours.width, ours.height, ours.channels)
        != (reference.width, reference.height, reference.channels)
    {
        return Outcome::Mismatch(format!(
            "size/channels differ: ours {}×{}×{}, DCMTK {}×{}×{}",
            ours.width,
            ours.height,
            ours.channels,
            reference.width,
            reference.height,
            reference.channels
        ));
    }
    let scale = |v: u16| -> i32 {
        if reference.maxval == 255 {
            v as i32
        } else {
            (v as f64 * 255.0 / reference.maxval as f64).round() as i32
        }
    };
    // Everything, lossy JPEG included (Lightbox's DCT decoder uses libjpeg's integer
    // IDCT, colour conversion and upsampling), must agree within one level.
    let tolerance = 1;
    let mut worst = 0;
    let mut bad = 0usize;
    let mut first_bad = None;
    for (i, (&a, &b)) in ours.data.iter().zip(reference.data.iter()).enumerate() {
        let d = (a as i32 - scale(b)).abs();
        if d > tolerance {
            bad += 1;
            if first_bad.is_none() {
                first_bad = Some((i, a, b));
            }
        }
        worst = worst.max(d);
    }
    if bad == 0 {
        Outcome::Match
    } else {
        Outcome::Mismatch(format!(
            "{bad} of {} values differ by more than {tolerance} (worst {worst}); first at sample {:?}; VOI used: {}",
            ours.data.len(),
            first_bad,
            ours.voi_description
        ))
    }
}

fn modes_for(image: &Image, frame: u32) -> Vec<Mode> {
    let Ok(px) = image.frame(frame) else {
        // Let `compare` report the failure if DCMTK decodes it.
        return vec![Mode::MinMax];
    };
    match &px.samples {
        Samples::Rgb(_) => vec![Mode::Colour],
        Samples::Mono(_) if image.header.palette.is_some() => vec![Mode::Colour],
        Samples::Mono(_) => {
            let info = &image.header.frames[frame as usize];
            let m = image.header.modality_transform(info);
            let (lo, hi) = px.min_max().unwrap_or((0, 1));
            let (a, b) = (m.apply(lo as i64), m.apply(hi as i64));
            let mut v = vec![
                Mode::MinMax,
                Mode::Explicit(((a + b) / 2.0).round(), ((b - a) / 2.0).round().max(2.0)),
            ];
            if !info.windows.is_empty() {
                v.push(Mode::FileWindow);
            }
            if !image.header.voi_luts.is_empty() {
                v.push(Mode::FileLut(info.windows.len()));
            }
            v
        }
    }
}

/// When DCMTK disagrees, pydicom referees: identical stored values mean DCMTK is the
/// odd one out (it misreads 32-bit big-endian OW data, for one).
fn pydicom_agrees(path: &Path, image: &Image, frame: u32) -> bool {
    let oracle = common::pydicom_oracle(&[path.to_path_buf()]);
    let Some(rec) = oracle.get(path) else {
        return false;
    };
    let Some(of) = rec.frames.iter().find(|f| f.frame == frame) else {
        return false;
    };
    match image.frame(frame).map(|p| p.samples) {
        Ok(Samples::Mono(v)) => v == of.values,
        _ => false,
    }
}

fn run_corpus(files: &[std::path::PathBuf]) -> (Vec<String>, Vec<String>, usize) {
    let tmp = common::tempdir();
    let mut failures = Vec::new();
    let mut notes = Vec::new();
    let mut matched = 0;
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let image = match Image::open(path) {
            Ok(i) => i,
            Err(e) => {
                notes.push(format!("{name}: not opened by Lightbox: {e}"));
                continue;
            }
        };
        let Some(px) = &image.header.pixel else {
            notes.push(format!("{name}: no pixel data"));
            continue;
        };
        let ts = &image.header.transfer_syntax;
        if ts.starts_with("1.2.840.10008.1.2.4.9") || ts.starts_with("1.2.840.10008.1.2.4.20") {
            notes.push(format!(
                "{name}: JPEG 2000, no DCMTK reference (checked against pydicom)"
            ));
            continue;
        }
        let mut frames = vec![0];
        if px.number_of_frames > 1 {
            frames.push(px.number_of_frames - 1);
        }
        for frame in frames {
            for mode in modes_for(&image, frame) {
                match compare(path, &image, frame, &mode, tmp.path()) {
                    Outcome::Match => matched += 1,
                    Outcome::Mismatch(m) if pydicom_agrees(path, &image, frame) => notes.push(format!(
                        "{name} frame {frame} {mode:?}: DCMTK differs ({m}) but Lightbox's stored values equal pydicom's"
                    )),
                    Outcome::Mismatch(m) => failures.push(format!("{name} frame {frame} {mode:?}: {m}")),
                    Outcome::DcmtkCannot(m) => {
                        notes.push(format!(
                            "{name} frame {frame} {mode:?}: DCMTK cannot render: {m}"
                        ));
                    }
                }
            }
        }
    }
    (failures, notes, matched)
}

#[test]
fn pydicom_corpus_matches_dcmtk_within_one_level() {
    let files = common::pydicom_corpus();
    assert!(
        files.len() > 50,
        "pydicom corpus looks incomplete: {} files",
        files.len()
    );
    let (failures, notes, matched) = run_corpus(&files);
    for n in &notes {
        eprintln!("note: {n}");
    }
    eprintln!("{matched} renderings matched DCMTK within ±1");
    assert!(matched > 60, "too few comparisons ran: {matched}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn synthetic_series_match_dcmtk_within_one_level() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    common::write_display_cases(dir);
    let files = lightbox::scan::list_files(dir).expect("list");
    assert!(files.len() >= 12);
    let (failures, notes, matched) = run_corpus(&files);
    for n in &notes {
        eprintln!("note: {n}");
    }
    eprintln!("{matched} synthetic renderings matched DCMTK within ±1");
    assert!(matched >= 25, "too few comparisons: {matched}");
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
