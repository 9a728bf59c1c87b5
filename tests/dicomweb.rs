//! DICOMweb nodes against a real Orthanc with its DICOMweb plugin (Debian's
//! `orthanc-dicomweb`), started on loopback: QIDO-RS answers equal the C-FIND
//! answers of the same Orthanc for the same keys; a WADO-RS retrieve of a CT, a
//! JPEG 2000 prior and a JPEG-LS MR leaves byte-identical data sets (as stored: nothing
//! transcoded) in the cache; a second run fetches nothing; a study partly cached
//! fetches only what is missing, instance by instance; STOW-RS of Lightbox's own
//! objects (a de-identified copy it wrote) arrives in Orthanc byte for byte, and
//! a second send sends nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{all_output, lightbox};

const PLUGIN: &str = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = lightbox::scan::list_files(dir).expect("list");
    v.sort();
    v
}

/// SOP Instance UID → data set bytes.
fn datasets(paths: &[PathBuf]) -> BTreeMap<String, Vec<u8>> {
    paths
        .iter()
        .map(|f| {
            let h = lightbox::dicom::read_header(f).expect("header");
            let bytes = std::fs::read(f).expect("read");
            (h.sop_instance_uid, common::dataset(&bytes).to_vec())
        })
        .collect()
}

fn cached_files(cache: &Path) -> Vec<PathBuf> {
    files(&cache.join("objects"))
}

/// Orthanc with DICOMweb on; its HTTP and DICOM ports.
fn orthanc(dir: &Path) -> common::pacs::Orthanc {
    assert!(
        Path::new(PLUGIN).exists(),
        "{PLUGIN} is missing: install Debian's orthanc-dicomweb (as .ci/run does)"
    );
    common::pacs::Orthanc::start_with(
        dir,
        serde_json::Map::new(),
        serde_json::json!({
            "Plugins": [PLUGIN],
            "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "EnableWado": false,
                         "StudiesMetadata": "Full", "SeriesMetadata": "Full"}
        }),
    )
}

