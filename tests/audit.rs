//! The audit trail, written by the real commands against real peers: `listen`
//! fed by DCMTK's `storescu` (and refusing a wrong AE title), `find` and
//! `retrieve` from DCMTK's `dcmqrscp`, `send` to `storescp`, `anonymize`, `cache rm`;
//! read back with `lightbox audit` (filtered by study and date, as JSON). The
//! patient's identifiers are in the trail and in no ordinary log, even at debug.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, all_output, free_port, require_tool, wait_port};

const PATIENT_ID: &str = "AUDIT-PID-4711";
const PATIENT_NAME: &str = "AUDITED^PATIENT";

fn ct(dir: &Path, n: usize, seed: &str) -> Vec<PathBuf> {
    common::write_ct(
        dir,
        &lightbox::synth::CtSpec {
            slices: n,
            size: 64,
            seed: seed.into(),
            patient_id: PATIENT_ID.into(),
            patient_name: PATIENT_NAME.into(),
            ..Default::default()
        },
    )
}

/// Run lightbox with `config`, debug logging on; its output.
fn run(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(args)
        .env("LIGHTBOX_CONFIG", config)
        .env("LIGHTBOX_LOG", "debug")
        .env_remove("LIGHTBOX_CACHE")
        .output()
        .expect("run lightbox")
}

fn events(config: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["audit", "--json"];
    args.extend(extra);
    let out = run(config, &args);
    assert!(out.status.success(), "audit: {}", all_output(&out));
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout)
        .unwrap_or_else(|e| panic!("audit --json: {e}: {}", all_output(&out)))
}

fn code(e: &serde_json::Value) -> &str {
    e["EventID"]["csd-code"].as_str().unwrap_or("")
}

/// The events with this DCM event code.
fn with_code<'a>(all: &'a [serde_json::Value], c: &str) -> Vec<&'a serde_json::Value> {
    all.iter().filter(|e| code(e) == c).collect()
}

fn mentions(e: &serde_json::Value, text: &str) -> bool {
    e.to_string().contains(text)
}

fn wait_cached(cache: &Path, n: u64) {
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        let c = lightbox::store::Store::open(cache)
            .and_then(|s| s.stats())
            .map(|s| s.instances as u64)
            .unwrap_or(0);
        if c >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{n} instances never arrived in {}", cache.display());
}

