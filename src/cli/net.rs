//! Network subcommands: `echo`, `find`, `retrieve` (`nodes` is with `config`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;
use dicom_dictionary_std::tags;

use super::to_json;
use crate::config::{Config, Node, RetrieveMethod};
use crate::error::{Error, Result};
use crate::net::find::{self, Keys, Level, Match, Model, Query};
use crate::net::retrieve::{self, Progress, Request};
use crate::net::scu::{self, Peer};
use crate::store::Ingest;

/// Which node to talk to: a configured name, or an ad-hoc peer typed the DCMTK way.
#[derive(Debug, Args)]
pub struct Target {
    /// A node name from the configuration (see `lightbox nodes`).
    node: Option<String>,
    #[command(flatten)]
    adhoc: AdHoc,
}

/// An ad-hoc peer, our AE title and the timeout.
#[derive(Debug, Args)]
pub struct AdHoc {
    /// Ad-hoc peer: host (with --port and --called-aet).
    #[arg(long)]
    host: Option<String>,
    /// Ad-hoc peer: port.
    #[arg(long, requires = "host")]
    port: Option<u16>,
    /// Ad-hoc peer: its AE title (default ANY-SCP).
    #[arg(long = "called-aet", requires = "host")]
    called_aet: Option<String>,
    /// Ad-hoc peer: DICOM over TLS.
    #[arg(long, requires = "host")]
    tls: bool,
    /// Ad-hoc TLS peer: PEM file of the CAs to trust (or its certificate, pinned).
    #[arg(long = "tls-ca", requires = "tls")]
    tls_ca: Option<PathBuf>,
    /// Ad-hoc TLS peer: the name its certificate must carry (default: --host).
    #[arg(long = "tls-server-name", requires = "tls")]
    tls_server_name: Option<String>,
    /// Our AE title (default: ae_title from the configuration).
    #[arg(long)]
    aet: Option<String>,
    /// Seconds to wait for any answer (default: the node's dimse_timeout_s, 30).
    #[arg(long)]
    timeout: Option<u64>,
}

fn load_config() -> Result<Config> {
    crate::config::load(&crate::config::default_path())
}

fn resolve(target: &Target, cfg: &Config) -> Result<Peer> {
    let t = &target.adhoc;
    let mut node = match (&target.node, &t.host) {
        (Some(name), None) => cfg.node(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = cfg.nodes.iter().map(|n| n.name.as_str()).collect();
            Error::Usage(format!(
                "no node {name:?} in the configuration{} (or give --host, --port and --called-aet)",
                if known.is_empty() {
                    String::new()
                } else {
                    format!(" (known: {})", known.join(", "))
                }
            ))
        })?,
        (None, Some(host)) => {
            let port = t
                .port
                .ok_or_else(|| Error::Usage("--host needs --port".into()))?;
            let ae = t.called_aet.clone().unwrap_or_else(|| "ANY-SCP".into());
            if !crate::config::valid_ae_title(&ae) {
                return Err(Error::Usage(format!("{ae:?} is not a valid AE title")));
            }
            let mut n = Node::ad_hoc(host, port, &ae);
            n.tls = t.tls;
            n.tls_ca = t.tls_ca.clone();
            n.tls_server_name = t.tls_server_name.clone();
            n
        }
        _ => {
            return Err(Error::Usage(
                "name a configured node, or give --host, --port and --called-aet".into(),
            ));
        }
    };
    if let Some(s) = t.timeout {
        node.dimse_timeout_s = s;
        node.connect_timeout_s = node.connect_timeout_s.min(s);
    }
    let aet = t.aet.clone().unwrap_or_else(|| cfg.ae_title.0.clone());
    if !crate::config::valid_ae_title(&aet) {
        return Err(Error::Usage(format!("{aet:?} is not a valid AE title")));
    }
    Ok(Peer::new(node, &aet).with_identity(cfg.tls.0.clone()))
}

/// A flag Ctrl-C sets, saying `what` it does; a second Ctrl-C ends the program.
fn cancel_on_ctrl_c(what: &'static str) -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let c = Arc::clone(&cancel);
    let _ = ctrlc::set_handler(move || {
        if c.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
        eprintln!("{what} (Ctrl-C again to quit at once)...");
    });
    cancel
}

