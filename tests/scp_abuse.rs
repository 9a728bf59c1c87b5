//! The Storage SCP (`lightbox listen`, the real process) under load and abuse, on
//! loopback: idle and trickling connections closed by ARTIM while honest peers
//! (DCMTK `storescu`) are still served, a connection cap that rejects newcomers
//! transiently when every slot holds an association, fifty associations at once
//! storing a whole CT, and peers that abort mid-object, vanish without release,
//! announce a 4 GB pixel element or send hostile UIDs. After each: every
//! acknowledged object is in the cache, nothing is half-stored, memory stays
//! bounded and the SCP's thread count is back where it was.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use dicom_ul::pdu::{PDataValue, PDataValueType, Pdu};
use lightbox::store::Store;

const CT_IMAGE_STORAGE: &str = "1.2.840.10008.5.1.4.1.1.2";
const IMPLICIT_LE: &str = "1.2.840.10008.1.2";

/// `lightbox listen` with a configuration of its own.
fn start_scp(tmp: &Path, config: &str) -> (common::KillOnDrop, u16, PathBuf) {
    let cfg = tmp.join("config.toml");
    std::fs::write(&cfg, format!("ae_title = \"LIGHTBOX\"\n{config}")).expect("config");
    let cache = tmp.join("cache");
    let port = common::free_port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_lightbox"))
        .args(["listen", "--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--cache", cache.to_str().expect("utf8")])
        .env("LIGHTBOX_CONFIG", &cfg)
        .env("LIGHTBOX_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(tmp.join("scp.log")).expect("log"))
        .spawn()
        .expect("start lightbox listen");
    let scp = common::KillOnDrop(child);
    common::wait_port(port, "lightbox listen");
    (scp, port, cache)
}

/// Threads of a process, from /proc.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the SCP is running")
        .count()
}

