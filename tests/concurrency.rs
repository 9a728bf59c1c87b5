//! One cache, many writers at once, as on a reading station: the viewer's reader
//! (this process: listing studies, opening a study's files, touching it) while
//! `lightbox listen` stores a study pushed by DCMTK's `storescu`, `lightbox import`
//! adds studies and `lightbox cache evict` removes the oldest — all at the same
//! time, round after round. No "database is locked" reaches anyone, the study on
//! screen is always whole, and the cache is consistent at the end.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use lightbox::store::Store;
use lightbox::synth;

const ROUNDS: usize = 6;

use common::lightbox as lb;

fn ct(dir: &Path, seed: &str, slices: usize) -> Vec<PathBuf> {
    synth::write_ct(
        dir,
        &synth::CtSpec {
            slices,
            size: 128,
            seed: seed.into(),
            ..Default::default()
        },
    )
    .expect("synthetic CT");
    let mut v = lightbox::scan::list_files(dir).expect("list");
    v.sort();
    v
}

#[test]
fn viewer_scp_import_and_evict_share_the_cache_without_lock_errors() {
    let tmp = common::tempdir();
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "ae_title = \"LIGHTBOX\"\n").expect("config");
    let cache = tmp.path().join("cache");
    let c = cache.to_str().expect("utf8").to_string();

    // The study on screen, pinned as the reader keeps it open.
    let current = ct(&tmp.path().join("current"), "current", 20);
    common::check_ok(
        "import",
        lb(
            &config,
            &[
                "import",
                "--cache",
                &c,
                tmp.path().join("current").to_str().expect("utf8"),
            ],
        ),
    );
    let store = Store::open(&cache).expect("open");
    let on_screen = store.studies().expect("studies")[0].study_uid.clone();
    store.set_pinned(&on_screen, true).expect("pin");
    drop(store);

    // Studies to import (one per round) and one to push over the network.
    let imports: Vec<PathBuf> = (0..ROUNDS)
        .map(|k| {
            let d = tmp.path().join(format!("import{k}"));
            ct(&d, &format!("import-{k}"), 20);
            d
        })
        .collect();
    let pushed = ct(&tmp.path().join("pushed"), "pushed", ROUNDS * 8);

    let port = common::free_port();
    let scp = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(["listen", "--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cache", &c])
        .env("LIGHTBOX_CONFIG", &config)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.path().join("scp.log")).expect("log"))
        .spawn()
        .expect("listen");
    let scp = common::KillOnDrop(scp);
    common::wait_port(port, "lightbox listen");

    // The viewer's side: list, open every file of the study on screen, touch it.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let cache = cache.clone();
        let stop = Arc::clone(&stop);
        let on_screen = on_screen.clone();
        std::thread::Builder::new()
            .name("reader".into())
            .spawn(move || {
                let store = Store::open(&cache).expect("open");
                let mut rounds = 0usize;
                let mut errors = Vec::new();
                while !stop.load(Ordering::Relaxed) || rounds == 0 {
                    rounds += 1;
                    let step = || -> Result<usize, String> {
                        store.studies().map_err(|e| e.to_string())?;
                        let mut n = 0;
                        for se in store.series_of(&on_screen).map_err(|e| e.to_string())? {
                            for i in store
                                .instances_of(&se.series_uid)
                                .map_err(|e| e.to_string())?
                            {
                                let path = cache.join(&i.path);
                                lightbox::dicom::read_header(&path).map_err(|e| e.to_string())?;
                                n += 1;
                            }
                        }
                        store.touch(&on_screen).map_err(|e| e.to_string())?;
                        Ok(n)
                    };
                    match step() {
                        Ok(20) => {}
                        Ok(n) => errors.push(format!("the study on screen had {n} of 20 images")),
                        Err(e) => errors.push(e),
                    }
                    if rounds > 100_000 {
                        break;
                    }
                }
                (rounds, errors)
            })
            .expect("start the reader")
    };

    let storescu = common::require_tool("storescu", "dcmtk");
    let mut failures = Vec::new();
    for k in 0..ROUNDS {
        // The three writers of this round, at once.
        let push = {
            let files = pushed[k * 8..(k + 1) * 8].to_vec();
            let storescu = storescu.clone();
            std::thread::Builder::new()
                .name("writer".into())
                .spawn(move || {
                    Command::new(storescu)
                        .env("TCP_NODELAY", "1")
                        .args(["-xi", "-aec", "LIGHTBOX", "127.0.0.1", &port.to_string()])
                        .args(&files)
                        .output()
                        .expect("storescu")
                })
                .expect("start storescu")
        };
        let import = {
            let (config, c, dir) = (config.clone(), c.clone(), imports[k].clone());
            std::thread::Builder::new()
                .name("writer".into())
                .spawn(move || {
                    lb(
                        &config,
                        &["import", "--cache", &c, dir.to_str().expect("utf8")],
                    )
                })
                .expect("start import")
        };
        let evict = lb(&config, &["cache", "evict", "--max-mb", "2", "--cache", &c]);
        for (what, out) in [
            ("storescu", push.join().expect("push")),
            ("import", import.join().expect("import")),
            ("evict", evict),
        ] {
            let t = common::all_output(&out);
            if !out.status.success() || t.contains("locked") || t.contains("busy") {
                failures.push(format!("round {k}: {what}: {}\n{t}", out.status));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let (rounds, errors) = reader.join().expect("reader");
    drop(scp);
    let log = std::fs::read_to_string(tmp.path().join("scp.log")).expect("log");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        errors.is_empty(),
        "the reader, in {rounds} rounds: {errors:?}"
    );
    assert!(
        !log.contains("locked") && !log.contains("busy"),
        "the SCP met a locked index:\n{log}"
    );
    let store = Store::open(&cache).expect("open");
    let v = store.verify().expect("verify");
    assert!(v.is_clean(), "{v:?}");
    // The study on screen is whole; every other study is whole or gone.
    let by_study: Vec<(String, usize)> = store
        .studies()
        .expect("studies")
        .into_iter()
        .map(|s| (s.study_uid, s.instances))
        .collect();
    assert!(by_study.contains(&(on_screen.clone(), current.len())));
    drop(store);
    common::check_ok(
        "a last evict",
        lb(&config, &["cache", "evict", "--max-mb", "2", "--cache", &c]),
    );
    let stats = Store::open(&cache).expect("open").stats().expect("stats");
    assert!(
        stats.bytes <= 2_000_000,
        "evicted down to the cap: {stats:?}"
    );
    println!("reader: {rounds} rounds; studies at the end: {by_study:?}");
}