/// A progress bar on stderr in `template`.
fn progress_bar(template: &str) -> indicatif::ProgressBar {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

#[derive(Debug, Args)]
pub struct EchoArgs {
    #[command(flatten)]
    target: Target,
    #[arg(long)]
    json: bool,
}

fn sop_name(uid: &str) -> String {
    let name = match uid {
        "1.2.840.10008.1.1" => "Verification",
        scu::sop::STUDY_ROOT_FIND => "Study Root C-FIND",
        scu::sop::STUDY_ROOT_MOVE => "Study Root C-MOVE",
        scu::sop::STUDY_ROOT_GET => "Study Root C-GET",
        scu::sop::PATIENT_ROOT_FIND => "Patient Root C-FIND",
        scu::sop::PATIENT_ROOT_MOVE => "Patient Root C-MOVE",
        scu::sop::PATIENT_ROOT_GET => "Patient Root C-GET",
        _ => return uid.to_string(),
    };
    name.to_string()
}

pub fn cmd_echo(a: EchoArgs) -> Result<ExitCode> {
    let cfg = load_config()?;
    let peer = resolve(&a.target, &cfg)?;
    if crate::net::dicomweb::is_dicomweb(&peer.node) {
        let ms = crate::net::dicomweb::echo(&peer)?;
        if a.json {
            out!(
                "{}",
                to_json(serde_json::json!({"peer": peer.label(), "qido_ms": ms}))?
            );
        } else {
            out!("{}: DICOMweb QIDO-RS answered in {ms:.1} ms", peer.label());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let r = scu::echo(&peer)?;
    if a.json {
        out!("{}", to_json(&r)?);
    } else {
        out!(
            "{}: C-ECHO {} in {:.1} ms (association {:.1} ms), max PDU {}",
            r.peer,
            crate::net::status::describe(r.status),
            r.echo_ms,
            r.associate_ms,
            r.peer_max_pdu
        );
        for (a, ts) in &r.accepted {
            out!("  accepted  {:<20} {ts}", sop_name(a));
        }
        for a in &r.refused {
            out!("  refused   {}", sop_name(a));
        }
    }
    Ok(if r.status == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Args)]
pub struct FindArgs {
    #[command(flatten)]
    target: Target,
    /// patient, study, series or image.
    #[arg(long, default_value = "study")]
    level: Level,
    /// Information model: study (Study Root) or patient (Patient Root).
    #[arg(long, default_value = "study", value_parser = parse_model)]
    model: Model,
    /// Patient name; `*` and `?` are wildcards ('DOE*').
    #[arg(long)]
    patient_name: Option<String>,
    #[arg(long)]
    patient_id: Option<String>,
    #[arg(long)]
    accession: Option<String>,
    /// Study date (series date at series level): YYYYMMDD, or a range
    /// 20240101-, -20241231, 20240101-20241231.
    #[arg(long)]
    date: Option<String>,
    /// Modality (ModalitiesInStudy at study level).
    #[arg(long)]
    modality: Option<String>,
    #[arg(long)]
    study_description: Option<String>,
    /// Referring physician's name (wildcards allowed).
    #[arg(long)]
    referring: Option<String>,
    /// Body part examined (series level).
    #[arg(long)]
    body_part: Option<String>,
    /// Study Instance UID (needed below study level).
    #[arg(long)]
    study: Option<String>,
    /// Series Instance UID (needed at image level).
    #[arg(long)]
    series: Option<String>,
    /// SOP Instance UID.
    #[arg(long)]
    instance: Option<String>,
    /// Stop after this many answers (the query is cancelled with C-CANCEL).
    #[arg(long)]
    limit: Option<usize>,
    /// The answers in the DICOM JSON model.
    #[arg(long)]
    json: bool,
}

fn parse_model(s: &str) -> std::result::Result<Model, String> {
    match s.to_ascii_lowercase().as_str() {
        "study" | "study-root" => Ok(Model::StudyRoot),
        "patient" | "patient-root" => Ok(Model::PatientRoot),
        _ => Err(format!("model must be study or patient, not {s:?}")),
    }
}

pub fn cmd_find(a: FindArgs) -> Result<ExitCode> {
    let cfg = load_config()?;
    let peer = resolve(&a.target, &cfg)?;
    let model = if a.level == Level::Patient {
        Model::PatientRoot
    } else {
        a.model
    };
    let q = Query {
        model,
        level: a.level,
        keys: Keys {
            patient_name: a.patient_name,
            patient_id: a.patient_id,
            accession: a.accession,
            date: a.date,
            modality: a.modality,
            study_description: a.study_description,
            referring_physician: a.referring,
            body_part: a.body_part,
            study_uid: a.study,
            series_uid: a.series,
            sop_uid: a.instance,
        },
        limit: a.limit,
    };
    q.validate()?;
    let cancel = AtomicBool::new(false);
    let outcome = find::find(&peer, &q, &cancel, &mut |_| {})?;
    if a.json {
        let v: Vec<serde_json::Value> = outcome.matches.iter().map(Match::to_json).collect();
        out!("{}", to_json(&v)?);
    } else {
        print_table(q.level, &outcome.matches);
        let more = if outcome.cancelled {
            format!(" (stopped at --limit {})", q.limit.unwrap_or(0))
        } else {
            String::new()
        };
        eprintln!(
            "{} {} match(es) from {}{more}",
            outcome.matches.len(),
            q.level.code().to_lowercase(),
            peer.label()
        );
    }
    if outcome.partial_keys {
        eprintln!("warning: the node does not support some of the requested keys");
    }
    Ok(ExitCode::SUCCESS)
}

fn print_table(level: Level, matches: &[Match]) {
    let g = |m: &Match, t| m.get(t).unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = matches
        .iter()
        .map(|m| match level {
            Level::Patient => vec![
                g(m, tags::PATIENT_NAME),
                g(m, tags::PATIENT_ID),
                g(m, tags::PATIENT_BIRTH_DATE),
                g(m, tags::PATIENT_SEX),
                format!("{} studies", g(m, tags::NUMBER_OF_PATIENT_RELATED_STUDIES)),
            ],
            Level::Study => vec![
                g(m, tags::STUDY_DATE),
                g(m, tags::PATIENT_NAME),
                g(m, tags::PATIENT_ID),
                g(m, tags::ACCESSION_NUMBER),
                g(m, tags::MODALITIES_IN_STUDY),
                g(m, tags::STUDY_DESCRIPTION),
                format!(
                    "{} series, {} instances",
                    g(m, tags::NUMBER_OF_STUDY_RELATED_SERIES),
                    g(m, tags::NUMBER_OF_STUDY_RELATED_INSTANCES)
                ),
                g(m, tags::STUDY_INSTANCE_UID),
            ],
            Level::Series => vec![
                g(m, tags::SERIES_NUMBER),
                g(m, tags::MODALITY),
                g(m, tags::SERIES_DESCRIPTION),
                g(m, tags::BODY_PART_EXAMINED),
                format!(
                    "{} instances",
                    g(m, tags::NUMBER_OF_SERIES_RELATED_INSTANCES)
                ),
                g(m, tags::SERIES_INSTANCE_UID),
            ],
            Level::Image => vec![
                g(m, tags::INSTANCE_NUMBER),
                g(m, tags::SOP_CLASS_UID),
                g(m, tags::SOP_INSTANCE_UID),
            ],
        })
        .collect();
    let cols = rows.first().map(Vec::len).unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, v)| {
                if i + 1 == cols {
                    v.clone()
                } else {
                    format!("{v:<w$}", w = widths[i])
                }
            })
            .collect();
        out!("{}", line.join("  ").trim_end());
    }
}

