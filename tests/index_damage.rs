//! A damaged index, byte by byte, through the real `lightbox` binary: truncated,
//! pages zeroed, the WAL deleted after a kill, a newer schema, a read-only cache
//! folder. Lightbox says what happened, writes nothing to an index it cannot
//! trust, and `cache rebuild` restores it from the stored files with the same
//! counts (pins and measurements carried over while the damaged file yields them).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use lightbox::store::{MeasurementRow, Stats, Store};

fn lb(tmp: &Path, args: &[&str]) -> Output {
    common::lightbox(&tmp.join("absent.toml"), args)
}

fn counts(s: &Stats) -> (usize, usize, usize, usize) {
    (s.patients, s.studies, s.series, s.instances)
}

/// A cache with the CT (20 slices) and the MR (6), the CT pinned and a length
/// measured on its first slice; every process that wrote it has exited (the WAL
/// is checkpointed into the index).
fn cache_with_studies(tmp: &Path) -> (PathBuf, Stats) {
    let src = tmp.join("src");
    common::ct_mr_study(&src, 20, 6, 64);
    let cache = tmp.join("cache");
    let c = cache.to_str().expect("utf8");
    common::check_ok(
        "import",
        lb(tmp, &["import", "--cache", c, src.to_str().expect("utf8")]),
    );
    let store = Store::open(&cache).expect("open");
    let ct = store
        .studies()
        .expect("studies")
        .into_iter()
        .find(|s| s.modalities.iter().any(|m| m == "CT"))
        .expect("the CT study");
    store.set_pinned(&ct.study_uid, true).expect("pin");
    let series = store.series_of(&ct.study_uid).expect("series");
    let first = &store
        .instances_of(&series[0].series_uid)
        .expect("instances")[0];
    store
        .add_measurement(&MeasurementRow {
            id: 0,
            sop_uid: first.sop_uid.clone(),
            frame: 0,
            kind: "length".into(),
            space: "patient".into(),
            points: vec![[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]],
        })
        .expect("measure");
    let stats = store.stats().expect("stats");
    drop(store);
    assert!(
        !cache.join("index.sqlite-wal").exists()
            || std::fs::metadata(cache.join("index.sqlite-wal"))
                .map(|m| m.len() == 0)
                .unwrap_or(true),
        "the WAL is checkpointed when the last writer closes"
    );
    (cache, stats)
}

/// The index is refused by reading and writing commands alike, with the reason,
/// and left byte for byte as it was; `cache rebuild` then restores the counts.
fn refused_then_rebuilt(tmp: &Path, cache: &Path, before: &Stats, damage: &str) -> String {
    let c = cache.to_str().expect("utf8");
    let index = cache.join("index.sqlite");
    let damaged = std::fs::read(&index).expect("index");
    for args in [
        vec!["cache", "ls", "--cache", c],
        vec!["cache", "stats", "--cache", c],
        vec![
            "import",
            "--cache",
            c,
            tmp.join("src").to_str().expect("utf8"),
        ],
    ] {
        let o = lb(tmp, &args);
        let t = common::all_output(&o);
        assert!(!o.status.success(), "{damage}: {args:?} succeeded:\n{t}");
        assert!(
            t.contains("the cache index is damaged") && t.contains("cache rebuild"),
            "{damage}: {args:?} must say the index is damaged and what to do:\n{t}"
        );
        assert_eq!(
            std::fs::read(&index).expect("index"),
            damaged,
            "{damage}: {args:?} wrote to an index it cannot trust"
        );
    }
    let o = lb(tmp, &["cache", "rebuild", "--cache", c]);
    let t = common::all_output(&o);
    common::check_ok("cache rebuild", o);
    assert!(
        t.contains("the index was damaged") && t.contains("set aside as"),
        "{damage}: {t}"
    );
    let store = Store::open(cache).expect("open the rebuilt cache");
    assert_eq!(
        counts(&store.stats().expect("stats")),
        counts(before),
        "{damage}: counts after the rebuild"
    );
    assert!(store.verify().expect("verify").is_clean());
    // The damaged file is kept beside the new index, never deleted.
    let kept = std::fs::read_dir(cache)
        .expect("cache")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("index.sqlite.damaged-")
        })
        .count();
    assert!(kept >= 1, "{damage}: the damaged index is kept");
    common::check_ok("cache verify", lb(tmp, &["cache", "verify", "--cache", c]));
    t
}

