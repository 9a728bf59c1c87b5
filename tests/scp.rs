//! The Storage SCP against DCMTK's real clients: `echoscu`, and `storescu` pushing
//! several associations at once, uncompressed and compressed (JPEG-LS, RLE). Every
//! instance arrives once, with the data set byte-identical to what was sent; wrong
//! AE titles are rejected; the SCP keeps serving after a rejected peer.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lightbox::store::Store;
use lightbox::synth;

fn start_scp(cache: &Path, config: &Path, port: u16) -> common::KillOnDrop {
    let child = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args([
            "listen",
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--cache",
            cache.to_str().expect("utf8"),
        ])
        .env("LIGHTBOX_CONFIG", config)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start lightbox listen");
    let scp = common::KillOnDrop(child);
    common::wait_port(port, "lightbox listen");
    scp
}

fn dcmtk_command(tool: &str, args: &[String]) -> Command {
    let mut cmd = Command::new(common::require_tool(tool, "dcmtk"));
    cmd.args(args).env("TCP_NODELAY", "1");
    cmd
}

/// Run a DCMTK tool, whatever its exit status.
fn dcmtk(tool: &str, args: &[String]) -> std::process::Output {
    dcmtk_command(tool, args).output().expect("run dcmtk")
}

/// Run a DCMTK tool that must succeed (see `common::run_ok`).
fn dcmtk_ok(tool: &str, args: &[String]) -> std::process::Output {
    common::run_ok(&mut dcmtk_command(tool, args))
}

/// Data set bytes of a Part 10 file (everything after the file meta group).
fn dataset_bytes(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read");
    let group_len = u32::from_le_bytes([bytes[140], bytes[141], bytes[142], bytes[143]]) as usize;
    bytes[144 + group_len..].to_vec()
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = lightbox::scan::list_files(dir).expect("list");
    v.sort();
    v
}

#[test]
fn storescu_pushes_concurrently_and_every_instance_arrives_identical() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    common::ct_mr_study(&src, 12, 6, 64);
    // Compressed copies of the MR: JPEG-LS and RLE (storescu sends them as they are).
    let mut compressed = Vec::new();
    for (i, f) in files(&src.join("mr")).iter().enumerate().take(4) {
        let (tool, dir) = if i % 2 == 0 {
            ("dcmcjpls", "jls")
        } else {
            ("dcmcrle", "rle")
        };
        let out_dir = src.join(dir);
        std::fs::create_dir_all(&out_dir).expect("mkdir");
        let dst = out_dir.join(f.file_name().expect("name"));
        dcmtk_ok(tool, &[f.display().to_string(), dst.display().to_string()]);
        compressed.push(dst);
    }
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "ae_title = \"LIGHTBOX\"\n").expect("config");
    let cache = tmp.path().join("cache");
    let port = common::free_port();
    let scp = start_scp(&cache, &config, port);
    let addr = ["127.0.0.1".to_string(), port.to_string()];

    dcmtk_ok(
        "echoscu",
        &[&["-aec".to_string(), "LIGHTBOX".to_string()][..], &addr[..]].concat(),
    );

    // Three CT associations at once, plus the MR.
    let ct = files(&src.join("ct"));
    let mut jobs = Vec::new();
    let pushes: Vec<(Vec<PathBuf>, &str)> = ct
        .chunks(4)
        .map(|c| (c.to_vec(), "-xi")) // implicit VR, as the CT files are: nothing converted
        .chain(std::iter::once((files(&src.join("mr")), "-xe")))
        .collect();
    for (chunk, syntax) in pushes {
        let addr = addr.clone();
        let syntax = syntax.to_string();
        jobs.push(
            std::thread::Builder::new()
                .name("storescu".into())
                .spawn(move || {
                    let mut args = vec![syntax, "-aec".to_string(), "LIGHTBOX".to_string()];
                    args.extend(addr);
                    args.extend(chunk.iter().map(|p| p.display().to_string()));
                    dcmtk("storescu", &args)
                })
                .expect("start a storescu thread"),
        );
    }
    for j in jobs {
        common::check_ok("storescu", j.join().expect("thread"));
    }
    // Compressed: JPEG-LS (-xt) and RLE (-xr) proposed explicitly.
    for (flag, dir) in [("-xt", "jls"), ("-xr", "rle")] {
        let mut args = vec![flag.to_string(), "-aec".to_string(), "LIGHTBOX".to_string()];
        args.extend(addr.clone());
        args.extend(
            files(&src.join(dir))
                .iter()
                .map(|p| p.display().to_string()),
        );
        dcmtk_ok("storescu", &args);
    }
    // A peer calling the wrong AE title is rejected; the SCP keeps serving.
    let mut args = vec!["-aec".to_string(), "NOT_US".to_string()];
    args.extend(addr.clone());
    args.push(ct[0].display().to_string());
    assert!(
        !dcmtk("storescu", &args).status.success(),
        "wrong called AE must be rejected"
    );
    dcmtk_ok(
        "echoscu",
        &[&["-aec".to_string(), "LIGHTBOX".to_string()][..], &addr[..]].concat(),
    );
    drop(scp);

    let store = Store::open(&cache).expect("open cache");
    let v = store.verify().expect("verify");
    assert!(v.is_clean(), "{v:?}");
    let rows = store.studies().expect("ls");
    let total: usize = rows.iter().map(|r| r.instances).sum();
    // 12 CT + 6 MR instances; the compressed MR copies share SOP UIDs with
    // different bytes: they are kept as new versions, so every object sent is in
    // the cache (and the listing counts instances, not versions).
    assert_eq!(total, 12 + 6, "{rows:?}");
    assert_eq!(v.checked, 12 + 6 + compressed.len(), "{v:?}");
    // Byte-identical data sets: find each sent file's stored twin by content.
    let stored: Vec<Vec<u8>> = files(&cache.join("objects"))
        .iter()
        .map(|p| dataset_bytes(p))
        .collect();
    for f in ct.iter().chain(compressed.iter()) {
        let sent = dataset_bytes(f);
        assert!(
            stored.contains(&sent),
            "{} did not arrive byte-identical",
            f.display()
        );
    }
}

