//! Crash hygiene of the cache: a zip import and a C-GET retrieve (from DCMTK's
//! `dcmqrscp`) killed with SIGKILL mid-way — the kill asserted to have landed
//! while the process was working (its temporary folder, or staged objects, seen
//! first) — leave nothing outside `objects/` and the index once a writer opens the
//! cache again, `verify` is clean, and running the command again completes. And
//! `cache verify --repair` mends what a crash or a hand can leave: unindexed
//! files, rows without their file, junk under `objects/`.

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lightbox::store::Store;
use lightbox::synth;

const SIGKILL: i32 = 9;

fn ct(dir: &Path, slices: usize) -> Vec<PathBuf> {
    synth::write_ct(
        dir,
        &synth::CtSpec {
            slices,
            size: 128,
            ..Default::default()
        },
    )
    .expect("synthetic CT");
    let mut v = lightbox::scan::list_files(dir).expect("list");
    v.sort();
    v
}

/// Every file of the cache that is neither under `objects/`, the index nor the
/// audit trail.
fn strays(cache: &Path) -> Vec<PathBuf> {
    lightbox::scan::list_files(cache)
        .expect("list")
        .into_iter()
        .filter(|p| {
            let rel = p.strip_prefix(cache).expect("under");
            !(rel.starts_with("objects")
                || rel.starts_with("audit")
                || rel.to_string_lossy().starts_with("index.sqlite"))
        })
        .collect()
}

