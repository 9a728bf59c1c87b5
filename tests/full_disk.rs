//! A cache whose file system fills up (a real tmpfs, mounted by the test as root
//! and removed after): `lightbox import`, the Storage SCP (`lightbox listen`, fed
//! by DCMTK's `storescu`) and a C-GET retrieve from DCMTK's `dcmqrscp` each stop
//! with "no space left on device" naming the cache; the SCP answers 0xA700 (out of
//! resources) on the association rather than dropping it; nothing is half-indexed
//! (`cache verify` is clean) and everything works again once there is room.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use lightbox::store::Store;

use common::lightbox as lb;

/// 40 CT slices of 256² (about 5 MB), more than the 3 MB file system holds.
fn big_ct(dir: &Path) -> Vec<PathBuf> {
    lightbox::synth::write_ct(
        dir,
        &lightbox::synth::CtSpec {
            slices: 40,
            size: 256,
            ..Default::default()
        },
    )
    .expect("synthetic CT");
    let mut v = lightbox::scan::list_files(dir).expect("list");
    v.sort();
    v
}

/// `cache verify` is clean and the index holds this many instances, each with its
/// file.
fn consistent(config: &Path, cache: &Path) -> usize {
    let o = lb(
        config,
        &["cache", "verify", "--cache", cache.to_str().expect("utf8")],
    );
    let t = common::all_output(&o);
    assert!(o.status.success(), "verify after a full disk:\n{t}");
    let store = Store::open(cache).expect("open");
    let n = store.stats().expect("stats").instances;
    let objects = lightbox::scan::list_files(&cache.join("objects")).expect("objects");
    assert_eq!(objects.len(), n, "one file per indexed instance, no other");
    n
}

#[test]
fn import_into_a_full_cache_stops_named_and_resumes_once_there_is_room() {
    let tmp = common::tempdir();
    let config = tmp.path().join("absent.toml");
    let sent = big_ct(&tmp.path().join("ct"));
    let at = tmp.path().join("disk");
    let disk = common::Tmpfs::mount(&at, "3m");
    let cache = at.join("cache");
    let c = cache.to_str().expect("utf8");
    let src = tmp.path().join("ct");
    let o = lb(
        &config,
        &["import", "--cache", c, src.to_str().expect("utf8")],
    );
    let t = common::all_output(&o);
    assert!(
        !o.status.success(),
        "an import that did not fit succeeded:\n{t}"
    );
    assert!(
        t.contains("no space left on device") && t.contains(c),
        "the error names the full cache:\n{t}"
    );
    consistent(&config, &cache);
    disk.remount("size=64m");
    let o = lb(
        &config,
        &["import", "--cache", c, src.to_str().expect("utf8")],
    );
    common::check_ok("import once there is room", o);
    assert_eq!(consistent(&config, &cache), sent.len());
}

#[test]
fn the_scp_answers_out_of_resources_on_a_full_disk_and_recovers() {
    let tmp = common::tempdir();
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "ae_title = \"LIGHTBOX\"\n").expect("config");
    let sent = big_ct(&tmp.path().join("ct"));
    let at = tmp.path().join("disk");
    let disk = common::Tmpfs::mount(&at, "3m");
    let cache = at.join("cache");
    let port = common::free_port();
    let scp = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(["listen", "--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cache", cache.to_str().expect("utf8")])
        .env("LIGHTBOX_CONFIG", &config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("scp.log")).expect("log"))
        .spawn()
        .expect("listen");
    let scp = common::KillOnDrop(scp);
    common::wait_port(port, "lightbox listen");
    let storescu = || {
        Command::new(common::require_tool("storescu", "dcmtk"))
            .env("TCP_NODELAY", "1")
            .args(["-v", "--no-halt", "-xi", "-aec", "LIGHTBOX", "127.0.0.1"])
            .arg(port.to_string())
            .args(&sent)
            .output()
            .expect("storescu")
    };
    let o = storescu();
    let t = common::all_output(&o);
    let ok = t.matches("Received Store Response (Success)").count();
    let refused = t.matches("Refused: OutOfResources").count();
    assert!(
        refused > 0 && ok + refused == sent.len(),
        "every object answered: success until the disk is full, then 0xA700 \
         ({ok} stored, {refused} refused):\n{t}"
    );
    assert!(
        !t.contains("Association Aborted") && t.contains("Releasing Association"),
        "the association is kept and released, not dropped:\n{t}"
    );
    let log = std::fs::read_to_string(tmp.path().join("scp.log")).expect("log");
    assert!(log.contains("No space left on device"), "{log}");
    // Every acknowledged object is indexed with its file, or (when its group's
    // index commit found the disk full) still staged, to be adopted on the next
    // open: nothing acknowledged is lost, nothing is half-indexed.
    let staged = lightbox::scan::list_files(&cache.join("incoming"))
        .unwrap_or_default()
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "dcm"))
        .count();
    assert_eq!(consistent(&config, &cache) + staged, ok);
    disk.remount("size=64m");
    let o = storescu();
    common::check_ok("storescu once there is room", o);
    drop(scp);
    assert_eq!(consistent(&config, &cache), sent.len());
}

#[test]
fn a_c_get_into_a_full_cache_fails_named_and_completes_once_there_is_room() {
    let tmp = common::tempdir();
    let sent = big_ct(&tmp.path().join("ct"));
    let pacs = common::pacs::Dcmqrscp::start(tmp.path(), &[], &sent);
    let config = pacs.get_config(tmp.path());
    let at = tmp.path().join("disk");
    let disk = common::Tmpfs::mount(&at, "3m");
    let cache = at.join("cache");
    let c = cache.to_str().expect("utf8");
    let study = lightbox::dicom::read_header(&sent[0])
        .expect("header")
        .study_uid;
    let o = lb(
        &config,
        &["retrieve", "pacs", "--study", &study, "--cache", c],
    );
    let t = common::all_output(&o);
    assert!(
        !o.status.success(),
        "a retrieve that did not fit succeeded:\n{t}"
    );
    // The retrieve reports the study incomplete and why, or (when the disk is
    // too full even to record that) stops naming the full cache.
    assert!(
        (t.contains("INCOMPLETE") && t.contains("No space left on device"))
            || (t.contains("no space left on device") && t.contains(c)),
        "the retrieve says it is incomplete and why:\n{t}"
    );
    let partial = consistent(&config, &cache);
    assert!(partial < sent.len());
    disk.remount("size=64m");
    let o = lb(
        &config,
        &["retrieve", "pacs", "--study", &study, "--cache", c],
    );
    let t = common::all_output(&o);
    common::check_ok("retrieve once there is room", o);
    assert!(t.starts_with("complete"), "{t}");
    assert_eq!(consistent(&config, &cache), sent.len());
}