fn json(out: &std::process::Output, what: &str) -> serde_json::Value {
    assert!(out.status.success(), "{what}: {}", all_output(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", all_output(out)))
}

/// (tag, value) pairs of the answers, for comparing two protocols' answers.
fn answers(v: &serde_json::Value, keys: &[&str]) -> Vec<Vec<(String, String)>> {
    let mut out: Vec<Vec<(String, String)>> = v
        .as_array()
        .expect("an array of answers")
        .iter()
        .map(|m| {
            keys.iter()
                .map(|k| {
                    let value = m[*k]["Value"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .map(|x| match x {
                                    serde_json::Value::Object(o) => o
                                        .get("Alphabetic")
                                        .map(|s| s.to_string())
                                        .unwrap_or_default(),
                                    other => other.to_string(),
                                })
                                .collect::<Vec<_>>()
                                .join("\\")
                        })
                        .unwrap_or_default();
                    (k.to_string(), value)
                })
                .collect()
        })
        .collect();
    out.sort();
    out
}

#[test]
fn qido_answers_what_c_find_answers_and_wado_retrieves_objects_as_stored() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    lightbox::synth::write_ct(
        &dir.join("ct"),
        &lightbox::synth::CtSpec {
            slices: 60,
            size: 128,
            seed: "dicomweb-ct".into(),
            ..Default::default()
        },
    )
    .expect("ct");
    lightbox::synth::write_mr(
        &dir.join("mr-plain"),
        &lightbox::synth::MrSpec {
            slices: 8,
            size: 64,
            ..Default::default()
        },
    )
    .expect("mr");
    // The MR as JPEG-LS (DCMTK's encoder): WADO-RS must bring it back as that.
    let jls = common::require_tool("dcmcjpls", "dcmtk");
    std::fs::create_dir_all(dir.join("mr")).expect("mkdir");
    for (i, f) in files(&dir.join("mr-plain")).iter().enumerate() {
        common::run_ok(
            Command::new(&jls)
                .arg(f)
                .arg(dir.join("mr").join(format!("{i:03}.dcm"))),
        );
    }
    // A JPEG 2000 prior (GDCM's encoder), explicit VR to start from.
    lightbox::synth::write_ct(
        &dir.join("prior-plain"),
        &lightbox::synth::CtSpec {
            slices: 6,
            size: 64,
            seed: "dicomweb-prior".into(),
            study_date: "20240312".into(),
            study_description: "CT CHEST (prior)".into(),
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            ..Default::default()
        },
    )
    .expect("prior");
    let gdcm = common::require_tool("gdcmconv", "libgdcm-tools");
    std::fs::create_dir_all(dir.join("prior")).expect("mkdir");
    for (i, f) in files(&dir.join("prior-plain")).iter().enumerate() {
        common::run_ok(
            Command::new(&gdcm)
                .arg("--j2k")
                .arg(f)
                .arg(dir.join("prior").join(format!("{i:03}.dcm"))),
        );
    }
    let ct = files(&dir.join("ct"));
    let mr = files(&dir.join("mr"));
    let prior = files(&dir.join("prior"));
    let pacs = orthanc(dir);
    pacs.upload(&ct);
    pacs.upload(&mr);
    pacs.upload(&prior);
    let cache = dir.join("cache");
    let config = dir.join("lightbox.toml");
    std::fs::write(
        &config,
        format!(
            "ae_title = \"LIGHTBOX\"\ncache_root = {:?}\n\
             [[nodes]]\nname = \"web\"\nprotocol = \"dicomweb\"\n\
             url = \"http://127.0.0.1:{}/dicom-web/\"\nparallel = 2\n\
             [[nodes]]\nname = \"dimse\"\nae_title = \"ORTHANC\"\nhost = \"127.0.0.1\"\nport = {}\n",
            cache.to_str().expect("utf8"),
            pacs.http,
            pacs.dicom
        ),
    )
    .expect("config");

    let echo = lightbox(&config, &["echo", "web"]);
    assert!(echo.status.success(), "echo: {}", all_output(&echo));

    // QIDO-RS = C-FIND, study and series level, same keys.
    let keys = [
        "0020000D", "00100010", "00100020", "00080020", "00080050", "00081030",
    ];
    for (what, args, expected) in [
        ("all studies", vec!["--json"], 3),
        (
            "by name",
            vec!["--patient-name", "PHANTOM^CH*", "--json"],
            2,
        ),
        ("by date", vec!["--date", "20260106", "--json"], 1),
        ("by range", vec!["--date", "20260101-20260105", "--json"], 1),
    ] {
        let web = json(
            &lightbox(&config, &[&["find", "web"][..], &args].concat()),
            what,
        );
        let dimse = json(
            &lightbox(&config, &[&["find", "dimse"][..], &args].concat()),
            what,
        );
        let n = web.as_array().expect("array").len();
        let m = dimse.as_array().expect("array").len();
        assert!(
            n == expected,
            "{what}: {n} answers by QIDO, {m} by C-FIND, {expected} expected"
        );
        assert_eq!(
            answers(&web, &keys),
            answers(&dimse, &keys),
            "{what}: QIDO = C-FIND"
        );
    }
    // A second client, dicomweb-client (PyPI), sees the same studies.
    let cross = Command::new(common::python())
        .args([
            "-c",
            "import json, sys\n\
             from dicomweb_client.api import DICOMwebClient\n\
             c = DICOMwebClient(url=sys.argv[1])\n\
             for f in ({}, {'PatientID': 'LBX0001'}, {'StudyDate': '20260106'}):\n\
             \x20   s = c.search_for_studies(search_filters=f)\n\
             \x20   print(json.dumps(sorted(x['0020000D']['Value'][0] for x in s)))\n",
        ])
        .arg(format!("http://127.0.0.1:{}/dicom-web", pacs.http))
        .output()
        .expect("python");
    assert!(
        cross.status.success(),
        "dicomweb-client: {}",
        all_output(&cross)
    );
    let theirs: Vec<Vec<String>> = String::from_utf8_lossy(&cross.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("uids"))
        .collect();
    for (i, args) in [
        vec!["--json"],
        vec!["--patient-id", "LBX0001", "--json"],
        vec!["--date", "20260106", "--json"],
    ]
    .iter()
    .enumerate()
    {
        let ours = json(
            &lightbox(&config, &[&["find", "web"][..], args].concat()),
            "find",
        );
        let mut uids: Vec<String> = ours
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|m| m["0020000D"]["Value"][0].as_str().map(String::from))
            .collect();
        uids.sort();
        assert_eq!(
            uids, theirs[i],
            "{args:?}: the same studies as dicomweb-client finds"
        );
    }
    let ct_study = lightbox::dicom::read_header(&ct[0])
        .expect("header")
        .study_uid;
    let mr_study = lightbox::dicom::read_header(&mr[0])
        .expect("header")
        .study_uid;
    let series_keys = ["0020000E", "00080060", "00200011"];
    let web = json(
        &lightbox(
            &config,
            &[
                "find", "web", "--level", "series", "--study", &ct_study, "--json",
            ],
        ),
        "series",
    );
    let dimse = json(
        &lightbox(
            &config,
            &[
                "find", "dimse", "--level", "series", "--study", &ct_study, "--json",
            ],
        ),
        "series",
    );
    assert_eq!(answers(&web, &series_keys), answers(&dimse, &series_keys));

    // WADO-RS: the three studies, byte for byte.
    let prior_study = lightbox::dicom::read_header(&prior[0])
        .expect("header")
        .study_uid;
    for study in [&ct_study, &mr_study, &prior_study] {
        let r = json(
            &lightbox(&config, &["retrieve", "web", "--study", study, "--json"]),
            "retrieve",
        );
        assert_eq!(r["complete"], true, "{r}");
        assert_eq!(r["method"], "WADO-RS");
    }
    let originals: BTreeMap<String, Vec<u8>> =
        datasets(&[ct.clone(), mr.clone(), prior.clone()].concat());
    let got = datasets(&cached_files(&cache));
    assert_eq!(got.len(), originals.len(), "every instance cached");
    assert!(
        got == originals,
        "data sets byte-identical to the uploaded files"
    );
    let jls_cached = cached_files(&cache)
        .into_iter()
        .filter_map(|f| lightbox::dicom::read_header(&f).ok())
        .filter(|h| h.study_uid == mr_study)
        .all(|h| h.transfer_syntax == "1.2.840.10008.1.2.4.80");
    assert!(jls_cached, "the MR stays JPEG-LS (nothing transcoded)");
    let prior_ts = lightbox::dicom::read_header(&prior[0])
        .expect("header")
        .transfer_syntax;
    assert!(prior_ts.starts_with("1.2.840.10008.1.2.4.9"), "{prior_ts}");
    let j2k_cached = cached_files(&cache)
        .into_iter()
        .filter_map(|f| lightbox::dicom::read_header(&f).ok())
        .filter(|h| h.study_uid == prior_study)
        .all(|h| h.transfer_syntax == prior_ts);
    assert!(j2k_cached, "the prior stays JPEG 2000");

    // Again: nothing to fetch.
    let again = json(
        &lightbox(
            &config,
            &["retrieve", "web", "--study", &ct_study, "--json"],
        ),
        "again",
    );
    assert_eq!(again["received"], 0, "{again}");
    assert_eq!(again["already_cached"], ct.len());

    // Partly cached: remove the study, import a third of it, retrieve the rest.
    common::check_ok("rm", lightbox(&config, &["cache", "rm", &ct_study]));
    let third: Vec<&str> = ct
        .iter()
        .step_by(3)
        .map(|p| p.to_str().expect("utf8"))
        .collect();
    common::check_ok(
        "import",
        lightbox(&config, &[&["import"][..], &third].concat()),
    );
    let rest = json(
        &lightbox(
            &config,
            &["retrieve", "web", "--study", &ct_study, "--json"],
        ),
        "rest",
    );
    assert_eq!(rest["received"], ct.len() - third.len(), "{rest}");
    assert_eq!(rest["complete"], true, "{rest}");
    let got = datasets(&cached_files(&cache));
    assert!(
        datasets(&ct).iter().all(|(k, v)| got.get(k) == Some(v)),
        "the CT whole again"
    );

    // STOW-RS: Lightbox's own objects (a de-identified copy of the MR it writes).
    let anon = dir.join("anon");
    common::check_ok(
        "anonymize",
        lightbox(
            &config,
            &[
                "anonymize",
                dir.join("mr").to_str().expect("utf8"),
                "--out",
                anon.to_str().expect("utf8"),
            ],
        ),
    );
    let ours = files(&anon);
    let before = pacs
        .get_json("/instances")
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    let sent = json(
        &lightbox(
            &config,
            &["send", "web", anon.to_str().expect("utf8"), "--json"],
        ),
        "stow",
    );
    assert_eq!(sent["sent"], ours.len(), "{sent}");
    assert_eq!(sent["complete"], true, "{sent}");
    let after = pacs
        .get_json("/instances")
        .as_array()
        .map(|a| a.len())
        .unwrap_or(0);
    assert_eq!(after, before + ours.len(), "every object stored by Orthanc");
    for f in &ours {
        let h = lightbox::dicom::read_header(f).expect("header");
        let found = pacs.post_json("/tools/lookup", &h.sop_instance_uid);
        let id = found[0]["ID"].as_str().expect("found in Orthanc");
        let stored = pacs.get(&format!("/instances/{id}/file"));
        assert!(
            common::dataset(&stored) == common::dataset(&std::fs::read(f).expect("read")),
            "{}: arrives byte for byte",
            f.display()
        );
    }
    let again = json(
        &lightbox(
            &config,
            &["send", "web", anon.to_str().expect("utf8"), "--json"],
        ),
        "stow again",
    );
    assert_eq!(
        again["already_sent"],
        ours.len(),
        "nothing sent twice: {again}"
    );
    assert_eq!(again["sent"], 0);
}

