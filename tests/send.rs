//! `lightbox send` (C-STORE SCU) against real storage SCPs started on loopback:
//! DCMTK's `storescp` (writing bit-preserving) and Orthanc. Objects arrive byte
//! for byte as stored; a node that accepts only uncompressed syntaxes gets a
//! decompressed copy, and the report says so; a SOP class the node refuses, a
//! node killed mid-batch and a wrong AE title give clear errors and a correct
//! report; sending again resends nothing the node acknowledged.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{KillOnDrop, all_output, free_port, lightbox, require_tool, wait_port};

/// SOP Instance UID → data set bytes, for every file under `dir`.
fn datasets_by_uid(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for f in lightbox::scan::list_files(dir).expect("list") {
        let obj = dicom_object::open_file(&f).expect("received file reads");
        let uid = obj
            .element(dicom_dictionary_std::tags::SOP_INSTANCE_UID)
            .expect("uid")
            .to_str()
            .expect("uid")
            .trim_end_matches('\0')
            .to_string();
        let bytes = std::fs::read(&f).expect("read");
        out.insert(uid, common::dataset(&bytes).to_vec());
    }
    out
}

/// DCMTK's storescp writing what it receives, bit-preserving, into `out`.
fn storescp(port: u16, out: &Path, extra: &[&str]) -> KillOnDrop {
    let exe = require_tool("storescp", "dcmtk");
    std::fs::create_dir_all(out).expect("mkdir");
    let child = Command::new(exe)
        .args(extra)
        .args(["+B", "-od"])
        .arg(out)
        .args(["-aet", "STORESCP", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start storescp");
    wait_port(port, "storescp");
    KillOnDrop(child)
}

fn config(dir: &Path, cache: &Path) -> PathBuf {
    let p = dir.join("lightbox.toml");
    std::fs::write(
        &p,
        format!(
            "ae_title = \"LIGHTBOX\"\ncache_root = {:?}\n",
            cache.to_str().expect("utf8")
        ),
    )
    .expect("config");
    p
}

fn send_to(cfg: &Path, port: u16, ae: &str, extra: &[&str]) -> std::process::Output {
    let port = port.to_string();
    let mut args = vec![
        "send",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--called-aet",
        ae,
    ];
    args.extend_from_slice(extra);
    lightbox(cfg, &args)
}

#[test]
fn a_folder_arrives_at_storescp_byte_for_byte_and_is_not_sent_twice() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    common::ct_mr_study(&src, 24, 6, 64);
    // Not DICOM, and a DICOMDIR-less folder: the text file is skipped with a reason.
    std::fs::write(src.join("README.txt"), "not an image").expect("write");
    let cfg = config(tmp.path(), &tmp.path().join("cache"));
    let port = free_port();
    let out = tmp.path().join("received");
    let scp = storescp(port, &out, &[]);
    let src_arg = src.to_str().expect("utf8");
    let o = send_to(&cfg, port, "STORESCP", &[src_arg]);
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("complete 30 of 30 object(s) acknowledged by STORESCP@127.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("skipped:") && text.contains("README.txt"),
        "{text}"
    );
    let sent = datasets_by_uid(&src.join("ct"))
        .into_iter()
        .chain(datasets_by_uid(&src.join("mr")))
        .collect::<BTreeMap<_, _>>();
    let got = datasets_by_uid(&out);
    assert_eq!(got.len(), 30, "every object arrived");
    for (uid, bytes) in &sent {
        assert!(
            got.get(uid) == Some(bytes),
            "{uid} arrived changed or not at all"
        );
    }
    // Again: the node acknowledged everything, nothing goes on the wire.
    for f in std::fs::read_dir(&out).expect("ls") {
        std::fs::remove_file(f.expect("entry").path()).expect("rm");
    }
    let o = send_to(&cfg, port, "STORESCP", &[src_arg]);
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(
        text.contains("30 of 30 object(s) acknowledged") && text.contains(": 0 sent"),
        "{text}"
    );
    assert!(text.contains("30 already acknowledged before"), "{text}");
    assert_eq!(std::fs::read_dir(&out).expect("ls").count(), 0);
    // --force sends again.
    let o = send_to(&cfg, port, "STORESCP", &["--force", src_arg]);
    assert_eq!(o.status.code(), Some(0), "{}", all_output(&o));
    assert_eq!(datasets_by_uid(&out).len(), 30);
    drop(scp);
}

/// One MR slice compressed to JPEG-LS by DCMTK, and DCMTK's own decompression of
/// it (the reference for the pixels a node that refuses JPEG-LS must get).
fn jpeg_ls_slice(dir: &Path) -> (PathBuf, PathBuf) {
    let mr = dir.join("mr");
    lightbox::synth::write_mr(
        &mr,
        &lightbox::synth::MrSpec {
            slices: 1,
            size: 64,
            ..Default::default()
        },
    )
    .expect("mr");
    let native = lightbox::scan::list_files(&mr).expect("list")[0].clone();
    let jls = dir.join("jls.dcm");
    common::run_ok(
        Command::new(require_tool("dcmcjpls", "dcmtk"))
            .arg(&native)
            .arg(&jls),
    );
    (jls, native)
}

fn pixel_data(path: &Path) -> Vec<u8> {
    let obj = dicom_object::open_file(path).expect("open");
    obj.element(dicom_dictionary_std::tags::PIXEL_DATA)
        .expect("pixel data")
        .to_bytes()
        .expect("native pixel data")
        .to_vec()
}

#[test]
fn a_node_without_jpeg_ls_gets_it_decompressed_and_a_refused_class_fails_alone() {
    let tmp = common::tempdir();
    let (jls, native) = jpeg_ls_slice(tmp.path());
    // A private SOP class storescp does not know.
    let private = tmp.path().join("private.dcm");
    {
        use dicom_core::{DataElement, PrimitiveValue, VR};
        let mut obj = dicom_object::open_file(&native).expect("open");
        let class = "1.2.826.0.1.3680043.10.1234.1";
        obj.put(DataElement::new(
            dicom_dictionary_std::tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(class),
        ));
        obj.put(DataElement::new(
            dicom_dictionary_std::tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from("1.2.826.0.1.3680043.10.1234.2"),
        ));
        obj.update_meta(|m| {
            m.media_storage_sop_class_uid = class.into();
            m.media_storage_sop_instance_uid = "1.2.826.0.1.3680043.10.1234.2".into();
        });
        obj.write_to_file(&private).expect("write");
    }
    let cfg = config(tmp.path(), &tmp.path().join("cache"));
    let port = free_port();
    let out = tmp.path().join("received");
    // storescp by default accepts only the uncompressed transfer syntaxes.
    let _scp = storescp(port, &out, &[]);
    let o = send_to(
        &cfg,
        port,
        "STORESCP",
        &[
            jls.to_str().expect("utf8"),
            private.to_str().expect("utf8"),
            "--json",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", all_output(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json report");
    assert_eq!(r["objects"], 2);
    assert_eq!(r["sent"], 1);
    assert_eq!(r["complete"], false);
    let failed = r["failed"].as_array().expect("failed");
    assert_eq!(failed.len(), 1, "{r}");
    assert_eq!(failed[0]["sop_uid"], "1.2.826.0.1.3680043.10.1234.2");
    assert!(
        failed[0]["reason"].as_str().expect("reason").contains(
            "does not accept 1.2.826.0.1.3680043.10.1234.1 (presentation context refused)"
        ),
        "{r}"
    );
    let t = r["transcoded"].as_array().expect("transcoded");
    assert_eq!(t.len(), 1, "{r}");
    let why = t[0]["reason"].as_str().expect("reason");
    assert!(
        why.contains("(decompressed)") && why.contains("JPEG-LS Lossless"),
        "{why}"
    );
    // What arrived: uncompressed, with exactly the pixels DCMTK decodes.
    let got: Vec<PathBuf> = lightbox::scan::list_files(&out).expect("list");
    assert_eq!(got.len(), 1);
    let obj = dicom_object::open_file(&got[0]).expect("received");
    let ts = obj
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string();
    assert!(
        ts == "1.2.840.10008.1.2.1" || ts == "1.2.840.10008.1.2",
        "arrived as {ts}"
    );
    let reference = tmp.path().join("dcmtk-decoded.dcm");
    common::run_ok(
        Command::new(require_tool("dcmdjpls", "dcmtk"))
            .arg(&jls)
            .arg(&reference),
    );
    assert_eq!(pixel_data(&got[0]), pixel_data(&reference));
    // The text report names both.
    let o = send_to(
        &cfg,
        port,
        "STORESCP",
        &[private.to_str().expect("utf8"), jls.to_str().expect("utf8")],
    );
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(
        text.contains("failed: 1.2.826.0.1.3680043.10.1234.2"),
        "{text}"
    );
    assert!(text.contains("1 already acknowledged before"), "{text}");
}

#[test]
fn a_node_killed_mid_batch_is_reported_and_the_rest_sent_on_the_next_run() {
    let tmp = common::tempdir();
    let src = tmp.path().join("ct");
    lightbox::synth::write_ct(
        &src,
        &lightbox::synth::CtSpec {
            slices: 12,
            size: 32,
            ..Default::default()
        },
    )
    .expect("ct");
    let cfg = config(tmp.path(), &tmp.path().join("cache"));
    let port = free_port();
    let out = tmp.path().join("received");
    // Slow: one second after each object, so the kill lands mid-batch.
    let mut scp = storescp(port, &out, &["--sleep-after", "1"]);
    let child = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args([
            "send",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--called-aet",
            "STORESCP",
            "--parallel",
            "1",
            src.to_str().expect("utf8"),
        ])
        .env("LIGHTBOX_CONFIG", &cfg)
        .env_remove("LIGHTBOX_CACHE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start send");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_dir(&out).map(|d| d.count()).unwrap_or(0) < 3 {
        assert!(Instant::now() < deadline, "storescp received nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
    scp.0.kill().expect("kill storescp");
    let _ = scp.0.wait();
    let o = child.wait_with_output().expect("send ends");
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(2), "{text}");
    assert!(text.starts_with("INCOMPLETE"), "{text}");
    assert!(text.contains("problem: association ended"), "{text}");
    assert!(text.contains("run the same command again"), "{text}");
    let first = datasets_by_uid(&out).len();
    assert!(
        (3..12).contains(&first),
        "the kill landed mid-batch: {first}"
    );
    // The node back (fast now): only what it did not acknowledge is sent.
    let _scp = storescp(port, &out, &[]);
    let o = send_to(&cfg, port, "STORESCP", &[src.to_str().expect("utf8")]);
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("complete 12 of 12"), "{text}");
    let again: usize = text
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("sent count");
    assert!(
        again <= 12 - first + 1,
        "resent what was acknowledged: {again} sent, {first} had arrived\n{text}"
    );
    let sent = datasets_by_uid(&src);
    let got = datasets_by_uid(&out);
    assert_eq!(got, sent, "every object arrived, as stored");
}

#[test]
fn a_study_from_the_cache_arrives_in_orthanc_and_a_wrong_ae_title_is_refused() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    common::ct_mr_study(&src, 16, 4, 32);
    let cache = tmp.path().join("cache");
    let cfg = config(tmp.path(), &cache);
    let o = lightbox(
        &cfg,
        &[
            "import",
            "--cache",
            cache.to_str().expect("utf8"),
            src.join("ct").to_str().expect("utf8"),
        ],
    );
    assert!(o.status.success(), "{}", all_output(&o));
    let store = lightbox::store::Store::open(&cache).expect("cache");
    let studies = store.studies().expect("studies");
    assert_eq!(studies.len(), 1);
    let study = studies[0].study_uid.clone();
    drop(store);
    let orthanc = common::pacs::Orthanc::start(tmp.path(), &[]);
    // Orthanc checks the called AE title.
    let o = send_to(&cfg, orthanc.dicom, "WRONG", &["--study", &study]);
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("rejected") && text.contains("\"WRONG\""),
        "names the refusal and the AE title: {text}"
    );
    assert_eq!(
        orthanc.get_json("/instances").as_array().map(Vec::len),
        Some(0)
    );
    let o = send_to(&cfg, orthanc.dicom, "ORTHANC", &["--study", &study]);
    let text = all_output(&o);
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(text.contains("complete 16 of 16"), "{text}");
    let ids = orthanc.get_json("/instances");
    let ids = ids.as_array().expect("ids");
    assert_eq!(ids.len(), 16);
    let sent = datasets_by_uid(&src.join("ct"));
    for id in ids {
        let id = id.as_str().expect("id");
        let file = orthanc.get(&format!("/instances/{id}/file"));
        let uid = orthanc.get_json(&format!("/instances/{id}/simplified-tags"))["SOPInstanceUID"]
            .as_str()
            .expect("uid")
            .to_string();
        assert!(
            sent.get(&uid).map(Vec::as_slice) == Some(common::dataset(&file)),
            "{uid} arrived in Orthanc changed"
        );
    }
    // A series that is not in the study is a usage error, before any network.
    let o = send_to(
        &cfg,
        orthanc.dicom,
        "ORTHANC",
        &["--study", &study, "--series", "1.2.3.4"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", all_output(&o));
    assert!(all_output(&o).contains("series 1.2.3.4 is not in the cached study"));
}