#[test]
fn the_trail_records_who_did_what_to_which_study_and_no_log_names_the_patient() {
    let tmp = common::tempdir();
    let files = ct(&tmp.path().join("ct"), 8, "audit-ct");
    let study = lightbox::dicom::read_header(&files[0])
        .expect("header")
        .study_uid;
    let cache = tmp.path().join("cache");
    let scp_port = free_port();
    let pacs = common::pacs::Dcmqrscp::start(tmp.path(), &[], &files);
    let storescp_port = free_port();
    let config = tmp.path().join("lightbox.toml");
    std::fs::write(
        &config,
        format!(
            "ae_title = \"LIGHTBOX\"\ncache_root = {:?}\nscp_port = {scp_port}\n\
             [[nodes]]\nname = \"pacs\"\nae_title = \"DCMQR\"\nhost = \"127.0.0.1\"\nport = {}\n\
             retrieve = \"get\"\n\
             [[nodes]]\nname = \"archive\"\nae_title = \"STORESCP\"\nhost = \"127.0.0.1\"\n\
             port = {storescp_port}\n",
            cache.to_str().expect("utf8"),
            pacs.port
        ),
    )
    .expect("config");
    let mut logs = String::new();

    // 1. find and retrieve (C-GET) from the PACS.
    let out = run(&config, &["find", "pacs", "--patient-id", PATIENT_ID]);
    assert!(out.status.success(), "find: {}", all_output(&out));
    logs += &String::from_utf8_lossy(&out.stderr);
    let out = run(&config, &["retrieve", "pacs", "--study", &study]);
    assert!(out.status.success(), "retrieve: {}", all_output(&out));
    logs += &String::from_utf8_lossy(&out.stderr);

    // 2. send it on to an archive.
    let archive = tmp.path().join("archive");
    std::fs::create_dir_all(&archive).expect("mkdir");
    let _storescp = KillOnDrop(
        Command::new(require_tool("storescp", "dcmtk"))
            .args(["-od", archive.to_str().expect("utf8"), "-aet", "STORESCP"])
            .arg(storescp_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("storescp"),
    );
    wait_port(storescp_port, "storescp");
    let out = run(&config, &["send", "archive", "--study", &study]);
    assert!(out.status.success(), "send: {}", all_output(&out));
    logs += &String::from_utf8_lossy(&out.stderr);

    // 3. listen: a modality pushes another study; a caller with a wrong AE title
    //    is refused.
    let log_path = tmp.path().join("listen.log");
    let listen = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .arg("listen")
            .env("LIGHTBOX_CONFIG", &config)
            .env("LIGHTBOX_LOG", "debug")
            .env_remove("LIGHTBOX_CACHE")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).expect("log"))
            .spawn()
            .expect("listen"),
    );
    wait_port(scp_port, "lightbox listen");
    let pushed = ct(&tmp.path().join("pushed"), 3, "audit-pushed");
    let pushed_study = lightbox::dicom::read_header(&pushed[0])
        .expect("header")
        .study_uid;
    let storescu = require_tool("storescu", "dcmtk");
    let out = Command::new(&storescu)
        .args(["-aet", "CT_SCANNER", "-aec", "LIGHTBOX", "127.0.0.1"])
        .arg(scp_port.to_string())
        .args(&pushed)
        .output()
        .expect("storescu");
    assert!(out.status.success(), "storescu: {}", all_output(&out));
    let out = Command::new(&storescu)
        .args(["-aet", "INTRUDER", "-aec", "NOT_LIGHTBOX", "127.0.0.1"])
        .arg(scp_port.to_string())
        .arg(&pushed[0])
        .output()
        .expect("storescu");
    assert!(!out.status.success(), "a wrong called AE title is refused");
    wait_cached(&cache, (files.len() + pushed.len()) as u64);
    // The transfer is recorded when the association ends (released).
    let t = Instant::now();
    while with_code(&events(&config, &["--study", &pushed_study]), "110104").is_empty()
        && t.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(listen);
    logs += &std::fs::read_to_string(&log_path).expect("listen log");

    // 4. anonymize and remove.
    let out = run(
        &config,
        &[
            "anonymize",
            tmp.path().join("ct").to_str().expect("utf8"),
            "--out",
            tmp.path().join("anon").to_str().expect("utf8"),
        ],
    );
    assert!(out.status.success(), "anonymize: {}", all_output(&out));
    logs += &String::from_utf8_lossy(&out.stderr);
    let out = run(&config, &["cache", "rm", &study]);
    assert!(out.status.success(), "cache rm: {}", all_output(&out));
    logs += &String::from_utf8_lossy(&out.stderr);

    // The trail, as `lightbox audit --json` gives it.
    let all = events(&config, &[]);
    let query = with_code(&all, "110112");
    assert_eq!(query.len(), 1, "one query: {all:#?}");
    assert!(
        mentions(query[0], &format!("PatientID={PATIENT_ID}")),
        "{}",
        query[0]
    );
    assert!(mentions(query[0], "DCMQR") && mentions(query[0], "127.0.0.1"));
    let transfers = with_code(&all, "110104");
    // Retrieved (created here), sent (read here), received by listen.
    let retrieved: Vec<_> = transfers
        .iter()
        .filter(|e| e["EventActionCode"] == "C" && mentions(e, "DCMQR"))
        .collect();
    assert_eq!(retrieved.len(), 1, "{transfers:#?}");
    assert!(mentions(retrieved[0], &study) && mentions(retrieved[0], PATIENT_NAME));
    assert_eq!(retrieved[0]["EventOutcomeIndicator"], 0);
    let sent: Vec<_> = transfers
        .iter()
        .filter(|e| e["EventActionCode"] == "R" && mentions(e, "STORESCP"))
        .collect();
    assert_eq!(sent.len(), 1, "{transfers:#?}");
    assert!(mentions(
        sent[0],
        &format!("\"NumberOfInstances\":{}", files.len())
    ));
    let received: Vec<_> = transfers
        .iter()
        .filter(|e| mentions(e, "CT_SCANNER"))
        .collect();
    assert_eq!(received.len(), 1, "{transfers:#?}");
    let requestor = received[0]["ActiveParticipant"]
        .as_array()
        .expect("participants")
        .iter()
        .find(|p| p["UserIsRequestor"] == true)
        .expect("a requestor");
    assert_eq!(requestor["UserID"], "CT_SCANNER");
    assert_eq!(requestor["NetworkAccessPointID"], "127.0.0.1");
    assert!(mentions(received[0], &pushed_study));
    let alerts = with_code(&all, "110113");
    assert!(
        alerts
            .iter()
            .any(|e| mentions(e, "Node Authentication") && mentions(e, "refused")),
        "the refused association is a security alert: {alerts:#?}"
    );
    assert_eq!(with_code(&all, "110100").len(), 1, "listen's start");
    let export = with_code(&all, "110106");
    assert!(
        export.len() == 1 && mentions(export[0], "Basic Application Confidentiality Profile"),
        "{export:#?}"
    );
    let deleted = with_code(&all, "110105");
    assert!(
        deleted.len() == 1 && mentions(deleted[0], &study),
        "{deleted:#?}"
    );
    // Reading the trail is recorded too (the reads above).
    assert!(!with_code(&all, "110101").is_empty());

    // Filters: by study; by date.
    let of_study = events(&config, &["--study", &pushed_study]);
    assert!(!of_study.is_empty() && of_study.iter().all(|e| mentions(e, &pushed_study)));
    assert!(events(&config, &["--since", "2999-01-01"]).is_empty());
    let out = run(&config, &["audit", "--since", "yesterday"]);
    assert!(!out.status.success(), "a date that is not one is refused");
    let table = run(&config, &["audit", "--study", &study]);
    let text = String::from_utf8_lossy(&table.stdout);
    eprintln!("{text}");
    assert!(
        text.contains("DICOM Instances Transferred") && text.contains("DICOM Study Deleted"),
        "{text}"
    );

    // The patient is in the trail, and in no ordinary log, even at debug level.
    assert!(!logs.is_empty(), "debug logging produced output");
    for id in [PATIENT_ID, PATIENT_NAME] {
        assert!(!logs.contains(id), "{id} in an ordinary log:\n{logs}");
    }
}