/// A TCP proxy in front of `upstream` that, once, cuts the answer to the first
/// WADO-RS series request after `cut` bytes (0: never) and closes the
/// connection — a server that drops mid-multipart; with `tls` (certificate and
/// key files) it terminates TLS with Python's `ssl` (OpenSSL). Its port.
fn proxy(
    dir: &Path,
    upstream: u16,
    cut: usize,
    tls: Option<(&Path, &Path)>,
) -> (common::KillOnDrop, u16) {
    let port = common::free_port();
    let script = dir.join("proxy.py");
    std::fs::write(
        &script,
        r#"
import socket, ssl, sys, threading
port, up, cut = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
ctx = None
if len(sys.argv) > 5:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
done = threading.Event()
if cut == 0:
    done.set()
def serve(c):
    if ctx is not None:
        try:
            c = ctx.wrap_socket(c, server_side=True)
        except (ssl.SSLError, OSError):
            c.close()
            return
    s = socket.create_connection(("127.0.0.1", up))
    wado = threading.Event()
    def up_copy():
        try:
            while True:
                b = c.recv(65536)
                if not b:
                    break
                if b"GET " in b and b"/series/" in b and b"instances" not in b and not done.is_set():
                    done.set(); wado.set()
                s.sendall(b)
        except OSError:
            pass
    threading.Thread(target=up_copy, daemon=True).start()
    sent = 0
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            if wado.is_set():
                if sent + len(b) >= cut:
                    c.sendall(b[:cut - sent]); break
                sent += len(b)
            c.sendall(b)
    except OSError:
        pass
    for x in (c, s):
        try:
            x.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        x.close()
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen(64)
while True:
    c, _ = l.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#,
    )
    .expect("proxy script");
    let mut cmd = Command::new(common::python());
    cmd.arg(&script)
        .args([port.to_string(), upstream.to_string(), cut.to_string()]);
    if let Some((cert, key)) = tls {
        cmd.args([cert, key]);
    }
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("proxy");
    common::wait_port(port, "the cutting proxy");
    (common::KillOnDrop(child), port)
}

