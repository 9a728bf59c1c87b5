//! Query/Retrieve against real PACS started by the tests: Orthanc and DCMTK's
//! dcmqrscp, seeded with synthetic studies (two patients with a prior, a 400-image
//! CT, an MR stored as JPEG-LS, a prior stored as JPEG 2000, a CR, a patient whose
//! name needs Latin-1/UTF-8). C-ECHO, C-FIND at every level with each kind of key,
//! C-MOVE and C-GET of whole studies and single series; the cache must then hold
//! exactly the node's SOP instances with the very pixel data bytes that were sent.
//! Faults: wrong AE title, unknown move destination, a silent server, the PACS
//! killed mid-move (the second retrieve fetches only what is missing).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::pacs::{Dcmqrscp, Orthanc};
use dicom_dictionary_std::tags;
use lightbox::config::{Node, RetrieveMethod};
use lightbox::net::find::{self, Level, Model, Query};
use lightbox::net::retrieve::{self, Progress, Request};
use lightbox::net::scu::{self, Peer};
use lightbox::store::{Durability, Ingest, RetrievalState, Store};
use lightbox::synth;

const J2K: &str = "1.2.840.10008.1.2.4.90";
const JPEG_LS: &str = "1.2.840.10008.1.2.4.80";

/// The seeded studies.
struct Fixtures {
    ct: Vec<PathBuf>,
    prior: Vec<PathBuf>,
    mr: Vec<PathBuf>,
    cr: Vec<PathBuf>,
    mueller: Vec<PathBuf>,
}