#[test]
fn allow_list_rejects_unknown_calling_ae_titles() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_cr(&src).expect("cr");
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        "ae_title = \"LIGHTBOX\"\nallowed_aes = [\"CT_ROOM_1\"]\n",
    )
    .expect("config");
    let cache = tmp.path().join("cache");
    let port = common::free_port();
    let scp = start_scp(&cache, &config, port);
    let file = files(&src)[0].display().to_string();
    let send = |aet: &str| {
        dcmtk(
            "storescu",
            &[
                "-aet",
                aet,
                "-aec",
                "LIGHTBOX",
                "127.0.0.1",
                &port.to_string(),
                &file,
            ]
            .map(String::from),
        )
    };
    let o = send("STRANGER");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("Calling AE Title Not Recognized"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    common::check_ok("storescu calling CT_ROOM_1", send("CT_ROOM_1"));
    drop(scp);
    let store = Store::open(&cache).expect("open");
    assert_eq!(store.stats().expect("stats").instances, 1);
}

#[test]
fn scp_and_senders_killed_mid_transfer_leave_a_consistent_cache() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_ct(
        &src,
        &synth::CtSpec {
            slices: 60,
            size: 256,
            ..Default::default()
        },
    )
    .expect("ct");
    let sent = files(&src);
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "ae_title = \"LIGHTBOX\"\n").expect("config");
    let cache = tmp.path().join("cache");
    let storescu = common::require_tool("storescu", "dcmtk");
    let log = tmp.path().join("storescu.log");
    let push = |port: u16| {
        let mut args = vec![
            "-v".to_string(),
            "-xi".to_string(),
            "-aec".to_string(),
            "LIGHTBOX".to_string(),
        ];
        args.extend(["127.0.0.1".to_string(), port.to_string()]);
        args.extend(sent.iter().map(|p| p.display().to_string()));
        let out = std::fs::File::create(&log).expect("log");
        Command::new(&storescu)
            .args(&args)
            .env("TCP_NODELAY", "1")
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("storescu")
    };
    // The files storescu saw acknowledged with Success (from its verbose log).
    let acknowledged = || -> Vec<String> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let mut current = None;
        let mut acked = Vec::new();
        for line in text.lines() {
            if let Some(f) = line.split("Sending file: ").nth(1) {
                current = Some(f.trim().to_string());
            } else if line.contains("Received Store Response (Success)")
                && let Some(f) = current.take()
            {
                acked.push(f);
            }
        }
        acked
    };
    let sop_of = |f: &str| {
        lightbox::dicom::read_header(std::path::Path::new(f))
            .expect("sent file")
            .sop_instance_uid
    };
    let mut acked_ever = std::collections::BTreeSet::new();
    for round in 0..6u64 {
        let port = common::free_port();
        let scp = start_scp(&cache, &config, port);
        let mut sender = push(port);
        std::thread::sleep(Duration::from_millis(20 + round * 25));
        if round % 2 == 0 {
            drop(scp); // the SCP dies (SIGKILL) mid-association
            let _ = sender.wait();
        } else {
            let _ = sender.kill(); // the sender dies mid-object; the SCP must keep serving
            let _ = sender.wait();
            let echo = dcmtk(
                "echoscu",
                &["-aec", "LIGHTBOX", "127.0.0.1", &port.to_string()].map(String::from),
            );
            assert!(
                echo.status.success(),
                "round {round}: SCP stopped serving after a peer died"
            );
            drop(scp); // and then dies too, with acknowledged objects not yet indexed
        }
        acked_ever.extend(acknowledged().iter().map(|f| sop_of(f)));
        // Reopening the cache adopts what the dead SCP acknowledged but had not yet
        // indexed: index and files agree, and nothing acknowledged is missing.
        let store = Store::open(&cache).expect("open");
        let v = store.verify().expect("verify");
        assert!(v.is_clean(), "round {round}: {v:?}");
        let cached: std::collections::BTreeSet<String> = store
            .studies()
            .expect("studies")
            .iter()
            .flat_map(|st| store.series_of(&st.study_uid).expect("series"))
            .flat_map(|se| store.instances_of(&se.series_uid).expect("instances"))
            .map(|i| i.sop_uid)
            .collect();
        let lost: Vec<_> = acked_ever.difference(&cached).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged but not in the cache: {lost:?}"
        );
    }
    assert!(!acked_ever.is_empty(), "no round got any object through");
    // Re-sending completes the study; nothing is lost or duplicated.
    let port = common::free_port();
    let scp = start_scp(&cache, &config, port);
    let mut sender = push(port);
    assert!(sender.wait().expect("wait").success());
    drop(scp);
    let store = Store::open(&cache).expect("open");
    assert!(store.verify().expect("verify").is_clean());
    assert_eq!(store.stats().expect("stats").instances, sent.len());
}