#[test]
fn a_truncated_index_is_refused_untouched_and_rebuilt_from_the_files() {
    let tmp = common::tempdir();
    let (cache, before) = cache_with_studies(tmp.path());
    let index = cache.join("index.sqlite");
    let len = std::fs::metadata(&index).expect("index").len();
    assert!(len >= 4 * 4096, "the index has pages to lose ({len} bytes)");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&index)
        .expect("open")
        .set_len(len / 2)
        .expect("truncate");
    refused_then_rebuilt(tmp.path(), &cache, &before, "truncated");
}

#[test]
fn zeroed_pages_are_refused_untouched_and_rebuilt_keeping_what_can_be_read() {
    let tmp = common::tempdir();
    let (cache, before) = cache_with_studies(tmp.path());
    let index = cache.join("index.sqlite");
    let mut bytes = std::fs::read(&index).expect("index");
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    let pages = bytes.len() / page;
    // Every page but the first (the schema) and the last two, zeroed.
    for p in 1..pages.saturating_sub(2) {
        bytes[p * page..(p + 1) * page].fill(0);
    }
    std::fs::write(&index, &bytes).expect("write");
    refused_then_rebuilt(tmp.path(), &cache, &before, "zeroed pages");
}

#[test]
fn a_damaged_schema_page_still_rebuilds_and_pins_and_measurements_survive_a_readable_copy() {
    // The header only (not a database at all): nothing salvageable, all rebuilt.
    let tmp = common::tempdir();
    let (cache, before) = cache_with_studies(tmp.path());
    let index = cache.join("index.sqlite");
    let mut bytes = std::fs::read(&index).expect("index");
    bytes[..100].fill(0xA5);
    std::fs::write(&index, &bytes).expect("write");
    let t = refused_then_rebuilt(tmp.path(), &cache, &before, "header overwritten");
    assert!(t.contains("could not be read back"), "{t}");

    // Damage a page that only the instance rows use: the rows are rebuilt from the
    // files, and the pin and the measurement come back from the damaged copy.
    let tmp = common::tempdir();
    let (cache, before) = cache_with_studies(tmp.path());
    let index = cache.join("index.sqlite");
    let root_page: i64 = {
        let conn = rusqlite::Connection::open(&index).expect("sqlite");
        conn.query_row(
            "SELECT rootpage FROM sqlite_master WHERE name = 'instances_by_series'",
            [],
            |r| r.get(0),
        )
        .expect("root page")
    };
    let mut bytes = std::fs::read(&index).expect("index");
    let page = u16::from_be_bytes([bytes[16], bytes[17]]) as usize;
    let at = (root_page as usize - 1) * page;
    bytes[at..at + page].fill(0);
    std::fs::write(&index, &bytes).expect("write");
    let t = refused_then_rebuilt(tmp.path(), &cache, &before, "an index page zeroed");
    assert!(
        t.contains("carried over 1 pin(s), 1 measurement(s)"),
        "the pin and the measurement survive:\n{t}"
    );
    let store = Store::open(&cache).expect("open");
    assert_eq!(store.stats().expect("stats").pinned_studies, 1);
}