#[test]
fn an_answer_cut_mid_multipart_leaves_the_study_incomplete_until_run_again() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    lightbox::synth::write_ct(
        &dir.join("ct"),
        &lightbox::synth::CtSpec {
            slices: 60,
            size: 128,
            seed: "dicomweb-cut".into(),
            ..Default::default()
        },
    )
    .expect("ct");
    let ct = files(&dir.join("ct"));
    let study = lightbox::dicom::read_header(&ct[0])
        .expect("header")
        .study_uid;
    let pacs = orthanc(dir);
    pacs.upload(&ct);
    let (_proxy, port) = proxy(dir, pacs.http, 600_000, None);
    let cache = dir.join("cache");
    let config = dir.join("lightbox.toml");
    std::fs::write(
        &config,
        format!(
            "ae_title = \"LIGHTBOX\"\ncache_root = {:?}\n[[nodes]]\nname = \"web\"\n\
             protocol = \"dicomweb\"\nurl = \"http://127.0.0.1:{port}/dicom-web\"\n",
            cache.to_str().expect("utf8")
        ),
    )
    .expect("config");
    let first = lightbox(&config, &["retrieve", "web", "--study", &study, "--json"]);
    assert_eq!(
        first.status.code(),
        Some(2),
        "partly retrieved: {}",
        all_output(&first)
    );
    let r: serde_json::Value = serde_json::from_slice(&first.stdout).expect("json");
    assert_eq!(r["complete"], false, "{r}");
    let got = r["received"].as_u64().expect("received") as usize;
    assert!(got > 0 && got < ct.len(), "some whole objects kept: {r}");
    assert!(
        r["problems"]
            .to_string()
            .contains("connection closed early"),
        "the reason: {r}"
    );
    // What arrived is whole and indexed; the study says incomplete.
    assert_eq!(cached_files(&cache).len(), got);
    let ls = lightbox(&config, &["cache", "ls"]);
    assert!(
        String::from_utf8_lossy(&ls.stdout)
            .to_lowercase()
            .contains("incomplete"),
        "{}",
        all_output(&ls)
    );
    // Run again: only the rest, then complete.
    let second = json(
        &lightbox(&config, &["retrieve", "web", "--study", &study, "--json"]),
        "again",
    );
    assert_eq!(second["complete"], true, "{second}");
    assert_eq!(second["received"], ct.len() - got, "{second}");
    let all = datasets(&cached_files(&cache));
    assert!(all == datasets(&ct), "the whole CT, byte for byte");
}