#[test]
fn malformed_pdus_and_hostile_peers_do_not_stop_the_scp() {
    use std::io::Write;
    let tmp = common::tempdir();
    let config = tmp.path().join("config.toml");
    std::fs::write(&config, "ae_title = \"LIGHTBOX\"\n").expect("config");
    let cache = tmp.path().join("cache");
    let port = common::free_port();
    let _scp = start_scp(&cache, &config, port);
    let associate = || {
        dicom_ul::ClientAssociationOptions::new()
            .calling_ae_title("HOSTILE")
            .called_ae_title("LIGHTBOX")
            .with_abstract_syntax("1.2.840.10008.1.1")
            .with_presentation_context("1.2.840.10008.5.1.4.1.1.2", vec!["1.2.840.10008.1.2.1"])
            .establish(("127.0.0.1", port))
            .expect("associate")
    };
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        // Not DICOM at all, before any association.
        ("garbage", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec()),
        // P-DATA whose PDV item claims more bytes than the PDU holds.
        (
            "bad PDV length",
            vec![0x04, 0, 0, 0, 0, 8, 0, 0, 0, 99, 1, 3, 0, 0],
        ),
        // P-DATA announcing 2 GiB: refused before anything is allocated.
        (
            "huge PDU",
            vec![0x04, 0, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 2, 1, 3],
        ),
        // A command set that is not a data set.
        (
            "bad command",
            vec![
                0x04, 0, 0, 0, 0, 10, 0, 0, 0, 6, 1, 3, 0xff, 0xff, 0xff, 0xff,
            ],
        ),
        // An unknown PDU type.
        ("unknown PDU", vec![0x42, 0, 0, 0, 0, 2, 0, 0]),
    ];
    for (what, bytes) in &hostile {
        if *what == "garbage" {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            let _ = s.write_all(bytes);
            drop(s);
        } else {
            let mut a = associate();
            let _ = a.inner_stream().write_all(bytes);
            // The SCP drops this association (reading gives EOF or an abort).
            let _ = a
                .inner_stream()
                .set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 64];
            let _ = std::io::Read::read(a.inner_stream(), &mut buf);
        }
        let echo = dcmtk(
            "echoscu",
            &["-aec", "LIGHTBOX", "127.0.0.1", &port.to_string()].map(String::from),
        );
        assert!(echo.status.success(), "SCP stopped serving after {what}");
    }
    // A peer that opens an object and vanishes leaves nothing behind.
    let store = Store::open(&cache).expect("open");
    assert!(store.verify().expect("verify").is_clean());
    assert_eq!(store.stats().expect("stats").instances, 0);
}
