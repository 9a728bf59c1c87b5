//! Hostile and broken input: truncated and bit-flipped copies of real files of every
//! codec must give an error or an image — never a panic, never a hang.

mod common;

use lightbox::dicom::{self, Image, ReadMode};

/// A small deterministic generator (xorshift) so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Index and start time of the mutant being processed, for the watchdog.
static CURRENT: std::sync::Mutex<Option<(usize, std::time::Instant)>> = std::sync::Mutex::new(None);

/// A hang is a failure too: if one mutant takes longer than this, the watchdog
/// ends the test process with the mutant named (its file is kept).
const PER_MUTANT_SECS: u64 = 60;

fn start_watchdog(keep: std::path::PathBuf) {
    let spawned = std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(1));
                let cur = *CURRENT.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((n, t)) = cur
                    && t.elapsed().as_secs() > PER_MUTANT_SECS
                {
                    // Straight to stderr: the harness's capture would swallow eprintln!.
                    use std::io::Write;
                    let _ = writeln!(
                        std::io::stderr(),
                        "mutant {n} has not finished after {PER_MUTANT_SECS} s: kept as {}",
                        keep.join(format!("mutant{n}.dcm")).display()
                    );
                    std::process::exit(101);
                }
            }
        });
    spawned.expect("start the watchdog thread");
}

fn exercise(bytes: &[u8], tmp: &std::path::Path, n: usize) {
    let p = tmp.join(format!("mutant{n}.dcm"));
    std::fs::write(&p, bytes).expect("write");
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = Some((n, std::time::Instant::now()));
    let _ = dicom::read_header(&p);
    let _ = dicom::open(&p, ReadMode::HeaderOnly);
    if let Ok(img) = Image::open(&p)
        && let Some(px) = &img.header.pixel
    {
        for f in [0, px.number_of_frames.saturating_sub(1)] {
            if let Ok(frame) = img.frame(f) {
                let _ =
                    lightbox::imaging::render::render(&img.header, f, &frame, &Default::default());
            }
        }
    }
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let dir = common::pydicom_test_files();
    // One file per codec / layout.
    let names = [
        "CT_small.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "MR_small_jp2klossless.dcm",
        "JPGExtended.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "SC_rgb_rle_16bit.dcm",
        "examples_palette.dcm",
        "ExplVR_BigEnd.dcm",
        "image_dfl.dcm",
        "SC_ybr_full_422_uncompressed.dcm",
    ];
    let tmp = tempfile::Builder::new()
        .prefix("lightbox-mutants")
        .tempdir()
        .expect("tempdir");
    start_watchdog(tmp.path().to_path_buf());
    let mut rng = Rng(0x5eed_1234_abcd_9876);
    let mut n = 0;
    for name in names {
        let bytes = std::fs::read(dir.join(name)).expect("corpus file");
        // Truncations at 24 points across the file.
        for k in 1..24 {
            exercise(&bytes[..bytes.len() * k / 24], tmp.path(), n);
            n += 1;
        }
        // 40 mutants with 1–8 random bytes overwritten, biased to the header and the
        // start of the pixel data where lengths and markers live.
        for _ in 0..40 {
            let mut m = bytes.clone();
            let flips = 1 + rng.next() as usize % 8;
            for _ in 0..flips {
                let span = if rng.next().is_multiple_of(2) {
                    m.len().min(2048)
                } else {
                    m.len()
                };
                let i = rng.next() as usize % span;
                m[i] = rng.next() as u8;
            }
            exercise(&m, tmp.path(), n);
            n += 1;
        }
    }
    assert!(n > 600);
}

#[test]
fn hostile_lengths_fail_fast_with_the_element_named() {
    // pydicom's UN_sequence.dcm makes dicom-rs allocate 3.7 GB without the guard.
    let dir = common::pydicom_test_files();
    let t = std::time::Instant::now();
    let err = dicom::read_header(&dir.join("UN_sequence.dcm")).expect_err("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("(0008,1115)") && msg.contains("3758161918"),
        "{msg}"
    );
    // Not a timing assertion on speed, a guard against the multi-minute pathology:
    // the error must come back at all within the test's own lifetime.
    assert!(t.elapsed().as_secs() < 60);
}

#[test]
fn non_dicom_and_empty_files_are_named() {
    let tmp = common::tempdir();
    let p = tmp.path().join("empty.dcm");
    std::fs::write(&p, b"").expect("write");
    let e = dicom::read_header(&p).expect_err("empty").to_string();
    assert!(
        e.contains("empty.dcm") && e.contains("not a readable DICOM file"),
        "{e}"
    );
    let p = tmp.path().join("text.txt");
    std::fs::write(
        &p,
        b"hello world, this is plain text and not DICOM at all....",
    )
    .expect("write");
    let e = dicom::read_header(&p).expect_err("text").to_string();
    assert!(e.contains("text.txt"), "{e}");
}