#[derive(Debug, Args)]
pub struct RetrieveArgs {
    #[command(flatten)]
    target: Target,
    /// Study Instance UID.
    #[arg(long, required = true)]
    study: String,
    /// Only this series (repeatable).
    #[arg(long)]
    series: Vec<String>,
    /// move (C-MOVE to our Storage SCP) or get (C-GET); default: the node's.
    #[arg(long)]
    method: Option<RetrieveMethod>,
    /// C-MOVE: port our Storage SCP listens on (default: scp_port, 11112; for a
    /// TLS node, tls_port when set).
    #[arg(long)]
    scp_port: Option<u16>,
    /// C-MOVE: address our Storage SCP binds to.
    #[arg(long, default_value = "0.0.0.0")]
    scp_bind: String,
    /// Associations at once (default: the node's `parallel`, 4).
    #[arg(long)]
    parallel: Option<usize>,
    /// Fetch each series' middle image first (where a viewer opens the stack),
    /// for a study opened in the viewer while it arrives; costs an IMAGE level
    /// query per series (the viewer's own retrieves always do this).
    #[arg(long)]
    middle_first: bool,
    /// Cache folder.
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn cmd_retrieve(a: RetrieveArgs) -> Result<ExitCode> {
    let cfg = load_config()?;
    let peer = resolve(&a.target, &cfg)?;
    let root = a.cache.clone().unwrap_or_else(|| cfg.cache_root.0.clone());
    crate::audit::set_default_root(&root);
    let req = Request {
        study_uid: a.study.clone(),
        series: a.series.clone(),
        method: a.method.unwrap_or(peer.node.retrieve),
        parallel: a.parallel.unwrap_or(peer.node.parallel).max(1),
        // A TLS node sends C-MOVE sub-operations to our TLS port, if we have one.
        scp_port: a.scp_port.unwrap_or(match (peer.node.tls, cfg.tls_port.0) {
            (true, Some(p)) => p,
            _ => cfg.scp_port.0,
        }),
        scp_bind: a.scp_bind.clone(),
        middle_first: a.middle_first,
    };
    let ingest = Arc::new(Ingest::start(&root, cfg.durability.0)?);
    // Ctrl-C cancels (C-CANCEL); a second one ends the program.
    let cancel = cancel_on_ctrl_c("cancelling");
    let bar = progress_bar("{bar:40} {pos}/{len} instances {per_sec} {eta} {msg}");
    let progress = |p: Progress| match p {
        Progress::Planned {
            series,
            instances,
            already_cached,
        } => {
            bar.set_length((instances - already_cached) as u64);
            bar.set_message(format!(
                "{series} series, {instances} instances, {already_cached} already cached"
            ));
        }
        Progress::Received { received, .. } => bar.set_position(received as u64),
        Progress::SubOps { ops, .. } => bar.set_message(format!(
            "node: {} remaining, {} completed, {} failed, {} warning",
            ops.remaining, ops.completed, ops.failed, ops.warning
        )),
        Progress::Note(n) => bar.println(format!("note: {n}")),
    };
    let r = retrieve::retrieve(&peer, &req, &ingest, &cancel, &progress);
    bar.finish_and_clear();
    drop(ingest);
    let r = r?;
    if a.json {
        out!("{}", to_json(&r)?);
    } else {
        out!(
            "{} {}: {} of {} instance(s) in {} series now cached ({} received by {}, {} already cached) in {:.2} s{}",
            if r.complete { "complete" } else { "INCOMPLETE" },
            r.study_uid,
            r.expected - r.missing,
            r.expected,
            r.series,
            r.received,
            r.method,
            r.already_cached,
            r.seconds,
            if r.received > 0 && r.seconds > 0.0 {
                format!(" ({:.0} instances/s)", r.received as f64 / r.seconds)
            } else {
                String::new()
            }
        );
        for p in &r.problems {
            eprintln!("problem: {p}");
        }
        for f in r.failed_instances.iter().take(20) {
            eprintln!("failed: {f}");
        }
        if !r.complete {
            eprintln!("run the same command again to fetch only what is missing");
        }
    }
    Ok(if r.complete {
        ExitCode::SUCCESS
    } else if r.expected > r.missing {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// A node name from the configuration, then the files and folders to send
    /// (with --host: only files and folders). A DICOMDIR's folder sends its images.
    #[arg(value_name = "NODE|PATH")]
    args: Vec<String>,
    #[command(flatten)]
    adhoc: AdHoc,
    /// Send this study from the cache.
    #[arg(long)]
    study: Option<String>,
    /// Only this series of --study (repeatable).
    #[arg(long, requires = "study")]
    series: Vec<String>,
    /// Associations at once (default: the node's `parallel`, 4).
    #[arg(long)]
    parallel: Option<usize>,
    /// Send again what the node acknowledged before.
    #[arg(long)]
    force: bool,
    /// Cache folder (the study's source, and where what the node acknowledged is
    /// recorded).
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// The report as JSON.
    #[arg(long)]
    json: bool,
}

pub fn cmd_send(a: SendArgs) -> Result<ExitCode> {
    use crate::net::send::{self, Options};
    let cfg = load_config()?;
    let mut rest = a.args.clone();
    let node = if a.adhoc.host.is_none() && !rest.is_empty() {
        Some(rest.remove(0))
    } else {
        None
    };
    let target = Target {
        node,
        adhoc: a.adhoc,
    };
    let peer = resolve(&target, &cfg)?;
    let paths: Vec<PathBuf> = rest.iter().map(PathBuf::from).collect();
    if paths.is_empty() == a.study.is_none() {
        return Err(Error::Usage(
            "give files or folders to send, or --study UID (not both)".into(),
        ));
    }
    for p in &paths {
        if !p.exists() {
            return Err(Error::Usage(format!("{} does not exist", p.display())));
        }
    }
    let root = a.cache.clone().unwrap_or_else(|| cfg.cache_root.0.clone());
    crate::audit::set_default_root(&root);
    let (items, skipped, ledger) = match &a.study {
        Some(study) => {
            let store = crate::store::Store::open(&root)?;
            let items = send::from_cache(&store, study, &a.series)?;
            (items, Vec::new(), Some(store))
        }
        None => {
            let (items, skipped) = send::gather(&paths);
            let ledger = match crate::store::Store::open(&root) {
                Ok(s) => Some(s),
                Err(e) => {
                    eprintln!(
                        "warning: what the node acknowledges cannot be recorded ({e}); \
                         a second send will send everything again"
                    );
                    None
                }
            };
            (items, skipped, ledger)
        }
    };
    for s in skipped.iter().take(20) {
        eprintln!("skipped: {}: {}", s.path.display(), s.reason);
    }
    if skipped.len() > 20 {
        eprintln!("skipped: {} more", skipped.len() - 20);
    }
    if items.is_empty() {
        return Err(Error::Usage(format!(
            "nothing to send: no DICOM objects in {}",
            rest.join(", ")
        )));
    }
    let cancel = cancel_on_ctrl_c("stopping after the objects in flight");
    let bar = progress_bar("{bar:40} {pos}/{len} objects {per_sec} {eta} {msg}");
    let progress = |p: send::Progress| match p {
        send::Progress::Planned {
            objects,
            already_sent,
        } => {
            bar.set_length((objects - already_sent) as u64);
            if already_sent > 0 {
                bar.set_message(format!("{already_sent} already acknowledged"));
            }
        }
        send::Progress::Sent { done, .. } => bar.set_position(done as u64),
        send::Progress::Note(n) => bar.println(format!("note: {n}")),
    };
    let opts = Options {
        parallel: a.parallel.unwrap_or(peer.node.parallel).max(1),
        force: a.force,
    };
    let r = send::send(&peer, items, ledger, &opts, &cancel, &progress);
    bar.finish_and_clear();
    let r = r?;
    let acknowledged = r.sent + r.already_sent;
    if a.json {
        out!("{}", to_json(&r)?);
    } else {
        out!(
            "{} {} of {} object(s) acknowledged by {}: {} sent in {:.2} s{}{}",
            if r.complete { "complete" } else { "INCOMPLETE" },
            acknowledged,
            r.objects,
            r.node,
            r.sent,
            r.seconds,
            if r.sent > 0 && r.seconds > 0.0 {
                format!(
                    " ({:.0} objects/s, {:.1} MB/s)",
                    r.sent as f64 / r.seconds,
                    r.bytes as f64 / 1e6 / r.seconds
                )
            } else {
                String::new()
            },
            if r.already_sent > 0 {
                format!(", {} already acknowledged before", r.already_sent)
            } else {
                String::new()
            }
        );
        for w in r.warnings.iter().take(20) {
            eprintln!("warning: {}: {}", w.sop_uid, w.reason);
        }
        if !r.transcoded.is_empty() {
            eprintln!(
                "note: {} object(s) not sent as stored: {}",
                r.transcoded.len(),
                r.transcoded[0].reason
            );
        }
        for f in r.failed.iter().take(20) {
            eprintln!("failed: {} ({}): {}", f.sop_uid, f.path.display(), f.reason);
        }
        if r.failed.len() > 20 {
            eprintln!("failed: {} more", r.failed.len() - 20);
        }
        for p in &r.problems {
            eprintln!("problem: {p}");
        }
        if r.unsent > 0 {
            eprintln!(
                "{} object(s) not sent; run the same command again to send only what the node has not acknowledged",
                r.unsent
            );
        }
    }
    Ok(if r.complete {
        ExitCode::SUCCESS
    } else if acknowledged > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    })
}
