//! Orthanc, a real PACS started by the test on loopback, pushes a study to
//! `lightbox listen` through its REST API (`/modalities/{id}/store`); every instance
//! arrives in the cache.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use lightbox::store::Store;
use lightbox::synth;

fn curl(args: &[&str]) -> String {
    let exe = common::require_tool("curl", "curl");
    let out = common::run_ok(Command::new(exe).arg("-sS").arg("--fail").args(args));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn orthanc_pushes_a_study_into_the_cache() {
    let orthanc = common::require_tool("Orthanc", "orthanc");
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_ct(
        &src,
        &synth::CtSpec {
            slices: 10,
            size: 64,
            ..Default::default()
        },
    )
    .expect("ct");
    let (http, dicom, scp_port) = (
        common::free_port(),
        common::free_port(),
        common::free_port(),
    );
    let db = tmp.path().join("orthanc-db");
    std::fs::create_dir_all(&db).expect("mkdir");
    let config = serde_json::json!({
        "Name": "lightbox-test", "StorageDirectory": db, "IndexDirectory": db,
        "HttpPort": http, "DicomPort": dicom, "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": false, "AuthenticationEnabled": false,
        "DicomModalities": { "lightbox": ["LIGHTBOX", "127.0.0.1", scp_port] },
        "Plugins": []
    });
    let cfg_path = tmp.path().join("orthanc.json");
    std::fs::write(&cfg_path, config.to_string()).expect("config");
    let _orthanc = common::KillOnDrop(
        Command::new(orthanc)
            .arg(&cfg_path)
            .env("TCP_NODELAY", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Orthanc"),
    );
    let lb_cfg = tmp.path().join("lightbox.toml");
    std::fs::write(&lb_cfg, "ae_title = \"LIGHTBOX\"\n").expect("config");
    let cache = tmp.path().join("cache");
    let _scp = common::KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args([
                "listen",
                "--port",
                &scp_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--cache",
                cache.to_str().expect("utf8"),
            ])
            .env("LIGHTBOX_CONFIG", &lb_cfg)
            .stdout(Stdio::null())
            .spawn()
            .expect("start lightbox listen"),
    );
    common::wait_port(http, "Orthanc");
    common::wait_port(scp_port, "lightbox listen");
    let base = format!("http://127.0.0.1:{http}");
    let mut sent = std::collections::BTreeSet::new();
    for f in lightbox::scan::list_files(&src).expect("list") {
        curl(&[
            "-X",
            "POST",
            &format!("{base}/instances"),
            "--data-binary",
            &format!("@{}", f.display()),
        ]);
        sent.insert(
            lightbox::dicom::read_header(&f)
                .expect("header")
                .sop_instance_uid,
        );
    }
    let studies: Vec<String> =
        serde_json::from_str(&curl(&[&format!("{base}/studies")])).expect("json");
    assert_eq!(studies.len(), 1);
    let job: serde_json::Value = serde_json::from_str(&curl(&[
        "-X",
        "POST",
        &format!("{base}/modalities/lightbox/store"),
        "-d",
        &studies[0],
    ]))
    .expect("json");
    assert_eq!(job["FailedInstancesCount"], 0, "{job}");
    assert_eq!(job["InstancesCount"], 10, "{job}");

    let store = Store::open(&cache).expect("open cache");
    assert!(store.verify().expect("verify").is_clean());
    let stored: std::collections::BTreeSet<String> =
        lightbox::scan::list_files(&cache.join("objects"))
            .expect("list")
            .iter()
            .map(|p| {
                lightbox::dicom::read_header(Path::new(p))
                    .expect("header")
                    .sop_instance_uid
            })
            .collect();
    assert_eq!(stored, sent, "every instance Orthanc holds arrived, once");
}