#[test]
fn a_deleted_wal_loses_rows_not_files_and_rebuild_restores_them() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    common::ct_mr_study(&src, 20, 1, 64);
    let sent = lightbox::scan::list_files(&src.join("ct")).expect("list");
    let cache = tmp.path().join("cache");
    let c = cache.to_str().expect("utf8");
    let port = common::free_port();
    let scp = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(["listen", "--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cache", c])
        .env("LIGHTBOX_CONFIG", tmp.path().join("absent.toml"))
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("listen");
    let mut scp = common::KillOnDrop(scp);
    common::wait_port(port, "lightbox listen");
    let mut cmd = Command::new(common::require_tool("storescu", "dcmtk"));
    cmd.args(["-xi", "-aec", "LIGHTBOX", "127.0.0.1", &port.to_string()])
        .args(&sent);
    common::run_ok(&mut cmd);
    // Acknowledged and released: the rows are committed (in the WAL). Killed, the
    // SCP never checkpoints; then the WAL is lost.
    scp.0.kill().expect("kill");
    let _ = scp.0.wait();
    let wal = cache.join("index.sqlite-wal");
    assert!(
        std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0) > 0,
        "the killed SCP left its commits in the WAL"
    );
    std::fs::remove_file(&wal).expect("delete the WAL");
    let _ = std::fs::remove_file(cache.join("index.sqlite-shm"));
    let o = lb(tmp.path(), &["cache", "verify", "--cache", c]);
    let t = common::all_output(&o);
    assert!(
        !o.status.success(),
        "verify must report the lost rows:\n{t}"
    );
    assert!(
        t.contains(&format!("{} unindexed file(s)", sent.len())) && t.contains("cache rebuild"),
        "every stored file is unindexed, and rebuild is suggested:\n{t}"
    );
    common::check_ok(
        "cache rebuild",
        lb(tmp.path(), &["cache", "rebuild", "--cache", c]),
    );
    let store = Store::open(&cache).expect("open");
    assert_eq!(store.stats().expect("stats").instances, sent.len());
    assert!(store.verify().expect("verify").is_clean());
    drop(scp);
    std::thread::sleep(Duration::from_millis(10));
}

#[test]
fn a_newer_schema_is_refused_by_every_command_and_left_alone() {
    let tmp = common::tempdir();
    let (cache, _) = cache_with_studies(tmp.path());
    let index = cache.join("index.sqlite");
    rusqlite::Connection::open(&index)
        .expect("sqlite")
        .execute_batch("PRAGMA user_version = 99")
        .expect("pretend a newer Lightbox wrote it");
    let bytes = std::fs::read(&index).expect("index");
    let c = cache.to_str().expect("utf8");
    for args in [
        vec!["cache", "ls", "--cache", c],
        vec!["cache", "rebuild", "--cache", c],
        vec![
            "import",
            "--cache",
            c,
            tmp.path().join("src").to_str().expect("utf8"),
        ],
    ] {
        let o = lb(tmp.path(), &args);
        let t = common::all_output(&o);
        assert!(!o.status.success(), "{args:?} succeeded on a newer schema");
        assert!(
            t.contains("schema version 99 is newer than this Lightbox"),
            "{args:?}: {t}"
        );
        assert_eq!(
            std::fs::read(&index).expect("index"),
            bytes,
            "{args:?} wrote"
        );
    }
}

#[test]
fn a_read_only_cache_folder_is_named_and_nothing_is_written() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    common::ct_mr_study(&src, 4, 1, 64);
    let at = tmp.path().join("ro");
    let mount = common::Tmpfs::mount(&at, "16m");
    let cache = at.join("cache");
    let c = cache.to_str().expect("utf8");
    common::check_ok(
        "import",
        lb(
            tmp.path(),
            &["import", "--cache", c, src.to_str().expect("utf8")],
        ),
    );
    mount.remount("ro");
    for args in [
        vec!["cache", "ls", "--cache", c],
        vec!["import", "--cache", c, src.to_str().expect("utf8")],
        vec!["cache", "rebuild", "--cache", c],
    ] {
        let o = lb(tmp.path(), &args);
        let t = common::all_output(&o);
        assert!(
            !o.status.success(),
            "{args:?} succeeded on a read-only cache"
        );
        assert!(
            t.contains("the cache cannot be written") && t.contains(c),
            "{args:?} must name the read-only cache:\n{t}"
        );
    }
    mount.remount("rw");
    let o = lb(tmp.path(), &["cache", "verify", "--cache", c]);
    common::check_ok("verify once writable again", o);
}