/// Wait (bounded: 20 s) until `seen()` holds while `child` still runs; then kill
/// it at once. True when the kill landed on the running process.
fn kill_when(child: &mut std::process::Child, seen: impl Fn() -> bool, after: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if child.try_wait().expect("try_wait").is_some() {
            return false;
        }
        if seen() {
            std::thread::sleep(after);
            let _ = child.kill();
            let status = child.wait().expect("wait");
            return status.signal() == Some(SIGKILL);
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// After a crash: the next writer's open leaves nothing stray and no index row
/// without its file; files placed but not yet indexed when the kill came (the
/// import indexes in one transaction after placing) are what `verify --repair`
/// indexes; then verify is clean.
fn clean_after_reopen(cache: &Path, what: &str) -> usize {
    let mut store = Store::open(cache).expect("reopen after the crash");
    let v = store.verify().expect("verify");
    assert!(
        v.missing.is_empty() && v.corrupt.is_empty() && v.leftovers.is_empty(),
        "{what}: {v:?}"
    );
    if !v.orphaned.is_empty() {
        let r = store.repair(&v).expect("repair");
        assert_eq!(
            r.indexed,
            v.orphaned.len(),
            "{what}: every placed file indexed"
        );
    }
    let v = store.verify().expect("verify");
    assert!(v.is_clean(), "{what}: {v:?}");
    let s = strays(cache);
    assert!(
        s.is_empty(),
        "{what}: left outside objects/ and the index: {s:?}"
    );
    store.stats().expect("stats").instances
}

#[test]
fn a_zip_import_killed_mid_way_leaves_nothing_behind() {
    use std::io::Write;
    let tmp = common::tempdir();
    let files = ct(&tmp.path().join("ct"), 120);
    let zip_path = tmp.path().join("study.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).expect("create zip"));
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (i, f) in files.iter().enumerate() {
            z.start_file(format!("DICOM/IM{i:04}"), opts)
                .expect("entry");
            z.write_all(&std::fs::read(f).expect("read"))
                .expect("write");
        }
        z.finish().expect("finish");
    }
    let cache = tmp.path().join("cache");
    let mut landed = 0;
    // Killed as the archive starts unpacking, part-way through, and later.
    for after_ms in [0u64, 15, 40, 80] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args(["import", "--cache", cache.to_str().expect("utf8")])
            .arg(&zip_path)
            .env("LIGHTBOX_CONFIG", tmp.path().join("absent.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("import");
        let pid = child.id();
        let tmp_dir = cache.join("tmp");
        let unpacking = || {
            std::fs::read_dir(&tmp_dir).is_ok_and(|d| {
                d.flatten().any(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("zip-{pid}-"))
                })
            })
        };
        if kill_when(&mut child, unpacking, Duration::from_millis(after_ms)) {
            landed += 1;
        }
        clean_after_reopen(&cache, &format!("zip import killed {after_ms} ms in"));
    }
    assert!(
        landed >= 2,
        "only {landed} of 4 kills landed while the import ran"
    );
    // Importing again completes the study.
    common::check_ok(
        "import again",
        Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args(["import", "--cache", cache.to_str().expect("utf8")])
            .arg(&zip_path)
            .env("LIGHTBOX_CONFIG", tmp.path().join("absent.toml"))
            .output()
            .expect("import"),
    );
    assert_eq!(
        clean_after_reopen(&cache, "after the last import"),
        files.len()
    );
}

#[test]
fn a_c_get_killed_mid_retrieve_keeps_what_arrived_and_completes_when_run_again() {
    let tmp = common::tempdir();
    let files = ct(&tmp.path().join("ct"), 120);
    let pacs = common::pacs::Dcmqrscp::start(tmp.path(), &[], &files);
    let config = pacs.get_config(tmp.path());
    let study = lightbox::dicom::read_header(&files[0])
        .expect("header")
        .study_uid;
    let cache = tmp.path().join("cache");
    let c = cache.to_str().expect("utf8");
    let retrieve = || {
        Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args(["retrieve", "pacs", "--study", &study, "--cache", c])
            .env("LIGHTBOX_CONFIG", &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("retrieve")
    };
    let mut child = retrieve();
    // Killed once objects are arriving: staged or already placed.
    let arriving = || {
        let staged = lightbox::scan::list_files(&cache.join("incoming"))
            .unwrap_or_default()
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "dcm"));
        staged
            || !lightbox::scan::list_files(&cache.join("objects"))
                .unwrap_or_default()
                .is_empty()
    };
    assert!(
        kill_when(&mut child, arriving, Duration::from_millis(20)),
        "the kill must land while objects arrive"
    );
    let kept = clean_after_reopen(&cache, "C-GET killed mid-retrieve");
    assert!(
        kept < files.len(),
        "the kill came after everything had arrived"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(["retrieve", "pacs", "--study", &study, "--cache", c])
        .env("LIGHTBOX_CONFIG", &config)
        .output()
        .expect("retrieve");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    common::check_ok("retrieve again", out);
    assert!(
        text.starts_with("complete") && text.contains(&format!("{kept} already cached")),
        "the second retrieve fetches only what is missing:\n{text}"
    );
    assert_eq!(
        clean_after_reopen(&cache, "after the second retrieve"),
        files.len()
    );
}

#[test]
fn verify_repair_indexes_strays_drops_rows_without_files_and_quarantines_junk() {
    let tmp = common::tempdir();
    let files = ct(&tmp.path().join("ct"), 10);
    let cache = tmp.path().join("cache");
    let c = cache.to_str().expect("utf8");
    let lb = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args(args)
            .env("LIGHTBOX_CONFIG", tmp.path().join("absent.toml"))
            .output()
            .expect("lightbox")
    };
    common::check_ok(
        "import",
        lb(&[
            "import",
            "--cache",
            c,
            tmp.path().join("ct").to_str().expect("utf8"),
        ]),
    );
    let objects = lightbox::scan::list_files(&cache.join("objects")).expect("objects");
    // A file whose row is lost (as after a deleted WAL), a row whose file is lost,
    // and junk where objects live.
    {
        let store = Store::open(&cache).expect("open");
        let h = lightbox::dicom::read_header(&objects[0]).expect("header");
        drop(store);
        let conn = rusqlite::Connection::open(cache.join("index.sqlite")).expect("sqlite");
        conn.execute(
            "DELETE FROM instances WHERE sop_uid = ?1",
            [&h.sop_instance_uid],
        )
        .expect("delete a row");
    }
    std::fs::remove_file(&objects[1]).expect("remove a file");
    let junk = objects[2].with_file_name("junk.dcm");
    std::fs::write(&junk, b"not DICOM at all").expect("junk");
    let o = lb(&["cache", "verify", "--cache", c]);
    assert!(!o.status.success(), "verify must fail first");
    let o = lb(&["cache", "verify", "--repair", "--cache", c]);
    let t = String::from_utf8_lossy(&o.stdout).to_string();
    common::check_ok("verify --repair", o);
    assert!(
        t.contains(
            "1 unindexed file(s) indexed, 1 moved to lost+found, 1 row(s) without a file removed"
        ),
        "{t}"
    );
    assert!(cache.join("lost+found").exists() && !junk.exists());
    common::check_ok(
        "verify after repair",
        lb(&["cache", "verify", "--cache", c]),
    );
    let store = Store::open(&cache).expect("open");
    assert_eq!(store.stats().expect("stats").instances, files.len() - 1);
}
