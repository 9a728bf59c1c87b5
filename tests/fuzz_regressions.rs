//! The fuzz targets' inputs replayed in the ordinary test run, through the same
//! entry points (`lightbox::fuzzing`) the fuzzers drive:
//! - every seed in `fuzz/seeds/<target>/` must be *accepted* (a seed that fails
//!   would leave the fuzzer exploring error paths only): the pixel seeds decode,
//!   the files open, the protocol messages parse;
//! - every minimised input the fuzzers found in `tests/fuzz/<target>/` (a crash,
//!   a hang, an allocation over the bound, now fixed) must come back without a
//!   panic, under a watchdog, and without holding more than [`MAX_ALLOCATION`]
//!   (this binary's allocator refuses more, which aborts it).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lightbox::fuzzing::{self, Codec};

/// The most this test binary may hold allocated at once; an input that makes
/// Lightbox ask for more (a length taken on trust) fails the allocation, which
/// aborts the binary with "memory allocation of N bytes failed".
const MAX_ALLOCATION: usize = 512 << 20;

#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, MAX_ALLOCATION);

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(d) => d
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

const TARGETS: &[&str] = &[
    "open_file",
    "decode_native",
    "decode_rle",
    "decode_jpeg_baseline",
    "decode_jpeg_extended",
    "decode_jpeg_lossless",
    "decode_jpegls",
    "decode_j2k",
    "pdu",
    "command",
    "find_answer",
    "dicomdir",
    "zip",
    "config",
    "protocol",
    "vr_preset",
];

fn codec(target: &str) -> Option<Codec> {
    Some(match target {
        "decode_native" => Codec::Native,
        "decode_rle" => Codec::Rle,
        "decode_jpeg_baseline" => Codec::JpegBaseline,
        "decode_jpeg_extended" => Codec::JpegExtended,
        "decode_jpeg_lossless" => Codec::JpegLossless,
        "decode_jpegls" => Codec::JpegLs,
        "decode_j2k" => Codec::Jpeg2000,
        _ => return None,
    })
}

/// Run one input through its target: Ok when accepted, Err(why) when refused.
fn run(target: &str, data: &[u8], scratch: &Path) -> Result<(), String> {
    if let Some(c) = codec(target) {
        return fuzzing::decode(c, data);
    }
    let ok = match target {
        "open_file" => fuzzing::open_file(data),
        "pdu" => fuzzing::pdu(data),
        "command" => fuzzing::command(data),
        "find_answer" => fuzzing::find_answer(data),
        "dicomdir" => fuzzing::dicomdir(data).is_some_and(|n| n > 0),
        "zip" => fuzzing::zip(data, scratch).is_some_and(|n| n > 0),
        "config" => fuzzing::config(data),
        "protocol" => fuzzing::protocol(data),
        "vr_preset" => fuzzing::vr_preset(data),
        other => panic!("unknown fuzz target {other}"),
    };
    if ok { Ok(()) } else { Err("refused".into()) }
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

#[test]
fn every_target_has_seeds_and_every_seed_is_accepted() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let listed = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).expect("fuzz/Cargo.toml");
    let mut refused = Vec::new();
    for t in TARGETS {
        assert!(
            listed.contains(&format!("name = \"{t}\"")),
            "{t} is not a target in fuzz/Cargo.toml"
        );
        let seeds = inputs(&fuzz_dir().join("seeds").join(t));
        assert!(
            !seeds.is_empty(),
            "no seeds for {t} (run fuzz/make_seeds.py)"
        );
        for s in seeds {
            let data = std::fs::read(&s).expect("seed");
            if let Err(e) = run(t, &data, scratch.path()) {
                refused.push(format!("{}: {e}", s.display()));
            }
        }
    }
    assert!(refused.is_empty(), "seeds refused:\n{}", refused.join("\n"));
}

#[test]
fn what_the_fuzzers_found_comes_back_without_a_panic() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let found = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fuzz");
    let mut n = 0;
    let mut failed = Vec::new();
    for t in TARGETS {
        for f in inputs(&found.join(t)) {
            let data = std::fs::read(&f).expect("input");
            let (tx, rx) = std::sync::mpsc::channel();
            let target = t.to_string();
            let dir = scratch.path().to_path_buf();
            let label = f.display().to_string();
            std::thread::Builder::new()
                .name("fuzz-replay".into())
                .spawn(move || {
                    let r = std::panic::catch_unwind(|| run(&target, &data, &dir));
                    let _ = tx.send(r.is_ok());
                })
                .expect("start a replay thread");
            let started = std::time::Instant::now();
            match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(true) => {
                    let took = started.elapsed();
                    if took > Duration::from_secs(1) {
                        eprintln!("{label}: {:.1} s", took.as_secs_f64());
                    }
                }
                Ok(false) => failed.push(format!("{label}: panicked")),
                Err(_) => failed.push(format!("{label}: still running after 60 s")),
            }
            n += 1;
        }
    }
    println!("{n} regression input(s) replayed");
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