#[test]
fn https_with_basic_authentication_and_its_refusals() {
    let tmp = common::tempdir();
    let dir = tmp.path();
    let pki = common::pki::Pki::new(dir);
    let ca = pki.ca("hospital-ca");
    let other = pki.ca("someone-else");
    let server = pki.issue(&ca, "orthanc", "DNS:localhost,IP:127.0.0.1", None);
    assert!(
        Path::new(PLUGIN).exists(),
        "{PLUGIN} is missing: install orthanc-dicomweb"
    );
    let pacs = common::pacs::Orthanc::start_with(
        dir,
        serde_json::Map::new(),
        serde_json::json!({
            "Plugins": [PLUGIN],
            "DicomWeb": {"Enable": true, "Root": "/dicom-web/", "EnableWado": false},
            "AuthenticationEnabled": true, "RegisteredUsers": {"reader": "s3cret"}
        }),
    );
    // HTTPS in front of it (Debian's Orthanc 1.10.1 crashes in civetweb on its
    // own HTTPS, a segfault with OpenSSL 3): Python's ssl terminates TLS.
    let (_tls, https) = proxy(dir, pacs.http, 0, Some((&server.cert, &server.key)));
    // Stored through its DICOM port (its REST API now wants a password).
    lightbox::synth::write_ct(
        &dir.join("ct"),
        &lightbox::synth::CtSpec {
            slices: 5,
            size: 64,
            seed: "dicomweb-https".into(),
            ..Default::default()
        },
    )
    .expect("ct");
    let ct = files(&dir.join("ct"));
    let study = lightbox::dicom::read_header(&ct[0])
        .expect("header")
        .study_uid;
    common::run_ok(
        Command::new(common::require_tool("storescu", "dcmtk"))
            .args(["-aec", "ORTHANC", "127.0.0.1", &pacs.dicom.to_string()])
            .args(&ct),
    );
    let cache = dir.join("cache");
    let config = |name: &str, node: &str| {
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(
            &p,
            format!(
                "ae_title = \"LIGHTBOX\"\ncache_root = {:?}\n[[nodes]]\nname = \"web\"\n\
                 protocol = \"dicomweb\"\nurl = \"https://127.0.0.1:{https}/dicom-web\"\n{node}",
                cache.to_str().expect("utf8"),
            ),
        )
        .expect("config");
        p
    };
    let good = config(
        "good",
        &format!(
            "tls_ca = {:?}\nusername = \"reader\"\npassword = \"s3cret\"\n",
            common::pki::s(&ca.cert)
        ),
    );
    let found = json(
        &lightbox(&good, &["find", "web", "--json"]),
        "find over HTTPS",
    );
    assert_eq!(found.as_array().map(|a| a.len()), Some(1), "{found}");
    let r = json(
        &lightbox(&good, &["retrieve", "web", "--study", &study, "--json"]),
        "retrieve over HTTPS",
    );
    assert_eq!(r["complete"], true, "{r}");
    assert_eq!(cached_files(&cache).len(), ct.len());
    // A wrong password, and a server certificate we do not trust.
    let wrong = config(
        "wrong",
        &format!(
            "tls_ca = {:?}\nusername = \"reader\"\npassword = \"guess\"\n",
            common::pki::s(&ca.cert)
        ),
    );
    let out = lightbox(&wrong, &["find", "web"]);
    assert!(!out.status.success());
    assert!(
        all_output(&out).contains("not authorised"),
        "{}",
        all_output(&out)
    );
    let untrusted = config(
        "untrusted",
        &format!(
            "tls_ca = {:?}\nusername = \"reader\"\npassword = \"s3cret\"\n",
            common::pki::s(&other.cert)
        ),
    );
    let out = lightbox(&untrusted, &["find", "web"]);
    assert!(!out.status.success());
    assert!(
        all_output(&out).contains("unknown issuer"),
        "{}",
        all_output(&out)
    );

    // The same TLS options as DIMSE nodes: a server known by a name its
    // certificate carries while it is addressed by IP (refused by name, taken
    // with tls_server_name), and a self-signed certificate pinned in tls_ca.
    let named = pki.issue(&ca, "pacs-by-name", "DNS:pacs.hospital.example", None);
    let (_named_tls, named_port) = proxy(dir, pacs.http, 0, Some((&named.cert, &named.key)));
    let pinned = pki.ca("self-signed-web");
    let (_pinned_tls, pinned_port) = proxy(dir, pacs.http, 0, Some((&pinned.cert, &pinned.key)));
    let at = |name: &str, port: u16, node: &str| {
        let p = dir.join(format!("{name}.toml"));
        std::fs::write(
            &p,
            format!(
                "ae_title = \"LIGHTBOX\"\ncache_root = {:?}\n[[nodes]]\nname = \"web\"\n\
                 protocol = \"dicomweb\"\nurl = \"https://127.0.0.1:{port}/dicom-web\"\n\
                 username = \"reader\"\npassword = \"s3cret\"\n{node}",
                cache.to_str().expect("utf8"),
            ),
        )
        .expect("config");
        p
    };
    let ca_line = format!("tls_ca = {:?}\n", common::pki::s(&ca.cert));
    let out = lightbox(&at("by-ip", named_port, &ca_line), &["find", "web"]);
    assert!(!out.status.success());
    assert!(
        all_output(&out).contains("tls_server_name"),
        "a name mismatch should point at tls_server_name: {}",
        all_output(&out)
    );
    let by_name = at(
        "by-name",
        named_port,
        &format!("{ca_line}tls_server_name = \"pacs.hospital.example\"\n"),
    );
    let found = json(
        &lightbox(&by_name, &["find", "web", "--json"]),
        "find by name",
    );
    assert_eq!(found.as_array().map(|a| a.len()), Some(1), "{found}");
    let pin = at(
        "pinned",
        pinned_port,
        &format!("tls_ca = {:?}\n", common::pki::s(&pinned.cert)),
    );
    let found = json(&lightbox(&pin, &["find", "web", "--json"]), "find, pinned");
    assert_eq!(found.as_array().map(|a| a.len()), Some(1), "{found}");
    // Pinned means that certificate only: another self-signed one is refused.
    let stranger = pki.ca("another-self-signed");
    let out = lightbox(
        &at(
            "wrong-pin",
            pinned_port,
            &format!("tls_ca = {:?}\n", common::pki::s(&stranger.cert)),
        ),
        &["find", "web"],
    );
    assert!(!out.status.success(), "{}", all_output(&out));
}