impl Fixtures {
    fn all(&self) -> Vec<PathBuf> {
        [&self.ct, &self.prior, &self.mr, &self.cr, &self.mueller]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

fn files(dir: &Path) -> Vec<PathBuf> {
    lightbox::scan::list_files(dir).expect("list")
}

fn header(p: &Path) -> lightbox::dicom::ImageHeader {
    lightbox::dicom::read_header(p).expect("header")
}

fn study_of(f: &[PathBuf]) -> String {
    header(&f[0]).study_uid
}

fn encode_all(
    tool: &str,
    package: &str,
    args: &[&str],
    src: &[PathBuf],
    dir: &Path,
) -> Vec<PathBuf> {
    let exe = common::require_tool(tool, package);
    std::fs::create_dir_all(dir).expect("mkdir");
    src.iter()
        .enumerate()
        .map(|(i, f)| {
            let dst = dir.join(format!("{i:04}.dcm"));
            common::run_ok(Command::new(&exe).args(args).arg(f).arg(&dst));
            dst
        })
        .collect()
}

fn fixtures(dir: &Path) -> Fixtures {
    let ct = |sub: &str, spec: synth::CtSpec| {
        synth::write_ct(&dir.join(sub), &spec).expect("ct");
        files(&dir.join(sub))
    };
    let base = synth::CtSpec {
        size: 64,
        fov_mm: 358.4,
        ..Default::default()
    };
    let current = ct(
        "ct",
        synth::CtSpec {
            slices: 400,
            accession: "ACC-CT-2026".into(),
            referring_physician: "WELBY^MARCUS".into(),
            ..base.clone()
        },
    );
    let prior_plain = ct(
        "prior-plain",
        synth::CtSpec {
            slices: 30,
            seed: "lightbox-ct-prior".into(),
            study_date: "20240312".into(),
            study_description: "CT CHEST (prior)".into(),
            accession: "ACC-CT-2024".into(),
            // GDCM writes UN for elements of an implicit VR source: start explicit.
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            ..base.clone()
        },
    );
    let prior = encode_all(
        "gdcmconv",
        "libgdcm-tools",
        &["--j2k"],
        &prior_plain,
        &dir.join("prior"),
    );
    synth::write_mr(
        &dir.join("mr-plain"),
        &synth::MrSpec {
            slices: 12,
            size: 64,
            ..Default::default()
        },
    )
    .expect("mr");
    let mr = encode_all(
        "dcmcjpls",
        "dcmtk",
        &[],
        &files(&dir.join("mr-plain")),
        &dir.join("mr"),
    );
    synth::write_cr(&dir.join("cr")).expect("cr");
    let mueller = ct(
        "mueller",
        synth::CtSpec {
            slices: 6,
            seed: "lightbox-mueller".into(),
            patient_name: "MÜLLER^HANS".into(),
            patient_id: "LBX0003".into(),
            study_date: "20250615".into(),
            study_description: "CT THORAX ÜBERSICHT".into(),
            accession: "ACC-MUE".into(),
            ..base
        },
    );
    Fixtures {
        ct: current,
        prior,
        mr,
        cr: files(&dir.join("cr")),
        mueller,
    }
}

/// SOP Instance UID → pixel data bytes of each file (what was sent).
fn pixel_bytes(files: &[PathBuf]) -> std::collections::BTreeMap<String, Vec<u8>> {
    files
        .iter()
        .map(|f| {
            let obj = lightbox::dicom::open(f, lightbox::dicom::ReadMode::Full).expect("open");
            let px = obj
                .element(tags::PIXEL_DATA)
                .expect("pixel data")
                .to_bytes()
                .map(|b| b.to_vec())
                .unwrap_or_else(|_| {
                    // Encapsulated: hash the fragments in order.
                    let v = obj.element(tags::PIXEL_DATA).expect("pixel data").value();
                    v.fragments()
                        .map(|fr| fr.iter().flatten().copied().collect())
                        .unwrap_or_default()
                });
            (
                obj.meta()
                    .media_storage_sop_instance_uid()
                    .trim_end_matches('\0')
                    .to_string(),
                px,
            )
        })
        .collect()
}

/// The cache holds exactly `sent`'s instances for the study, with the same pixel
/// data bytes and the same transfer syntax.
fn assert_cached_identical(cache: &Path, sent: &[PathBuf]) {
    let store = Store::open(cache).expect("open cache");
    assert!(store.verify().expect("verify").is_clean());
    let study = study_of(sent);
    let cached: Vec<PathBuf> = store
        .series_of(&study)
        .expect("series")
        .iter()
        .flat_map(|se| store.instances_of(&se.series_uid).expect("instances"))
        .map(|i| cache.join(i.path))
        .collect();
    let want = pixel_bytes(sent);
    let got = pixel_bytes(&cached);
    assert_eq!(
        got.keys().collect::<BTreeSet<_>>(),
        want.keys().collect::<BTreeSet<_>>(),
        "the cache holds the study's instances, no more, no less"
    );
    for (sop, px) in &want {
        assert!(
            got[sop] == *px,
            "{sop}: pixel data differs from what was sent"
        );
    }
    // Compressed objects arrive as they are stored (no transcoding); a node may
    // send uncompressed ones in another uncompressed syntax (DCMTK converts
    // implicit to explicit VR), which Lightbox then keeps as received.
    let ts_sent = header(&sent[0]).transfer_syntax;
    let uncompressed = |ts: &str| ts == "1.2.840.10008.1.2" || ts == "1.2.840.10008.1.2.1";
    for p in &cached {
        let ts = header(p).transfer_syntax;
        assert!(
            ts == ts_sent || (uncompressed(&ts) && uncompressed(&ts_sent)),
            "{} arrived in {ts}, sent in {ts_sent}",
            p.display()
        );
    }
    assert_eq!(
        store.retrieval(&study).expect("retrieval").map(|r| r.state),
        Some(RetrievalState::Complete)
    );
}

/// A report in one line (the full one lists every UID).
fn brief(r: &retrieve::Report) -> String {
    format!(
        "{} by {}: expected {}, cached before {}, received {}, failed {}, missing {}, problems {:?}",
        if r.complete { "complete" } else { "incomplete" },
        r.method,
        r.expected,
        r.already_cached,
        r.received,
        r.failed,
        r.missing,
        r.problems
    )
}

fn peer(ae: &str, port: u16) -> Peer {
    let mut n = Node::ad_hoc("127.0.0.1", port, ae);
    n.dimse_timeout_s = 20;
    Peer::new(n, "LIGHTBOX")
}

fn study_query() -> Query {
    Query::new(Level::Study)
}

fn find(p: &Peer, q: &Query) -> Vec<find::Match> {
    find::find(p, q, &AtomicBool::new(false), &mut |_| {})
        .unwrap_or_else(|e| panic!("{q:?}: {e}"))
        .matches
}

fn studies(p: &Peer, f: impl FnOnce(&mut Query)) -> BTreeSet<String> {
    let mut q = study_query();
    f(&mut q);
    find(p, &q)
        .iter()
        .map(|m| m.get(tags::STUDY_INSTANCE_UID).expect("study UID returned"))
        .collect()
}

fn set(v: &[&Vec<PathBuf>]) -> BTreeSet<String> {
    v.iter().map(|f| study_of(f)).collect()
}

fn run_retrieve(
    p: &Peer,
    cache: &Path,
    study: &str,
    series: Vec<String>,
    method: RetrieveMethod,
    scp_port: u16,
) -> retrieve::Report {
    let ingest = Arc::new(Ingest::start(cache, Durability::Batched).expect("ingest"));
    let req = Request {
        study_uid: study.to_string(),
        series,
        method,
        parallel: 4,
        scp_port,
        scp_bind: "127.0.0.1".into(),
        middle_first: true,
    };
    let pending = AtomicUsize::new(0);
    let r = retrieve::retrieve(p, &req, &ingest, &AtomicBool::new(false), &|ev| {
        if let Progress::SubOps { .. } = ev {
            pending.fetch_add(1, Ordering::Relaxed);
        }
    })
    .unwrap_or_else(|e| panic!("retrieve {study}: {e}"));
    // Progress comes from the node's pending responses, one per sub-operation
    // (DCMTK and Orthanc both send them).
    assert!(
        r.received == 0 || pending.load(Ordering::Relaxed) > 0,
        "no pending responses seen"
    );
    r
}

/// The queries and retrieves both PACS must answer the same way.
/// `optional_keys`: whether the node matches on ModalitiesInStudy and Body Part
/// Examined (optional keys that dcmqrscp does not support).
/// `compressed_move`: whether the node can C-MOVE compressed files as stored.
fn exercise(
    p: &Peer,
    fx: &Fixtures,
    cache: &Path,
    scp_port: u16,
    optional_keys: bool,
    compressed_move: bool,
) {
    // C-ECHO: verification and the Q/R services.
    let echo = scu::echo(p).expect("echo");
    assert_eq!(echo.status, 0);
    for s in [
        scu::sop::STUDY_ROOT_FIND,
        scu::sop::STUDY_ROOT_MOVE,
        scu::sop::STUDY_ROOT_GET,
    ] {
        assert!(
            echo.accepted.iter().any(|(a, _)| a == s),
            "{s} not accepted: {echo:?}"
        );
    }
    // STUDY level, each kind of matching key.
    let all = set(&[&fx.ct, &fx.prior, &fx.mr, &fx.cr, &fx.mueller]);
    assert_eq!(studies(p, |_| {}), all);
    assert_eq!(
        studies(p, |q| q.keys.patient_name = Some("PHANTOM^C*".into())),
        set(&[&fx.ct, &fx.prior, &fx.cr]),
        "wildcard name"
    );
    assert_eq!(
        studies(p, |q| q.keys.patient_name = Some("PHANTOM^HEA?".into())),
        set(&[&fx.mr]),
        "? wildcard"
    );
    assert_eq!(
        studies(p, |q| q.keys.patient_id = Some("LBX0002".into())),
        set(&[&fx.mr])
    );
    assert_eq!(
        studies(p, |q| q.keys.accession = Some("ACC-CT-2024".into())),
        set(&[&fx.prior])
    );
    assert_eq!(
        studies(p, |q| q.keys.date = Some("20250101-".into())),
        set(&[&fx.ct, &fx.mr, &fx.cr, &fx.mueller]),
        "open-ended range"
    );
    assert_eq!(
        studies(p, |q| q.keys.date = Some("-20241231".into())),
        set(&[&fx.prior]),
        "range up to"
    );
    assert_eq!(
        studies(p, |q| q.keys.date = Some("20250101-20251231".into())),
        set(&[&fx.cr, &fx.mueller]),
        "closed range"
    );
    assert_eq!(
        studies(p, |q| q.keys.date = Some("20260105".into())),
        set(&[&fx.ct]),
        "single date"
    );
    assert_eq!(
        studies(p, |q| q.keys.study_description = Some("*prior*".into())),
        set(&[&fx.prior])
    );
    assert_eq!(
        studies(p, |q| q.keys.referring_physician = Some("WELBY*".into())),
        set(&[&fx.ct])
    );
    if optional_keys {
        assert_eq!(
            studies(p, |q| q.keys.modality = Some("CT".into())),
            set(&[&fx.ct, &fx.prior, &fx.mueller])
        );
    }
    // Return keys for a study browser.
    let mut q = study_query();
    q.keys.accession = Some("ACC-CT-2026".into());
    let m = &find(p, &q)[0];
    assert_eq!(m.get(tags::PATIENT_NAME).as_deref(), Some("PHANTOM^CHEST"));
    assert_eq!(m.get(tags::PATIENT_ID).as_deref(), Some("LBX0001"));
    assert_eq!(m.get(tags::STUDY_DATE).as_deref(), Some("20260105"));
    assert_eq!(
        m.get(tags::STUDY_DESCRIPTION).as_deref(),
        Some("CT CHEST ABDOMEN (synthetic)")
    );
    // Character sets: the answer is decoded by its own Specific Character Set, and a
    // non-ASCII key is sent as UTF-8 (ISO_IR 192).
    let mut q = study_query();
    q.keys.patient_id = Some("LBX0003".into());
    let m = &find(p, &q)[0];
    assert_eq!(m.get(tags::PATIENT_NAME).as_deref(), Some("MÜLLER^HANS"));
    assert_eq!(
        m.get(tags::STUDY_DESCRIPTION).as_deref(),
        Some("CT THORAX ÜBERSICHT")
    );
    assert_eq!(
        studies(p, |q| q.keys.patient_name = Some("MÜLLER*".into())),
        set(&[&fx.mueller]),
        "non-ASCII matching key"
    );
    // SERIES and IMAGE levels.
    let mut q = Query::new(Level::Series);
    q.keys.study_uid = Some(study_of(&fx.mr));
    let series = find(p, &q);
    assert_eq!(series.len(), 1);
    assert_eq!(series[0].get(tags::MODALITY).as_deref(), Some("MR"));
    if optional_keys {
        q.keys.body_part = Some("HEAD".into());
        assert_eq!(find(p, &q).len(), 1, "body part HEAD");
        q.keys.body_part = Some("CHEST".into());
        assert_eq!(find(p, &q).len(), 0, "body part CHEST");
    }
    let mut q = Query::new(Level::Series);
    q.keys.study_uid = Some(study_of(&fx.ct));
    q.keys.modality = Some("CT".into());
    let ct_series = find(p, &q);
    assert_eq!(ct_series.len(), 1);
    let ct_series_uid = ct_series[0]
        .get(tags::SERIES_INSTANCE_UID)
        .expect("series UID");
    let mut q = Query::new(Level::Image);
    q.keys.study_uid = Some(study_of(&fx.ct));
    q.keys.series_uid = Some(ct_series_uid.clone());
    let images = find(p, &q);
    assert_eq!(images.len(), 400);
    let sent: BTreeSet<String> = fx.ct.iter().map(|f| header(f).sop_instance_uid).collect();
    let listed: BTreeSet<String> = images
        .iter()
        .map(|m| m.get(tags::SOP_INSTANCE_UID).expect("SOP UID"))
        .collect();
    assert_eq!(listed, sent);
    // A result limit ends the query with C-CANCEL; the association stays usable.
    q.limit = Some(7);
    let limited = find::find(p, &q, &AtomicBool::new(false), &mut |_| {}).expect("limited");
    assert_eq!(limited.matches.len(), 7);
    assert!(limited.cancelled);
    // PATIENT level (Patient Root).
    let mut q = Query::new(Level::Patient);
    q.model = Model::PatientRoot;
    q.keys.patient_name = Some("PHANTOM*".into());
    let patients: BTreeSet<String> = find(p, &q)
        .iter()
        .filter_map(|m| m.get(tags::PATIENT_ID))
        .collect();
    assert_eq!(
        patients,
        ["LBX0001", "LBX0002"]
            .map(String::from)
            .into_iter()
            .collect()
    );

    // Retrieve: the 400-image CT by C-MOVE over parallel associations.
    let r = run_retrieve(
        p,
        cache,
        &study_of(&fx.ct),
        vec![],
        RetrieveMethod::Move,
        scp_port,
    );
    assert!(r.complete && r.method == "C-MOVE", "{}", brief(&r));
    assert_eq!((r.expected, r.received, r.already_cached), (400, 400, 0));
    assert_cached_identical(cache, &fx.ct);
    // A second retrieve finds everything cached and fetches nothing.
    let again = run_retrieve(
        p,
        cache,
        &study_of(&fx.ct),
        vec![],
        RetrieveMethod::Move,
        scp_port,
    );
    assert!(
        again.complete && again.received == 0 && again.already_cached == 400,
        "{}",
        brief(&again)
    );
    // The JPEG 2000 prior by C-GET (stored as received, no transcoding).
    let r = run_retrieve(
        p,
        cache,
        &study_of(&fx.prior),
        vec![],
        RetrieveMethod::Get,
        scp_port,
    );
    assert!(r.complete && r.method == "C-GET", "{}", brief(&r));
    assert_eq!(header(&fx.prior[0]).transfer_syntax, J2K);
    assert_cached_identical(cache, &fx.prior);
    // One series of the JPEG-LS MR (by C-MOVE where the node can send it as
    // stored), the CR and the Latin-1 patient by C-GET.
    let mr_series = header(&fx.mr[0]).series_uid;
    let method = if compressed_move {
        RetrieveMethod::Move
    } else {
        RetrieveMethod::Get
    };
    let r = run_retrieve(
        p,
        cache,
        &study_of(&fx.mr),
        vec![mr_series],
        method,
        scp_port,
    );
    assert!(r.complete, "{}", brief(&r));
    assert_eq!(header(&fx.mr[0]).transfer_syntax, JPEG_LS);
    assert_cached_identical(cache, &fx.mr);
    for s in [&fx.cr, &fx.mueller] {
        let r = run_retrieve(
            p,
            cache,
            &study_of(s),
            vec![],
            RetrieveMethod::Get,
            scp_port,
        );
        assert!(r.complete, "{}", brief(&r));
        assert_cached_identical(cache, s);
    }
    let store = Store::open(cache).expect("open");
    let rows = store.studies().expect("ls");
    assert!(
        rows.iter()
            .any(|r| r.patient_name == "MÜLLER^HANS"
                && r.retrieval == Some(RetrievalState::Complete)),
        "{rows:?}"
    );
}

#[test]
fn orthanc_answers_every_query_and_retrieve() {
    let tmp = common::tempdir();
    let fx = fixtures(&tmp.path().join("src"));
    let scp_port = common::free_port();
    let orthanc = Orthanc::start(tmp.path(), &[("lightbox", "LIGHTBOX", scp_port)]);
    orthanc.upload(&fx.all());
    let p = peer("ORTHANC", orthanc.dicom);
    exercise(&p, &fx, &tmp.path().join("cache"), scp_port, true, true);
    // What the cache holds is what Orthanc holds: compare a few files byte for byte
    // in their pixel data with Orthanc's own copies.
    let ids: Vec<String> =
        serde_json::from_value(orthanc.get_json("/instances")).expect("instance ids");
    assert_eq!(ids.len(), fx.all().len());
    let dir = tmp.path().join("from-orthanc");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let theirs: Vec<PathBuf> = ids
        .iter()
        .step_by(37)
        .map(|id| {
            let p = dir.join(format!("{id}.dcm"));
            std::fs::write(&p, orthanc.get(&format!("/instances/{id}/file"))).expect("write");
            p
        })
        .collect();
    let cache = tmp.path().join("cache");
    let store = Store::open(&cache).expect("open");
    let ours: Vec<PathBuf> = store
        .studies()
        .expect("ls")
        .iter()
        .flat_map(|st| store.series_of(&st.study_uid).expect("series"))
        .flat_map(|se| store.instances_of(&se.series_uid).expect("instances"))
        .map(|i| cache.join(i.path))
        .collect();
    let ours = pixel_bytes(&ours);
    for (sop, px) in pixel_bytes(&theirs) {
        assert!(
            ours.get(&sop) == Some(&px),
            "{sop}: differs from Orthanc's copy"
        );
    }
}

#[test]
fn dcmqrscp_answers_every_query_and_retrieve() {
    let tmp = common::tempdir();
    let fx = fixtures(&tmp.path().join("src"));
    let scp_port = common::free_port();
    let qr = Dcmqrscp::start(tmp.path(), &[("lightbox", "LIGHTBOX", scp_port)], &fx.all());
    let p = peer("DCMQR", qr.port);
    // dcmqrscp does not match on ModalitiesInStudy or Body Part Examined.
    exercise(&p, &fx, &tmp.path().join("cache"), scp_port, false, false);
}

#[test]
fn the_command_line_queries_and_retrieves() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_mr(
        &src,
        &synth::MrSpec {
            slices: 8,
            size: 32,
            ..Default::default()
        },
    )
    .expect("mr");
    let sent = files(&src);
    let scp_port = common::free_port();
    let orthanc = Orthanc::start(tmp.path(), &[("lightbox", "LIGHTBOX", scp_port)]);
    orthanc.upload(&sent);
    let config = tmp.path().join("lightbox.toml");
    std::fs::write(
        &config,
        format!(
            "ae_title = \"LIGHTBOX\"\nscp_port = {scp_port}\n\n[[nodes]]\nname = \"pacs\"\n\
             ae_title = \"ORTHANC\"\nhost = \"127.0.0.1\"\nport = {}\n",
            orthanc.dicom
        ),
    )
    .expect("config");
    let lb = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_lightbox"))
            .args(args)
            .env("LIGHTBOX_CONFIG", &config)
            .output()
            .expect("run lightbox");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (code, out, _) = lb(&["nodes"]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("pacs") && out.contains("ORTHANC@127.0.0.1"),
        "{out}"
    );
    let (code, out, err) = lb(&["echo", "pacs"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("0x0000 (success)") && out.contains("Study Root C-MOVE"),
        "{out}"
    );
    // Ad-hoc peer, the DCMTK way.
    let port = orthanc.dicom.to_string();
    let (code, out, err) = lb(&[
        "find",
        "--host",
        "127.0.0.1",
        "--port",
        &port,
        "--called-aet",
        "ORTHANC",
        "--patient-name",
        "PHANTOM*",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let study = header(&sent[0]).study_uid;
    assert!(
        out.contains(&study) && out.contains("PHANTOM^HEAD"),
        "{out}"
    );
    let (code, out, err) = lb(&[
        "find", "pacs", "--level", "series", "--study", &study, "--json",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("DICOM JSON");
    assert_eq!(
        v[0]["0020000E"]["Value"][0],
        header(&sent[0]).series_uid.as_str()
    );
    // A query that makes no sense is refused before anything is sent.
    let (code, _, err) = lb(&["find", "pacs", "--level", "image"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--study"), "{err}");
    let (code, _, err) = lb(&["find", "pacs", "--date", "2024-01-01"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("YYYYMMDD"), "{err}");
    let cache = tmp.path().join("cache");
    let cache_arg = cache.to_str().expect("utf8");
    let (code, out, err) = lb(&["retrieve", "pacs", "--study", &study, "--cache", cache_arg]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.starts_with("complete") && out.contains("8 of 8"),
        "{out}"
    );
    let (code, out, err) = lb(&[
        "retrieve", "pacs", "--study", &study, "--method", "get", "--cache", cache_arg,
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("8 already cached"), "{out}");
    let (_, out, _) = lb(&["cache", "--cache", cache_arg, "ls"]);
    assert!(out.contains(&study), "{out}");
}

#[test]
fn faults_give_clear_errors_and_partial_retrieves_resume() {
    let tmp = common::tempdir();
    let src = tmp.path().join("src");
    synth::write_ct(
        &src,
        &synth::CtSpec {
            slices: 300,
            size: 64,
            ..Default::default()
        },
    )
    .expect("ct");
    let sent = files(&src);
    let study = header(&sent[0]).study_uid;
    let scp_port = common::free_port();
    let mut orthanc = Orthanc::start(tmp.path(), &[("lightbox", "LIGHTBOX", scp_port)]);
    orthanc.upload(&sent);

    // Wrong called AE title: Orthanc rejects the association; the message says so.
    let e = scu::echo(&peer("NOT_ORTHANC", orthanc.dicom)).expect_err("wrong AE");
    assert!(e.to_string().contains("rejected"), "{e}");
    // Nothing listening.
    let e = scu::echo(&peer("ORTHANC", common::free_port())).expect_err("no server");
    assert!(e.to_string().contains("refused"), "{e}");
    // A server that accepts the connection and never answers: a timeout, not a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let silent_port = silent.local_addr().expect("addr").port();
    let hold = std::thread::Builder::new()
        .name("silent-peer".into())
        .spawn(move || {
            let c = silent.accept();
            std::thread::sleep(std::time::Duration::from_secs(4));
            drop(c);
        })
        .expect("start the silent peer");
    let mut p = peer("SILENT", silent_port);
    p.node.dimse_timeout_s = 1;
    p.node.connect_timeout_s = 1;
    let e = scu::echo(&p).expect_err("silent server");
    assert!(e.to_string().contains("SILENT"), "{e}");
    let _ = hold.join();

    // Unknown move destination: our AE is not among Orthanc's modalities.
    let mut stranger = peer("ORTHANC", orthanc.dicom);
    stranger.calling_ae = "STRANGER".into();
    stranger.node.get_fallback = false;
    let cache0 = tmp.path().join("cache0");
    let ingest = Arc::new(Ingest::start(&cache0, Durability::Batched).expect("ingest"));
    let req = Request {
        study_uid: study.clone(),
        series: vec![],
        method: RetrieveMethod::Move,
        parallel: 2,
        scp_port: common::free_port(),
        scp_bind: "127.0.0.1".into(),
        middle_first: true,
    };
    match retrieve::retrieve(&stranger, &req, &ingest, &AtomicBool::new(false), &|_| {}) {
        Ok(r) => panic!("unknown destination gave {}", brief(&r)),
        Err(e) => assert!(e.to_string().contains("does not know our AE title"), "{e}"),
    }
    // ... and with C-GET fallback allowed, the study comes anyway.
    stranger.node.get_fallback = true;
    let notes = std::sync::Mutex::new(Vec::new());
    let r = retrieve::retrieve(&stranger, &req, &ingest, &AtomicBool::new(false), &|p| {
        if let Progress::Note(n) = p {
            notes.lock().expect("lock").push(n);
        }
    })
    .expect("fallback");
    assert!(r.complete && r.method == "C-GET", "{}", brief(&r));
    assert!(
        notes
            .lock()
            .expect("lock")
            .iter()
            .any(|n| n.contains("C-GET"))
    );
    drop(ingest);

    // Orthanc killed mid-move: what arrived stays, the study is marked incomplete,
    // and after Orthanc is back the second retrieve fetches only what is missing.
    let cache = tmp.path().join("cache");
    let p = peer("ORTHANC", orthanc.dicom);
    let ingest = Arc::new(Ingest::start(&cache, Durability::Batched).expect("ingest"));
    let req = Request {
        parallel: 1,
        scp_port,
        ..req
    };
    let seen = AtomicUsize::new(0);
    let result = {
        let killer = std::sync::Mutex::new(Some(&mut orthanc));
        retrieve::retrieve(&p, &req, &ingest, &AtomicBool::new(false), &|ev| {
            if let Progress::Received { received, .. } = ev {
                seen.store(received, Ordering::Relaxed);
                if received >= 60
                    && let Some(o) = killer.lock().expect("lock").take()
                {
                    o.kill();
                }
            }
        })
    };
    assert!(seen.load(Ordering::Relaxed) >= 60);
    match &result {
        Ok(r) => assert!(!r.complete, "{}", brief(r)),
        Err(e) => assert!(e.to_string().contains("ORTHANC"), "{e}"),
    }
    drop(ingest);
    let store = Store::open(&cache).expect("open");
    assert!(store.verify().expect("verify").is_clean());
    let partial = store.sop_uids_of_study(&study).expect("cached").len();
    assert!((60..300).contains(&partial), "{partial} instances kept");
    // The middle image (by Instance Number) was fetched first: it is among them.
    let mut numbers: Vec<i64> = sent
        .iter()
        .filter_map(|f| header(f).instance_number)
        .collect();
    numbers.sort();
    let middle = numbers[numbers.len() / 2];
    let cached_numbers: Vec<i64> = store
        .series_of(&study)
        .expect("series")
        .iter()
        .flat_map(|se| store.instances_of(&se.series_uid).expect("instances"))
        .filter_map(|i| i.instance_number)
        .collect();
    assert!(
        cached_numbers.contains(&middle),
        "the middle image ({middle}) is not among the {partial} that arrived first"
    );
    assert_eq!(
        store.retrieval(&study).expect("state").map(|r| r.state),
        Some(RetrievalState::Incomplete)
    );
    drop(store);
    orthanc.restart();
    let r = run_retrieve(&p, &cache, &study, vec![], RetrieveMethod::Move, scp_port);
    assert!(r.complete, "{}", brief(&r));
    assert_eq!(r.already_cached, partial);
    assert_eq!(
        r.received,
        300 - partial,
        "only the missing instances were fetched"
    );
    assert_cached_identical(&cache, &sent);
}