/// The names of the process's threads (for messages).
fn thread_names(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .map(|d| {
            d.flatten()
                .map(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .unwrap_or_default()
                        .trim()
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A line of /proc/PID/status, in kB (VmRSS, VmHWM).
fn status_kb(pid: u32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
}

/// Wait (bounded) until the SCP runs `want` threads again; the count it reached.
fn wait_threads(pid: u32, want: usize, within: Duration) -> usize {
    let t = Instant::now();
    loop {
        let n = threads(pid);
        if n <= want || t.elapsed() > within {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The thread count once it has been stable for a second (the SCP's own threads).
fn settled_threads(pid: u32) -> usize {
    let mut last = threads(pid);
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let n = threads(pid);
        if n == last {
            return n;
        }
        last = n;
    }
    last
}

fn storescu(port: u16, files: &[PathBuf]) -> std::process::Output {
    let mut cmd = std::process::Command::new(common::require_tool("storescu", "dcmtk"));
    cmd.env("TCP_NODELAY", "1")
        .args(["-xi", "-aec", "LIGHTBOX", "127.0.0.1", &port.to_string()])
        .args(files);
    cmd.output().expect("run storescu")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v = lightbox::scan::list_files(dir).expect("list");
    v.sort();
    v
}

/// Data set bytes of a Part 10 file (everything after the file meta group).
fn dataset_bytes(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).expect("read");
    let group_len = u32::from_le_bytes([bytes[140], bytes[141], bytes[142], bytes[143]]) as usize;
    bytes[144 + group_len..].to_vec()
}

/// Instances the cache indexes.
fn indexed(cache: &Path) -> usize {
    Store::open(cache)
        .expect("open")
        .stats()
        .expect("stats")
        .instances
}

/// Wait (bounded) until the SCP's staging folder holds no file.
fn staging_empty(cache: &Path) -> bool {
    for _ in 0..100 {
        let n = walk(&cache.join("incoming")).len() + walk(&cache.join("tmp")).len();
        if n == 0 {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    if !dir.exists() {
        return Vec::new();
    }
    lightbox::scan::list_files(dir).unwrap_or_default()
}

/// Wait (bounded by `within`) until the peer closes `s`: true when it did.
fn closed_by_peer(s: &mut TcpStream, within: Duration) -> bool {
    let t = Instant::now();
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 256];
    while t.elapsed() < within {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return true,
        }
    }
    false
}

/// An A-ASSOCIATE-RQ proposing CT Image Storage in implicit VR little endian.
fn associate_rq_bytes() -> Vec<u8> {
    fn item(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![kind, 0];
        v.extend_from_slice(&(body.len() as u16).to_be_bytes());
        v.extend_from_slice(body);
        v
    }
    let mut pc = vec![1, 0, 0, 0];
    pc.extend(item(0x30, CT_IMAGE_STORAGE.as_bytes()));
    pc.extend(item(0x40, IMPLICIT_LE.as_bytes()));
    let mut max = vec![];
    max.extend(item(0x51, &16384u32.to_be_bytes()));
    let mut body = vec![0, 1, 0, 0];
    body.extend_from_slice(b"LIGHTBOX        ");
    body.extend_from_slice(b"TRICKLE         ");
    body.extend_from_slice(&[0; 32]);
    body.extend(item(0x10, b"1.2.840.10008.3.1.1.1"));
    body.extend(item(0x20, &pc));
    body.extend(item(0x50, &max));
    let mut pdu = vec![0x01, 0];
    pdu.extend_from_slice(&(body.len() as u32).to_be_bytes());
    pdu.extend(body);
    pdu
}

/// A C-STORE-RQ command set (implicit VR little endian, group length first).
fn c_store_rq(sop_instance: &str) -> Vec<u8> {
    fn el(out: &mut Vec<u8>, elem: u16, value: &[u8]) {
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&elem.to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    let uid = |u: &str| {
        let mut v = u.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        v
    };
    let mut body = Vec::new();
    el(&mut body, 0x0002, &uid(CT_IMAGE_STORAGE));
    el(&mut body, 0x0100, &1u16.to_le_bytes());
    el(&mut body, 0x0110, &7u16.to_le_bytes());
    el(&mut body, 0x0700, &0u16.to_le_bytes());
    el(&mut body, 0x0800, &0u16.to_le_bytes());
    el(&mut body, 0x1000, &uid(sop_instance));
    let mut out = Vec::new();
    el(&mut out, 0x0000, &(body.len() as u32).to_le_bytes());
    out.extend(body);
    out
}

fn client(port: u16) -> dicom_ul::ClientAssociation<TcpStream> {
    dicom_ul::ClientAssociationOptions::new()
        .calling_ae_title("ABUSER")
        .called_ae_title("LIGHTBOX")
        .with_presentation_context(CT_IMAGE_STORAGE, vec![IMPLICIT_LE])
        .max_pdu_length(16384)
        .establish(("127.0.0.1", port))
        .expect("associate")
}

fn pdv(kind: PDataValueType, last: bool, data: Vec<u8>) -> Pdu {
    Pdu::PData {
        data: vec![PDataValue {
            presentation_context_id: 1,
            value_type: kind,
            is_last: last,
            data,
        }],
    }
}

/// Send one object's data set in fragments; the C-STORE-RSP status.
fn store_one(a: &mut dicom_ul::ClientAssociation<TcpStream>, sop: &str, data: &[u8]) -> u16 {
    a.send(&pdv(PDataValueType::Command, true, c_store_rq(sop)))
        .expect("command");
    let chunks: Vec<&[u8]> = data.chunks(8000).collect();
    for (i, c) in chunks.iter().enumerate() {
        a.send(&pdv(
            PDataValueType::Data,
            i + 1 == chunks.len(),
            c.to_vec(),
        ))
        .expect("data");
    }
    match a.receive().expect("C-STORE-RSP") {
        Pdu::PData { data } => {
            let cmd = &data[0].data;
            // Status (0000,0900) in the implicit VR response.
            let mut i = 0;
            while i + 8 <= cmd.len() {
                let elem = u16::from_le_bytes([cmd[i + 2], cmd[i + 3]]);
                let len =
                    u32::from_le_bytes([cmd[i + 4], cmd[i + 5], cmd[i + 6], cmd[i + 7]]) as usize;
                if elem == 0x0900 {
                    return u16::from_le_bytes([cmd[i + 8], cmd[i + 9]]);
                }
                i += 8 + len;
            }
            panic!("no status in the C-STORE-RSP");
        }
        other => panic!("expected a C-STORE-RSP, got {other:?}"),
    }
}

/// The synthetic CT, `n` slices of 64².
fn ct(dir: &Path, n: usize) -> Vec<PathBuf> {
    common::ct_mr_study(dir, n, 1, 64);
    files(&dir.join("ct"))
}

#[test]
fn idle_and_trickling_connections_are_closed_while_honest_peers_are_served() {
    let tmp = common::tempdir();
    let sent = ct(&tmp.path().join("src"), 10);
    let (scp, port, cache) = start_scp(
        tmp.path(),
        "scp_max_associations = 8\nscp_artim_timeout_s = 2\nscp_idle_timeout_s = 3\n",
    );
    let pid = scp.0.id();
    let baseline = settled_threads(pid);

    // Slowloris: 40 connections that never say anything, far over the cap of 8.
    let mut idle: Vec<TcpStream> = (0..40)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    // One that trickles a valid A-ASSOCIATE-RQ a byte every 200 ms (it would
    // take over 20 s to finish): ARTIM is a deadline, not a per-read timeout.
    let rq = associate_rq_bytes();
    assert!(rq.len() > 100, "the request is long enough to trickle");
    let trickler = std::thread::Builder::new()
        .name("trickler".into())
        .spawn(move || {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            let mut written = 0;
            for b in &rq {
                if s.write_all(&[*b]).is_err() {
                    break;
                }
                written += 1;
                std::thread::sleep(Duration::from_millis(200));
                // Closed by the SCP: the next write fails, or a read says EOF.
                let _ = s.set_nonblocking(true);
                let mut buf = [0u8; 16];
                if let Ok(0) = s.read(&mut buf) {
                    break;
                }
                let _ = s.set_nonblocking(false);
            }
            (written, rq.len())
        })
        .expect("start the trickler");

    // An honest modality is served at once, flood or not.
    let out = storescu(port, &sent);
    common::check_ok("storescu during the flood", out);
    assert_eq!(indexed(&cache), sent.len(), "every object sent is stored");

    // Every idle connection is closed (the cap or ARTIM), none left hanging.
    for (i, s) in idle.iter_mut().enumerate() {
        assert!(
            closed_by_peer(s, Duration::from_secs(20)),
            "idle connection {i} still open"
        );
    }
    let (written, total) = trickler.join().expect("trickler");
    assert!(
        written < total,
        "the trickling peer finished its request ({written} of {total} bytes) before it was closed"
    );

    // An association that goes silent is closed after the idle timeout.
    let mut quiet = client(port);
    assert!(
        closed_by_peer(quiet.inner_stream(), Duration::from_secs(30)),
        "a silent association is never closed"
    );

    // No thread left behind.
    let after = wait_threads(pid, baseline, Duration::from_secs(20));
    assert!(
        after <= baseline,
        "the SCP ran {baseline} threads before the flood and {after} after: {:?}",
        thread_names(pid)
    );
    let log = std::fs::read_to_string(tmp.path().join("scp.log")).expect("log");
    assert!(log.contains("(ARTIM)"), "ARTIM closures are logged:\n{log}");
    // Still serving.
    common::check_ok("storescu after the flood", storescu(port, &sent[..1]));
}

#[test]
fn at_the_cap_newcomers_are_rejected_transiently_and_served_once_room_is_made() {
    let tmp = common::tempdir();
    let sent = ct(&tmp.path().join("src"), 2);
    let (_scp, port, cache) = start_scp(tmp.path(), "scp_max_associations = 4\n");
    // Four established associations hold every slot.
    let held: Vec<_> = (0..4).map(|_| client(port)).collect();
    let out = storescu(port, &sent);
    assert!(!out.status.success(), "a fifth association must be refused");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("Transient") && text.contains("Local Limit Exceeded"),
        "storescu must see a transient rejection (local limit exceeded):\n{text}"
    );
    for a in held {
        a.release().expect("release");
    }
    common::check_ok("storescu once room is made", storescu(port, &sent));
    assert_eq!(indexed(&cache), sent.len());
}

#[test]
fn fifty_associations_at_once_store_a_whole_ct_with_bounded_memory_and_threads() {
    let tmp = common::tempdir();
    let sent = ct(&tmp.path().join("src"), 400);
    let (scp, port, cache) = start_scp(tmp.path(), "");
    let pid = scp.0.id();
    let baseline = settled_threads(pid);
    let jobs: Vec<_> = sent
        .chunks(8)
        .map(|chunk| {
            let chunk = chunk.to_vec();
            std::thread::Builder::new()
                .name("storescu".into())
                .spawn(move || storescu(port, &chunk))
                .expect("start a storescu thread")
        })
        .collect();
    assert_eq!(jobs.len(), 50);
    for j in jobs {
        common::check_ok("storescu", j.join().expect("thread"));
    }
    let peak_mb = status_kb(pid, "VmHWM:") / 1024;
    let after = wait_threads(pid, baseline, Duration::from_secs(20));
    drop(scp);
    println!(
        "50 associations, 400 objects: SCP peak RSS {peak_mb} MB, threads {baseline} -> {after}"
    );
    assert!(
        after <= baseline,
        "threads: {baseline} before, {after} after"
    );
    // 400 objects of 8 KB: a peak far beyond the data means buffering per object.
    assert!(
        peak_mb < 300,
        "SCP peak RSS {peak_mb} MB for 3 MB of objects"
    );
    let store = Store::open(&cache).expect("open");
    assert!(store.verify().expect("verify").is_clean());
    assert_eq!(store.stats().expect("stats").instances, 400);
    let stored: std::collections::HashSet<Vec<u8>> = files(&cache.join("objects"))
        .iter()
        .map(|p| dataset_bytes(p))
        .collect();
    for f in &sent {
        assert!(
            stored.contains(&dataset_bytes(f)),
            "{} differs",
            f.display()
        );
    }
}

#[test]
fn peers_that_abort_vanish_or_lie_lose_only_their_own_unacknowledged_object() {
    let tmp = common::tempdir();
    let sent = ct(&tmp.path().join("src"), 3);
    let (scp, port, cache) = start_scp(tmp.path(), "");
    let pid = scp.0.id();
    let object = |i: usize| dataset_bytes(&sent[i]);
    let sop = |i: usize| {
        lightbox::dicom::read_header(&sent[i])
            .expect("header")
            .sop_instance_uid
    };

    // 1. One object acknowledged, then the TCP connection dropped without release:
    // the acknowledged object is kept.
    let mut a = client(port);
    assert_eq!(store_one(&mut a, &sop(0), &object(0)), 0x0000);
    drop(a);

    // 2. Half an object, then A-ABORT: nothing of it stays.
    let mut a = client(port);
    a.send(&pdv(PDataValueType::Command, true, c_store_rq(&sop(1))))
        .expect("command");
    let half = object(1);
    a.send(&pdv(
        PDataValueType::Data,
        false,
        half[..half.len() / 2].to_vec(),
    ))
    .expect("data");
    a.abort().expect("abort");

    // 3. A pixel element announced at 4 GB, a few kilobytes of it, then gone.
    let rss_before = status_kb(pid, "VmRSS:");
    let mut a = client(port);
    a.send(&pdv(PDataValueType::Command, true, c_store_rq(&sop(2))))
        .expect("command");
    let mut lie = object(2);
    let at = lie
        .windows(4)
        .position(|w| w == [0xe0, 0x7f, 0x10, 0x00])
        .expect("pixel data in the CT");
    lie.truncate(at + 4);
    lie.extend_from_slice(&0xffff_fff0u32.to_le_bytes());
    lie.extend(std::iter::repeat_n(0x55u8, 12_000));
    for c in lie.chunks(8000) {
        a.send(&pdv(PDataValueType::Data, false, c.to_vec()))
            .expect("data");
    }
    std::thread::sleep(Duration::from_millis(300));
    let rss_during = status_kb(pid, "VmRSS:");
    drop(a);
    assert!(
        rss_during < rss_before + 64 * 1024,
        "a 4 GB announcement grew the SCP from {rss_before} kB to {rss_during} kB"
    );

    // 4. Hostile UIDs: a path in the command's and the data set's SOP Instance UID.
    let hostile = "../../../../../tmp/lightbox-escape";
    let mut data = object(1);
    let real = sop(1);
    let pos = data
        .windows(real.len())
        .position(|w| w == real.as_bytes())
        .expect("the UID in the data set");
    // Same length, so the element's length stays right.
    let fake: String = hostile.chars().cycle().take(real.len()).collect();
    data.splice(pos..pos + real.len(), fake.bytes());
    let mut a = client(port);
    let status = store_one(&mut a, &fake, &data);
    a.release().expect("release");

    // 5. A PDU of the wrong type on an established association.
    let mut a = client(port);
    let _ = a
        .inner_stream()
        .write_all(&[0x01, 0, 0, 0, 0, 4, 0, 1, 0, 0]);
    assert!(
        closed_by_peer(a.inner_stream(), Duration::from_secs(10)),
        "an A-ASSOCIATE-RQ on an established association must end it"
    );

    // The SCP still serves honest peers; only what it acknowledged is stored.
    common::check_ok("storescu", storescu(port, &sent[1..2]));
    assert!(staging_empty(&cache), "staging files left behind");
    let store = Store::open(&cache).expect("open");
    let v = store.verify().expect("verify");
    assert!(v.is_clean(), "{v:?}");
    let stored: Vec<String> = store
        .studies()
        .expect("studies")
        .iter()
        .map(|s| s.study_uid.clone())
        .collect();
    assert_eq!(stored.len(), 1, "one study");
    let n = store.stats().expect("stats").instances;
    let hostile_kept = status == 0x0000;
    assert_eq!(
        n,
        2 + usize::from(hostile_kept),
        "the acknowledged object and the honest one (and the hostile one if it was accepted, status {status:04X})"
    );
    // Nothing escaped the cache.
    for f in walk(&cache) {
        assert!(f.starts_with(&cache), "{} outside the cache", f.display());
    }
    assert!(
        !Path::new("/tmp/lightbox-escape").exists()
            && !Path::new("/tmp/lightbox-escape.dcm").exists(),
        "a hostile UID wrote outside the cache"
    );
}
