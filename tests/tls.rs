//! DICOM over TLS against real peers on loopback, with certificates the test
//! makes with `openssl`: Lightbox's `echo` and `send` to DCMTK `storescp +tls`
//! (mutual TLS), DCMTK's `storescu`/`echoscu +tls` into `lightbox listen`'s TLS
//! port, `find` and `retrieve` (C-GET and C-MOVE, whose sub-operations come back
//! over TLS) against Orthanc with `DicomTlsEnabled`; and the refusals, each with
//! its reason and nothing stored: an unknown issuer, an expired certificate, a
//! name mismatch, a missing client certificate, plaintext on a TLS port and TLS
//! on a plaintext one.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::pki::{Cert, Pki, s};
use common::{KillOnDrop, all_output, free_port, lightbox, require_tool, wait_port};

/// DCMTK's storescp over TLS with `server`, trusting client certificates from
/// `trust` (required), writing bit-preserving into `out`.
fn storescp_tls(port: u16, out: &Path, server: &Cert, trust: &Path) -> KillOnDrop {
    let exe = require_tool("storescp", "dcmtk");
    std::fs::create_dir_all(out).expect("mkdir");
    let child = Command::new(exe)
        .arg("+tls")
        .args([s(&server.key), s(&server.cert)])
        .args(["+cf", s(trust), "+B", "-od", s(out), "-aet", "STORESCP"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start storescp");
    wait_port(port, "storescp +tls");
    KillOnDrop(child)
}

fn storescp_plain(port: u16, out: &Path) -> KillOnDrop {
    let exe = require_tool("storescp", "dcmtk");
    std::fs::create_dir_all(out).expect("mkdir");
    let child = Command::new(exe)
        .args(["+B", "-od", s(out), "-aet", "STORESCP"])
        .arg(port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start storescp");
    wait_port(port, "storescp");
    KillOnDrop(child)
}

/// A configuration with our identity (if any) and one node.
fn config(dir: &Path, name: &str, cache: &Path, global: &str, node: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            "ae_title = \"LIGHTBOX\"\ncache_root = {:?}\n{global}\n[[nodes]]\n{node}\n",
            s(cache)
        ),
    )
    .expect("config");
    p
}

fn identity(c: &Cert) -> String {
    format!(
        "tls_certificate = {:?}\ntls_private_key = {:?}\n",
        s(&c.cert),
        s(&c.key)
    )
}

fn tls_node(port: u16, ca: &Path, extra: &str) -> String {
    format!(
        "name = \"pacs\"\nae_title = \"STORESCP\"\nhost = \"127.0.0.1\"\nport = {port}\n\
         tls = true\ntls_ca = {:?}\nconnect_timeout_s = 5\ndimse_timeout_s = 10\n{extra}",
        s(ca)
    )
}

/// A synthetic CT of `n` slices; `seed` makes its UIDs its own.
fn ct(dir: &Path, n: usize, seed: &str) -> Vec<PathBuf> {
    common::write_ct(
        dir,
        &lightbox::synth::CtSpec {
            slices: n,
            size: 64,
            seed: seed.into(),
            ..Default::default()
        },
    )
}

fn count(dir: &Path) -> usize {
    lightbox::scan::list_files(dir)
        .map(|v| v.len())
        .unwrap_or(0)
}

fn fails_with(what: &str, out: &Output, needle: &str) {
    let text = all_output(out);
    eprintln!("{what}: {text}");
    assert!(!out.status.success(), "{what} must fail: {text}");
    assert!(
        text.to_lowercase().contains(&needle.to_lowercase()),
        "{what}: the error names the reason ({needle:?}): {text}"
    );
}

#[test]
fn echo_and_send_over_mutual_tls_to_dcmtk_arrive_byte_identical() {
    let tmp = common::tempdir();
    let pki = Pki::new(tmp.path());
    let ca = pki.ca("hospital-ca");
    let server = pki.issue(&ca, "pacs", "DNS:localhost,IP:127.0.0.1", None);
    let client = pki.issue(&ca, "reading1", "DNS:reading1", None);
    let files = ct(&tmp.path().join("ct"), 12, "tls-ct");
    let port = free_port();
    let out = tmp.path().join("received");
    let _scp = storescp_tls(port, &out, &server, &ca.cert);
    let cache = tmp.path().join("cache");
    let cfg = config(
        tmp.path(),
        "mutual",
        &cache,
        &identity(&client),
        &tls_node(port, &ca.cert, ""),
    );

    let echo = lightbox(&cfg, &["echo", "pacs"]);
    assert!(
        echo.status.success(),
        "echo over TLS: {}",
        all_output(&echo)
    );

    let sent = lightbox(&cfg, &["send", "pacs", s(&tmp.path().join("ct")), "--json"]);
    assert!(
        sent.status.success(),
        "send over TLS: {}",
        all_output(&sent)
    );
    let report: serde_json::Value = serde_json::from_slice(&sent.stdout).expect("json report");
    assert_eq!(
        report["sent"].as_u64(),
        Some(files.len() as u64),
        "{report}"
    );
    // Byte for byte: what storescp wrote (bit-preserving) is what was sent.
    let mut received: Vec<Vec<u8>> = lightbox::scan::list_files(&out)
        .expect("list")
        .iter()
        .map(|f| common::dataset(&std::fs::read(f).expect("read")).to_vec())
        .collect();
    let mut originals: Vec<Vec<u8>> = files
        .iter()
        .map(|f| common::dataset(&std::fs::read(f).expect("read")).to_vec())
        .collect();
    received.sort();
    originals.sort();
    assert_eq!(received.len(), files.len());
    assert!(received == originals, "data sets arrive byte-identical");

    // Without our certificate the node (which requires one) refuses us, and
    // nothing more is stored.
    let anon = config(
        tmp.path(),
        "anon",
        &cache,
        "",
        &tls_node(port, &ca.cert, ""),
    );
    let before = count(&out);
    let refused = lightbox(&anon, &["send", "pacs", s(&files[0]), "--force"]);
    fails_with("send without a client certificate", &refused, "TLS");
    assert_eq!(count(&out), before, "nothing stored");
}

#[test]
fn untrusted_expired_and_misnamed_certificates_are_refused_with_their_reason() {
    let tmp = common::tempdir();
    let pki = Pki::new(tmp.path());
    let ca = pki.ca("hospital-ca");
    let other = pki.ca("someone-else");
    let client = pki.issue(&ca, "reading1", "DNS:reading1", None);
    let files = ct(&tmp.path().join("ct"), 2, "tls-ct");
    let cache = tmp.path().join("cache");
    let cases = [
        (
            "unknown issuer",
            pki.issue(&other, "rogue", "DNS:localhost,IP:127.0.0.1", None),
            "",
        ),
        (
            "expired",
            pki.issue(
                &ca,
                "stale",
                "DNS:localhost,IP:127.0.0.1",
                Some(("20240101000000Z", "20250101000000Z")),
            ),
            "",
        ),
        (
            "name mismatch",
            pki.issue(&ca, "elsewhere", "DNS:pacs.example.org", None),
            "",
        ),
    ];
    for (reason, server, extra) in &cases {
        let port = free_port();
        let out = tmp
            .path()
            .join(format!("received-{}", reason.replace(' ', "-")));
        let _scp = storescp_tls(port, &out, server, &ca.cert);
        let cfg = config(
            tmp.path(),
            "c",
            &cache,
            &identity(&client),
            &tls_node(port, &ca.cert, extra),
        );
        let r = lightbox(&cfg, &["send", "pacs", s(&files[0]), "--force"]);
        fails_with(reason, &r, reason);
        assert_eq!(count(&out), 0, "{reason}: nothing stored");
    }
    // Each refusal is a security alert in the audit trail, with its reason.
    let (trail, _) = lightbox::audit::read(&cache, &Default::default()).expect("audit trail");
    for (reason, _, _) in &cases {
        assert!(
            trail.iter().any(|m| m.event_id.code == "110113"
                && m.event_outcome_description
                    .as_deref()
                    .is_some_and(|d| d.contains(reason))),
            "a security alert says {reason:?}: {trail:#?}"
        );
    }
    // The misnamed node is accepted once told the name its certificate carries.
    let port = free_port();
    let out = tmp.path().join("received-named");
    let _scp = storescp_tls(port, &out, &cases[2].1, &ca.cert);
    let cfg = config(
        tmp.path(),
        "named",
        &cache,
        &identity(&client),
        &tls_node(port, &ca.cert, "tls_server_name = \"pacs.example.org\"\n"),
    );
    let r = lightbox(&cfg, &["send", "pacs", s(&files[0]), "--force"]);
    assert!(
        r.status.success(),
        "with tls_server_name: {}",
        all_output(&r)
    );
    assert_eq!(count(&out), 1);
    // A self-signed certificate, pinned by putting it in tls_ca.
    let port = free_port();
    let pinned = pki.ca("self-signed-pacs");
    let out = tmp.path().join("received-pinned");
    let _scp = storescp_tls(port, &out, &pinned, &ca.cert);
    let cfg = config(
        tmp.path(),
        "pinned",
        &cache,
        &identity(&client),
        &tls_node(port, &pinned.cert, ""),
    );
    let r = lightbox(&cfg, &["echo", "pacs"]);
    assert!(r.status.success(), "pinned certificate: {}", all_output(&r));
}

#[test]
fn plaintext_and_tls_ports_are_told_apart() {
    let tmp = common::tempdir();
    let pki = Pki::new(tmp.path());
    let ca = pki.ca("hospital-ca");
    let server = pki.issue(&ca, "pacs", "DNS:localhost,IP:127.0.0.1", None);
    let client = pki.issue(&ca, "reading1", "DNS:reading1", None);
    let cache = tmp.path().join("cache");
    // TLS to a plaintext port.
    let plain = free_port();
    let _p = storescp_plain(plain, &tmp.path().join("plain"));
    let cfg = config(
        tmp.path(),
        "a",
        &cache,
        &identity(&client),
        &tls_node(plain, &ca.cert, ""),
    );
    let r = lightbox(&cfg, &["echo", "pacs"]);
    fails_with("TLS to a plaintext port", &r, "plaintext DICOM port");
    // Plaintext to a TLS port.
    let tls = free_port();
    let _t = storescp_tls(tls, &tmp.path().join("tls"), &server, &ca.cert);
    let node = format!(
        "name = \"pacs\"\nae_title = \"STORESCP\"\nhost = \"127.0.0.1\"\nport = {tls}\n\
         connect_timeout_s = 5\ndimse_timeout_s = 5\n"
    );
    let cfg = config(tmp.path(), "b", &cache, "", &node);
    let r = lightbox(&cfg, &["echo", "pacs"]);
    fails_with("plaintext to a TLS port", &r, "expects DICOM over TLS");
}

/// `lightbox listen` with a TLS port beside its plain one.
struct Listen {
    pid: u32,
    _child: KillOnDrop,
    port: u16,
    tls_port: u16,
    /// Its log (stderr).
    log: PathBuf,
}

fn listen(dir: &Path, cache: &Path, server: &Cert, client_ca: &Path) -> Listen {
    let (port, tls_port) = (free_port(), free_port());
    let cfg = config(
        dir,
        "listen",
        cache,
        &format!(
            "{}tls_client_ca = {:?}\nscp_port = {port}\ntls_port = {tls_port}\n\
             scp_artim_timeout_s = 2\n",
            identity(server),
            s(client_ca)
        ),
        "name = \"unused\"\nae_title = \"X\"\nhost = \"127.0.0.1\"\nport = 1\n",
    );
    let log = dir.join("listen.log");
    let child = Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(["listen", "--cache", s(cache)])
        .env("LIGHTBOX_CONFIG", &cfg)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("listen");
    wait_port(port, "lightbox listen");
    wait_port(tls_port, "lightbox listen (TLS)");
    Listen {
        pid: child.id(),
        _child: KillOnDrop(child),
        port,
        tls_port,
        log,
    }
}

/// Instances in the cache's index.
fn cached(cache: &Path) -> u64 {
    lightbox::store::Store::open(cache)
        .and_then(|s| s.stats())
        .map(|s| s.instances as u64)
        .unwrap_or(0)
}

/// Wait (bounded) until the cache holds `n` instances.
fn wait_cached(cache: &Path, n: u64) -> u64 {
    let t = Instant::now();
    loop {
        let c = cached(cache);
        if c >= n || t.elapsed() > Duration::from_secs(20) {
            return c;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn dcmtk(tool: &str, args: &[&str]) -> Output {
    let exe = require_tool(tool, "dcmtk");
    Command::new(exe).args(args).output().expect(tool)
}

#[test]
fn dcmtk_clients_store_into_lightbox_listen_over_tls_and_untrusted_ones_are_refused() {
    let tmp = common::tempdir();
    let pki = Pki::new(tmp.path());
    let ca = pki.ca("hospital-ca");
    let other = pki.ca("someone-else");
    let server = pki.issue(&ca, "reading1", "DNS:localhost,IP:127.0.0.1", None);
    let modality = pki.issue(&ca, "ct-scanner", "DNS:ct1", None);
    let rogue = pki.issue(&other, "rogue", "DNS:rogue", None);
    let cache = tmp.path().join("cache");
    let l = listen(tmp.path(), &cache, &server, &ca.cert);
    let files = ct(&tmp.path().join("ct"), 6, "tls-ct");
    let tls = l.tls_port.to_string();
    let trust = ["+cf", s(&ca.cert)];

    let e = dcmtk(
        "echoscu",
        &[
            &["+tls", s(&modality.key), s(&modality.cert)][..],
            &trust,
            &["-aec", "LIGHTBOX", "127.0.0.1", &tls],
        ]
        .concat(),
    );
    assert!(e.status.success(), "echoscu +tls: {}", all_output(&e));
    let mut args: Vec<&str> = vec!["+tls", s(&modality.key), s(&modality.cert)];
    args.extend(trust);
    args.extend(["-aec", "LIGHTBOX", "127.0.0.1", &tls]);
    args.extend(files.iter().map(|f| s(f)));
    let st = dcmtk("storescu", &args);
    assert!(st.status.success(), "storescu +tls: {}", all_output(&st));
    assert_eq!(wait_cached(&cache, files.len() as u64), files.len() as u64);

    // Refused: a certificate from a CA we do not trust, no certificate at all,
    // and plaintext on the TLS port. Nothing more is stored.
    let more = ct(&tmp.path().join("more"), 2, "tls-more");
    let rogue_args = [
        &["+tls", s(&rogue.key), s(&rogue.cert)][..],
        &trust,
        &["-aec", "LIGHTBOX", "127.0.0.1", &tls, s(&more[0])],
    ]
    .concat();
    let r = dcmtk("storescu", &rogue_args);
    assert!(
        !r.status.success(),
        "an untrusted client certificate is refused"
    );
    let anon = [
        &["+tla"][..],
        &trust,
        &["-aec", "LIGHTBOX", "127.0.0.1", &tls, s(&more[0])],
    ]
    .concat();
    let r = dcmtk("storescu", &anon);
    assert!(
        !r.status.success(),
        "a client without a certificate is refused"
    );
    let r = dcmtk(
        "storescu",
        &["-aec", "LIGHTBOX", "127.0.0.1", &tls, s(&more[0])],
    );
    assert!(!r.status.success(), "plaintext on the TLS port is refused");
    assert_eq!(
        cached(&cache),
        files.len() as u64,
        "nothing stored from them"
    );
    // The refusals are security alerts in the listener's audit trail.
    let (trail, _) = lightbox::audit::read(&cache, &Default::default()).expect("audit trail");
    let alerts = trail.iter().filter(|m| m.event_id.code == "110113").count();
    assert!(
        alerts >= 3,
        "three refusals, {alerts} security alert(s): {trail:#?}"
    );
    // The log says why, each time.
    let log = std::fs::read_to_string(&l.log).expect("log");
    eprintln!("{log}");
    for reason in [
        "unknown issuer",
        "no client certificate",
        "does not speak TLS",
    ] {
        assert!(log.contains(reason), "listen's log names {reason:?}: {log}");
    }

    // Peers that send part of a first message and close, or nothing at all, on
    // either port: their threads end by the ARTIM deadline (2 s here), none spins on.
    let threads = || {
        std::fs::read_dir(format!("/proc/{}/task", l.pid))
            .expect("listen runs")
            .count()
    };
    let before = threads();
    for (port, bytes) in [
        (l.tls_port, &[0x16u8, 0x03, 0x01][..]),
        (
            l.tls_port,
            &[
                0x16, 0x03, 0x01, 0x00, 0x50, 0x01, 0x00, 0x00, 0x4c, 0x03, 0x03,
            ][..],
        ),
        (l.tls_port, &[][..]),
        (l.port, &[0x01, 0x00, 0x00, 0x00][..]),
        (l.port, &[0x16, 0x03, 0x01, 0x00][..]),
    ] {
        use std::io::Write;
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        c.write_all(bytes).expect("write");
    }
    // Served meanwhile (the partial ones wait for the rest until ARTIM)...
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        threads() > before,
        "the half-sent messages are being waited for"
    );
    // ...then gone.
    let t = Instant::now();
    while threads() > before && t.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        threads() <= before,
        "threads of half-sent first messages are gone ({} > {before})",
        threads()
    );

    // The listener kept serving: the plain port and the TLS port still work.
    let r = dcmtk(
        "storescu",
        &[
            "-aec",
            "LIGHTBOX",
            "127.0.0.1",
            &l.port.to_string(),
            s(&more[0]),
        ],
    );
    assert!(r.status.success(), "plain port: {}", all_output(&r));
    let again = [
        &["+tls", s(&modality.key), s(&modality.cert)][..],
        &trust,
        &["-aec", "LIGHTBOX", "127.0.0.1", &tls, s(&more[1])],
    ]
    .concat();
    let r = dcmtk("storescu", &again);
    assert!(
        r.status.success(),
        "TLS port after the refusals: {}",
        all_output(&r)
    );
    assert_eq!(
        wait_cached(&cache, files.len() as u64 + 2),
        files.len() as u64 + 2
    );
}

#[test]
fn find_and_retrieve_over_tls_from_orthanc_by_get_and_by_move() {
    let tmp = common::tempdir();
    let pki = Pki::new(tmp.path());
    let ca = pki.ca("hospital-ca");
    let pacs_cert = pki.issue(&ca, "orthanc", "DNS:localhost,IP:127.0.0.1", None);
    let ours = pki.issue(&ca, "reading1", "DNS:localhost,IP:127.0.0.1", None);
    let files = ct(&tmp.path().join("ct"), 20, "tls-ct");
    let study = lightbox::dicom::read_header(&files[0])
        .expect("header")
        .study_uid;
    let scp_port = free_port();
    let mut mods = serde_json::Map::new();
    mods.insert(
        "lightbox".into(),
        serde_json::json!({"AET": "LIGHTBOX", "Host": "127.0.0.1", "Port": scp_port, "UseDicomTls": true}),
    );
    let orthanc = common::pacs::Orthanc::start_with(
        tmp.path(),
        mods,
        serde_json::json!({
            "DicomTlsEnabled": true,
            "DicomTlsCertificate": s(&pacs_cert.cert),
            "DicomTlsPrivateKey": s(&pacs_cert.key),
            "DicomTlsTrustedCertificates": s(&ca.cert),
            "DicomTlsRemoteCertificateRequired": true
        }),
    );
    orthanc.upload(&files);
    for (method, cache) in [("get", "cache-get"), ("move", "cache-move")] {
        let cache = tmp.path().join(cache);
        let node = format!(
            "name = \"pacs\"\nae_title = \"ORTHANC\"\nhost = \"127.0.0.1\"\nport = {}\n\
             tls = true\ntls_ca = {:?}\nretrieve = \"{method}\"\nget_fallback = false\n",
            orthanc.dicom,
            s(&ca.cert)
        );
        let global = format!(
            "{}tls_client_ca = {:?}\nscp_port = {}\ntls_port = {scp_port}\n",
            identity(&ours),
            s(&ca.cert),
            free_port()
        );
        let cfg = config(tmp.path(), method, &cache, &global, &node);
        let found = lightbox(&cfg, &["find", "pacs", "--study", &study, "--json"]);
        assert!(
            found.status.success(),
            "find over TLS: {}",
            all_output(&found)
        );
        let v: serde_json::Value = serde_json::from_slice(&found.stdout).expect("json");
        assert_eq!(v.as_array().map(|a| a.len()), Some(1), "{v}");
        let r = lightbox(&cfg, &["retrieve", "pacs", "--study", &study]);
        assert!(
            r.status.success(),
            "C-{method} over TLS: {}",
            all_output(&r)
        );
        assert_eq!(
            cached(&cache),
            files.len() as u64,
            "C-{method}: every instance"
        );
    }
}
