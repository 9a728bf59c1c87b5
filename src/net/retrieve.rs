//! Retrieving a study (or some of its series) from a PACS into the cache, by
//! C-MOVE to our own Storage SCP or by C-GET on the same association.
//!
//! 1. **Plan**: C-FIND the study's series (with their instance counts). A series
//!    of which something is cached (or whose count the node does not give) is also
//!    listed instance by instance and what the cache holds is subtracted — a second
//!    retrieve fetches only what is missing. A series of which nothing is cached is
//!    moved whole, sparing the node an IMAGE level query.
//! 2. **Fetch** over parallel associations (the node's `parallel`), one series (or
//!    one piece of a partly cached series, by UID list matching at IMAGE level) per
//!    request. Objects are stored as received (no transcoding): C-GET proposes one
//!    context per storage SOP class and transfer syntax, and if a node sends
//!    nothing that way (DCMTK converts to a context of its choosing), one
//!    compressed syntax at a time. A C-MOVE the node answers with a failure before
//!    sending anything (an unknown destination) falls back to C-GET when the node
//!    allows it.
//! 3. **Account**: the study is complete only when every final response said
//!    success, nothing failed, and every instance the node listed is in the cache;
//!    otherwise it is marked incomplete with the reason, and what arrived stays.
//!
//! The caller (CLI or GUI) gets [`Progress`] events from worker threads and can
//! cancel through an `AtomicBool` (C-CANCEL is sent for requests in flight).

use std::collections::{BTreeMap, HashSet};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use serde::Serialize;

use super::dimse::{self, Event, Link, field};
use super::find::{self, Level, Query};
use super::inbound::{Inbound, Stored};
use super::scp::{self, ScpConfig, ScpStats};
use super::scu::{self, Peer, SubOps, sop};
use super::{ACCEPTED_SYNTAXES, status};
use crate::config::RetrieveMethod;
use crate::error::{Error, Result};
use crate::store::{Ingest, Retrieval, RetrievalState, Store};

/// What to retrieve and how.
#[derive(Debug, Clone)]
pub struct Request {
    pub study_uid: String,
    /// Only these series (empty: the whole study).
    pub series: Vec<String>,
    pub method: RetrieveMethod,
    /// Associations at once.
    pub parallel: usize,
    /// C-MOVE: the port our Storage SCP listens on (the node must know our AE
    /// title at this address) and the address to bind it to.
    pub scp_port: u16,
    pub scp_bind: String,
}

/// Progress, reported from worker threads.
#[derive(Debug, Clone)]
pub enum Progress {
    /// The plan: instances the node lists, and how many are already cached.
    Planned {
        series: usize,
        instances: usize,
        already_cached: usize,
    },
    /// One more instance arrived (and was accepted).
    Received { received: usize, to_fetch: usize },
    /// A pending C-MOVE/C-GET response: the node's sub-operation counts for the
    /// request fetching (part of) `series_uid`.
    SubOps { series_uid: String, ops: SubOps },
    /// Something worth telling the user (a fallback, a failure).
    Note(String),
}

/// How a retrieve ended.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub study_uid: String,
    pub node: String,
    /// The method that fetched (after any fallback).
    pub method: String,
    pub series: usize,
    /// Instances the node listed.
    pub expected: usize,
    pub already_cached: usize,
    /// Instances received in this retrieve.
    pub received: usize,
    /// Sub-operations the node reported failed / with warnings.
    pub failed: u32,
    pub warnings: u32,
    /// SOP instances named as failed (by the node or by our side).
    pub failed_instances: Vec<String>,
    /// Instances the node listed that are still not in the cache ...
    pub missing: usize,
    /// ... and their SOP Instance UIDs, where known.
    pub missing_instances: Vec<String>,
    pub complete: bool,
    pub cancelled: bool,
    /// Why the study is incomplete, when it is.
    pub problems: Vec<String>,
    pub seconds: f64,
}

/// One instance the node lists.
#[derive(Debug, Clone)]
struct Remote {
    sop: String,
    class: Option<String>,
}

/// A piece of work for one request.
#[derive(Debug, Clone)]
struct Unit {
    series_uid: String,
    /// Empty: the whole series.
    sops: Vec<String>,
    classes: Vec<String>,
    /// C-GET: 0 proposes the uncompressed syntaxes first; k > 0 puts the k-th
    /// compressed syntax first (see [`open`]).
    lead: usize,
}

/// Shared by the workers.
struct Shared<'a> {
    peer: &'a Peer,
    req: &'a Request,
    ingest: &'a Arc<Ingest>,
    cancel: &'a AtomicBool,
    progress: &'a (dyn Fn(Progress) + Sync),
    queue: Mutex<Vec<Unit>>,
    /// Set when a C-MOVE was refused for its destination and C-GET takes over.
    use_get: AtomicBool,
    received: Mutex<HashSet<String>>,
    /// SOP instances our C-MOVE Storage SCP accepted, not yet counted.
    inbox: Arc<Mutex<Vec<String>>>,
    to_fetch: usize,
    failed: AtomicUsize,
    warnings: AtomicUsize,
    failed_instances: Mutex<Vec<String>>,
    problems: Mutex<Vec<String>>,
}

impl Shared<'_> {
    fn note_received(&self, sop: &str) {
        let n = match self.received.lock() {
            Ok(mut r) => {
                r.insert(sop.to_string());
                r.len()
            }
            Err(_) => return,
        };
        (self.progress)(Progress::Received {
            received: n,
            to_fetch: self.to_fetch,
        });
    }

    /// Count what the C-MOVE Storage SCP received since the last call.
    fn drain_inbox(&self) {
        let got: Vec<String> = self
            .inbox
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for sop in got {
            self.note_received(&sop);
        }
    }

    fn problem(&self, p: String) {
        (self.progress)(Progress::Note(p.clone()));
        if let Ok(mut v) = self.problems.lock() {
            v.push(p);
        }
    }
}

/// Retrieve a study from `peer` into the cache behind `ingest`.
pub fn retrieve(
    peer: &Peer,
    req: &Request,
    ingest: &Arc<Ingest>,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report> {
    let t0 = Instant::now();
    if let Err(e) = find::check_uid("study UID", &req.study_uid) {
        return Err(Error::Usage(e));
    }
    let root = ingest.root().to_path_buf();
    let store = Store::open(&root)?;
    // 1. Plan.
    let cached = store.sop_uids_of_study(&req.study_uid)?;
    let cached_in = |series: &str| -> Result<HashSet<String>> {
        Ok(store
            .instances_of(series)?
            .into_iter()
            .map(|i| i.sop_uid)
            .collect())
    };
    let plan = plan(peer, req, cancel, &cached_in)?;
    tracing::debug!(
        "retrieve: planned in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let expected: usize = plan.values().map(|p| p.count).sum();
    let already_cached: usize = plan.values().map(|p| p.cached).sum();
    progress(Progress::Planned {
        series: plan.len(),
        instances: expected,
        already_cached,
    });
    let units = make_units(&plan, &cached, req.parallel.max(1));
    let to_fetch = expected.saturating_sub(already_cached);
    store.set_retrieval(&Retrieval {
        study_uid: req.study_uid.clone(),
        node: peer.node.name.clone(),
        state: RetrievalState::InProgress,
        expected,
        cached: already_cached,
        note: None,
    })?;
    let shared = Shared {
        peer,
        req,
        ingest,
        cancel,
        progress,
        queue: Mutex::new(units.into_iter().rev().collect()),
        use_get: AtomicBool::new(req.method == RetrieveMethod::Get),
        received: Mutex::new(HashSet::new()),
        inbox: Arc::new(Mutex::new(Vec::new())),
        to_fetch,
        failed: AtomicUsize::new(0),
        warnings: AtomicUsize::new(0),
        failed_instances: Mutex::new(Vec::new()),
        problems: Mutex::new(Vec::new()),
    };
    // 2. Fetch.
    if to_fetch > 0 {
        fetch(&shared)?;
    }
    tracing::debug!(
        "retrieve: fetched in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    // 3. Account: everything received is durable and indexed first.
    if let Err(e) = ingest.flush() {
        shared.problem(e.to_string());
    }
    tracing::debug!(
        "retrieve: durable in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let cached = store.sop_uids_of_study(&req.study_uid)?;
    let mut missing = 0;
    let mut missing_instances = Vec::new();
    for (series, p) in &plan {
        match &p.listed {
            Some(list) => {
                let gone: Vec<String> = list
                    .iter()
                    .filter(|r| !cached.contains(&r.sop))
                    .map(|r| r.sop.clone())
                    .collect();
                missing += gone.len();
                missing_instances.extend(gone);
            }
            None => {
                let have = cached_in(series)?.len();
                if have < p.count {
                    missing += p.count - have;
                    // Name them if the node still answers.
                    if let Ok(list) = list_images(peer, &req.study_uid, series, cancel) {
                        missing_instances.extend(
                            list.into_iter()
                                .filter(|r| !cached.contains(&r.sop))
                                .map(|r| r.sop),
                        );
                    }
                }
            }
        }
    }
    let received = shared.received.lock().map(|r| r.len()).unwrap_or(0);
    let failed = shared.failed.load(Ordering::Relaxed) as u32;
    let mut problems = shared
        .problems
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    let cancelled = cancel.load(Ordering::Relaxed);
    if cancelled {
        problems.push("cancelled".into());
    }
    if missing > 0 {
        problems.push(format!(
            "{missing} of {expected} instance(s) listed by the node are not in the cache"
        ));
    }
    let complete = missing == 0 && failed == 0 && problems.is_empty();
    store.set_retrieval(&Retrieval {
        study_uid: req.study_uid.clone(),
        node: peer.node.name.clone(),
        state: if complete {
            RetrievalState::Complete
        } else {
            RetrievalState::Incomplete
        },
        expected,
        cached: expected.saturating_sub(missing),
        note: (!problems.is_empty()).then(|| problems.join("; ")),
    })?;
    Ok(Report {
        study_uid: req.study_uid.clone(),
        node: peer.label(),
        method: if shared.use_get.load(Ordering::Relaxed) {
            "C-GET"
        } else {
            "C-MOVE"
        }
        .into(),
        series: plan.len(),
        expected,
        already_cached,
        received,
        failed,
        warnings: shared.warnings.load(Ordering::Relaxed) as u32,
        failed_instances: shared
            .failed_instances
            .lock()
            .map(|v| v.clone())
            .unwrap_or_default(),
        missing,
        missing_instances,
        complete,
        cancelled,
        problems,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// What the node holds of one series.
#[derive(Debug)]
struct SeriesPlan {
    /// Instances the node has.
    count: usize,
    /// Of them, already cached.
    cached: usize,
    /// Its instances, when listed (not for a series nothing of which is cached and
    /// whose count the node gave: it is moved whole, sparing the node a query).
    listed: Option<Vec<Remote>>,
}

/// The study's series and what the node holds of each.
fn plan(
    peer: &Peer,
    req: &Request,
    cancel: &AtomicBool,
    cached_in: &dyn Fn(&str) -> Result<HashSet<String>>,
) -> Result<BTreeMap<String, SeriesPlan>> {
    let ts = super::uncompressed();
    let mut assoc = scu::associate(peer, &[(sop::STUDY_ROOT_FIND.to_string(), ts)], &[])?;
    let result = (|| {
        let mut q = Query::new(Level::Series);
        q.keys.study_uid = Some(req.study_uid.clone());
        let series = find::find_on(peer, &mut assoc, &q, cancel, &mut |_| {})?;
        let mut out = BTreeMap::new();
        for m in &series.matches {
            let Some(uid) = m.get(tags::SERIES_INSTANCE_UID) else {
                continue;
            };
            if !req.series.is_empty() && !req.series.contains(&uid) {
                continue;
            }
            let have = cached_in(&uid)?;
            let count = m
                .count(tags::NUMBER_OF_SERIES_RELATED_INSTANCES)
                .filter(|&c| c > 0);
            let plan = match count {
                Some(count) if have.is_empty() => SeriesPlan {
                    count,
                    cached: 0,
                    listed: None,
                },
                _ => {
                    let list = images_on(peer, &mut assoc, &req.study_uid, &uid, cancel)?;
                    SeriesPlan {
                        count: list.len(),
                        cached: list.iter().filter(|r| have.contains(&r.sop)).count(),
                        listed: Some(list),
                    }
                }
            };
            out.insert(uid, plan);
        }
        Ok(out)
    })();
    match &result {
        Ok(_) => scu::release(assoc),
        Err(_) => assoc.abort_now(),
    }
    let out = result?;
    if out.is_empty() {
        return Err(Error::Net(if req.series.is_empty() {
            format!("{}: no study {} on this node", peer.label(), req.study_uid)
        } else {
            format!(
                "{}: study {} has none of the series asked for",
                peer.label(),
                req.study_uid
            )
        }));
    }
    if let Some(s) = req.series.iter().find(|s| !out.contains_key(*s)) {
        return Err(Error::Net(format!(
            "{}: study {} has no series {s}",
            peer.label(),
            req.study_uid
        )));
    }
    Ok(out)
}

/// A series' instances (IMAGE level C-FIND on an open association).
fn images_on(
    peer: &Peer,
    assoc: &mut scu::Association,
    study: &str,
    series: &str,
    cancel: &AtomicBool,
) -> Result<Vec<Remote>> {
    let mut q = Query::new(Level::Image);
    q.keys.study_uid = Some(study.to_string());
    q.keys.series_uid = Some(series.to_string());
    let images = find::find_on(peer, assoc, &q, cancel, &mut |_| {})?;
    Ok(images
        .matches
        .iter()
        .filter_map(|m| {
            m.get(tags::SOP_INSTANCE_UID).map(|sop| Remote {
                sop,
                class: m.get(tags::SOP_CLASS_UID),
            })
        })
        .collect())
}

/// A series' instances, on an association of its own.
fn list_images(peer: &Peer, study: &str, series: &str, cancel: &AtomicBool) -> Result<Vec<Remote>> {
    let ts = super::uncompressed();
    let mut assoc = scu::associate(peer, &[(sop::STUDY_ROOT_FIND.to_string(), ts)], &[])?;
    let r = images_on(peer, &mut assoc, study, series, cancel);
    scu::release(assoc);
    r
}

/// Split the missing instances into work for `parallel` associations: whole
/// series where nothing of them is cached and nothing was listed, else lists of
/// instances in pieces of about (instances to fetch) / `parallel`.
fn make_units(
    plan: &BTreeMap<String, SeriesPlan>,
    cached: &HashSet<String>,
    parallel: usize,
) -> Vec<Unit> {
    let total: usize = plan.values().map(|p| p.count - p.cached).sum();
    let piece = total.div_ceil(parallel).max(1);
    let mut units = Vec::new();
    for (series, p) in plan {
        let Some(list) = &p.listed else {
            units.push(Unit {
                series_uid: series.clone(),
                sops: Vec::new(),
                classes: Vec::new(),
                lead: 0,
            });
            continue;
        };
        let todo: Vec<&Remote> = list.iter().filter(|r| !cached.contains(&r.sop)).collect();
        if todo.is_empty() {
            continue;
        }
        let classes = |l: &[&Remote]| {
            let mut c: Vec<String> = l.iter().filter_map(|r| r.class.clone()).collect();
            c.sort();
            c.dedup();
            c
        };
        if todo.len() == list.len() && todo.len() <= piece {
            units.push(Unit {
                series_uid: series.clone(),
                sops: Vec::new(),
                classes: classes(&todo),
                lead: 0,
            });
        } else {
            for chunk in todo.chunks(piece) {
                units.push(Unit {
                    series_uid: series.clone(),
                    sops: chunk.iter().map(|r| r.sop.clone()).collect(),
                    classes: classes(chunk),
                    lead: 0,
                });
            }
        }
    }
    units
}

/// Run the units on up to `parallel` associations.
fn fetch(shared: &Shared<'_>) -> Result<()> {
    let n_units = shared.queue.lock().map(|q| q.len()).unwrap_or(0);
    let workers = shared.req.parallel.max(1).min(n_units.max(1));
    // C-MOVE needs our Storage SCP listening; it feeds the same ingest.
    let scp = if shared.req.method == RetrieveMethod::Move {
        Some(LocalScp::start(shared)?)
    } else {
        None
    };
    let errors: Vec<Error> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| worker(shared)))
            .collect();
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(Error::Net("a retrieve worker failed".into())),
            })
            .collect()
    });
    tracing::debug!(
        "retrieve: last response after {:?}",
        std::time::Instant::now()
    );
    if let Some(scp) = scp {
        scp.stop();
    }
    shared.drain_inbox();
    for e in &errors {
        shared.problem(e.to_string());
    }
    // Nothing at all came: report the first error as the failure of the retrieve.
    let nothing = shared.received.lock().map(|r| r.is_empty()).unwrap_or(true);
    match errors.into_iter().next() {
        Some(e) if nothing => Err(e),
        _ => Ok(()),
    }
}

fn worker(shared: &Shared<'_>) -> Result<()> {
    let mut conn: Option<(bool, scu::Association)> = None;
    let result = (|| {
        loop {
            if shared.cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            let Some(unit) = shared.queue.lock().ok().and_then(|mut q| q.pop()) else {
                return Ok(());
            };
            let use_get = shared.use_get.load(Ordering::Relaxed);
            // C-GET needs the unit's storage classes on the association: one per unit.
            if (use_get || conn.as_ref().is_some_and(|(g, _)| *g != use_get))
                && let Some((_, a)) = conn.take()
            {
                scu::release(a);
            }
            if conn.is_none() {
                conn = Some((use_get, open(shared, use_get, &unit)?));
            }
            let Some((_, assoc)) = conn.as_mut() else {
                return Ok(());
            };
            let outcome = if use_get {
                get_unit(shared, assoc, &unit)?
            } else {
                move_unit(shared, assoc, &unit)?
            };
            if outcome == Outcome::Renegotiate {
                if let Ok(mut q) = shared.queue.lock() {
                    q.push(Unit {
                        lead: unit.lead + 1,
                        ..unit
                    });
                }
                continue;
            }
            if let Outcome::DestinationRefused(st) = outcome {
                if shared.peer.node.get_fallback {
                    if !shared.use_get.swap(true, Ordering::Relaxed) {
                        (shared.progress)(Progress::Note(format!(
                            "{} sent nothing for C-MOVE to {} (status {}); retrieving with C-GET",
                            shared.peer.label(),
                            shared.peer.calling_ae,
                            status::describe(st)
                        )));
                    }
                    if let Ok(mut q) = shared.queue.lock() {
                        q.push(unit);
                    }
                } else {
                    return Err(Error::Net(format!(
                        "{}: C-MOVE failed with status {} before sending anything: the node \
                         probably does not know our AE title {:?} (port {}) as a destination; \
                         add it to the node's configuration, or use --method get",
                        shared.peer.label(),
                        status::describe(st),
                        shared.peer.calling_ae,
                        shared.req.scp_port
                    )));
                }
            }
        }
    })();
    if let Some((_, a)) = conn {
        match &result {
            Ok(()) => scu::release(a),
            Err(_) => {
                let mut a = a;
                a.abort_now();
            }
        }
    }
    result
}

fn open(shared: &Shared<'_>, use_get: bool, unit: &Unit) -> Result<scu::Association> {
    let ts = super::uncompressed();
    if !use_get {
        return scu::associate(shared.peer, &[(sop::STUDY_ROOT_MOVE.to_string(), ts)], &[]);
    }
    let mut contexts = vec![(sop::STUDY_ROOT_GET.to_string(), ts)];
    let classes = if unit.classes.is_empty() {
        COMMON_STORAGE.iter().map(|s| s.to_string()).collect()
    } else {
        unit.classes.clone()
    };
    // One context per class and transfer syntax (a node that picks the context
    // matching what it holds sends it untranscoded), within the 127 a requestor
    // may propose. DCMTK sends on an accepted context of the class of its own
    // choosing (uncompressed first) and converts, which fails for compressed files
    // it cannot decode: then the unit comes back with `lead` > 0 and only the
    // lead-th compressed syntax is proposed.
    let order: Vec<&str> = match unit.lead {
        0 => ACCEPTED_SYNTAXES.to_vec(),
        k => COMPRESSED_SYNTAXES
            .get(k - 1)
            .into_iter()
            .copied()
            .collect(),
    };
    let per_class = (126 / classes.len().max(1)).clamp(1, order.len());
    for c in &classes {
        for ts in order.iter().take(per_class) {
            contexts.push((c.clone(), vec![ts.to_string()]));
        }
    }
    contexts.truncate(127);
    scu::associate(shared.peer, &contexts, &classes)
}

/// The compressed syntaxes tried first, in turn, when a C-GET delivers nothing.
const COMPRESSED_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.4.90",
    "1.2.840.10008.1.2.4.80",
    "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.91",
    "1.2.840.10008.1.2.4.81",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.5",
    "1.2.840.10008.1.2.1.99",
];

/// Storage classes proposed for C-GET when the node did not say which it holds.
const COMMON_STORAGE: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.2",     // CT
    "1.2.840.10008.5.1.4.1.1.4",     // MR
    "1.2.840.10008.5.1.4.1.1.1",     // CR
    "1.2.840.10008.5.1.4.1.1.1.1",   // DX
    "1.2.840.10008.5.1.4.1.1.1.2",   // MG
    "1.2.840.10008.5.1.4.1.1.6.1",   // US
    "1.2.840.10008.5.1.4.1.1.7",     // Secondary Capture
    "1.2.840.10008.5.1.4.1.1.128",   // PET
    "1.2.840.10008.5.1.4.1.1.88.22", // Enhanced SR
];

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// The C-MOVE failed before anything was sent to us (0xA801, or a failure
    /// status with no completed sub-operation: Orthanc answers an unknown
    /// destination with 0xC000): the node will not send to our AE title.
    DestinationRefused(u16),
    /// A C-GET whose sub-operations all failed with nothing delivered: try again
    /// with another syntax first (see [`open`]).
    Renegotiate,
}

/// The C-MOVE/C-GET identifier for a unit.
fn identifier(study: &str, unit: &Unit) -> InMemDicomObject {
    let mut o = InMemDicomObject::new_empty();
    let level = if unit.sops.is_empty() {
        "SERIES"
    } else {
        "IMAGE"
    };
    o.put(DataElement::new(
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        PrimitiveValue::from(level),
    ));
    o.put(DataElement::new(
        tags::STUDY_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(study),
    ));
    o.put(DataElement::new(
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        PrimitiveValue::from(unit.series_uid.as_str()),
    ));
    if !unit.sops.is_empty() {
        o.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::Strs(unit.sops.iter().cloned().collect()),
        ));
    }
    o
}

fn move_unit(shared: &Shared<'_>, assoc: &mut scu::Association, unit: &Unit) -> Result<Outcome> {
    let peer = shared.peer;
    let Some((pc, ts)) = scu::context_for(assoc, sop::STUDY_ROOT_MOVE) else {
        return Err(Error::Net(format!(
            "{}: the node does not offer C-MOVE (try --method get)",
            peer.label()
        )));
    };
    let id = scu::next_message_id();
    let mut rq = dimse::request(field::C_MOVE_RQ, id, sop::STUDY_ROOT_MOVE, true);
    dimse::put_us(&mut rq, tags::PRIORITY, 0);
    dimse::put_ae(&mut rq, tags::MOVE_DESTINATION, &peer.calling_ae);
    let data = dimse::encode_dataset(&identifier(&shared.req.study_uid, unit), &ts)?;
    dimse::send_message(assoc, pc, &rq, Some(&data))?;
    let rq = InFlight {
        pc,
        id,
        ts: &ts,
        series_uid: &unit.series_uid,
        can_renegotiate: false,
    };
    responses(shared, assoc, rq, None)
}

fn get_unit(shared: &Shared<'_>, assoc: &mut scu::Association, unit: &Unit) -> Result<Outcome> {
    let peer = shared.peer;
    let Some((pc, ts)) = scu::context_for(assoc, sop::STUDY_ROOT_GET) else {
        return Err(Error::Net(format!(
            "{}: the node does not offer C-GET",
            peer.label()
        )));
    };
    let id = scu::next_message_id();
    let mut rq = dimse::request(field::C_GET_RQ, id, sop::STUDY_ROOT_GET, true);
    dimse::put_us(&mut rq, tags::PRIORITY, 0);
    let data = dimse::encode_dataset(&identifier(&shared.req.study_uid, unit), &ts)?;
    dimse::send_message(assoc, pc, &rq, Some(&data))?;
    let mut inbound = Inbound::new(shared.ingest, &peer.node.ae_title, "c-get", 2 << 30);
    let can_renegotiate = unit.lead < COMPRESSED_SYNTAXES.len();
    let rq = InFlight {
        pc,
        id,
        ts: &ts,
        series_uid: &unit.series_uid,
        can_renegotiate,
    };
    responses(shared, assoc, rq, Some(&mut inbound))
}

/// Read C-MOVE/C-GET responses until the final one (C-GET: with the C-STORE
/// sub-operations on the same association).
/// The request whose responses are awaited.
struct InFlight<'a> {
    pc: u8,
    id: u16,
    ts: &'a str,
    series_uid: &'a str,
    /// C-GET only: may ask for another context order (see [`Outcome::Renegotiate`]).
    can_renegotiate: bool,
}

fn responses(
    shared: &Shared<'_>,
    assoc: &mut scu::Association,
    rq: InFlight<'_>,
    mut inbound: Option<&mut Inbound<'_>>,
) -> Result<Outcome> {
    let InFlight {
        pc,
        id,
        ts,
        series_uid,
        can_renegotiate,
    } = rq;
    let peer = shared.peer;
    let mut reader = dimse::Reader::default();
    let mut cancel_sent = false;
    // Sub-operations the node reported completed in pending responses.
    let mut delivered = 0u32;
    // C-GET: objects stored from this request.
    let mut stored_here = 0usize;
    loop {
        if !cancel_sent && shared.cancel.load(Ordering::Relaxed) {
            scu::send_cancel(assoc, pc, id)?;
            cancel_sent = true;
        }
        let ev = reader.next(assoc).map_err(|e| scu::in_context(peer, e))?;
        match ev {
            Event::Command { pc_id, command } => {
                let f = dimse::int(&command, tags::COMMAND_FIELD).unwrap_or(0);
                if f == field::C_STORE_RQ {
                    match inbound.as_deref_mut() {
                        Some(ib) => ib.begin(&*assoc, pc_id, command),
                        None => {
                            return Err(scu::unexpected(
                                peer,
                                assoc,
                                "a C-MOVE response",
                                &Event::Command { pc_id, command },
                            ));
                        }
                    }
                    continue;
                }
                if f != field::C_MOVE_RSP && f != field::C_GET_RSP {
                    return Err(scu::unexpected(
                        peer,
                        assoc,
                        "a retrieve response",
                        &Event::Command { pc_id, command },
                    ));
                }
                let st = dimse::int(&command, tags::STATUS).unwrap_or(0xFFFF);
                let ops = SubOps::from_command(&command);
                let failed_list = if dimse::has_data_set(&command) {
                    let (_, bytes) = reader
                        .read_dataset(assoc, 1 << 22)
                        .map_err(|e| scu::in_context(peer, e))?;
                    dimse::parse_dataset(&bytes, ts)
                        .ok()
                        .and_then(|o| {
                            o.get(tags::FAILED_SOP_INSTANCE_UID_LIST).and_then(|e| {
                                e.to_multi_str().ok().map(|v| {
                                    v.iter().map(|s| s.trim().to_string()).collect::<Vec<_>>()
                                })
                            })
                        })
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                shared.drain_inbox();
                delivered = delivered.max(ops.completed + ops.warning);
                if scu::is_pending(st) {
                    (shared.progress)(Progress::SubOps {
                        series_uid: series_uid.to_string(),
                        ops,
                    });
                    continue;
                }
                let is_failure = !matches!(
                    st,
                    status::SUCCESS | status::CANCEL | status::SUBOPS_WARNING
                ) && st & 0xF000 != 0xB000;
                if inbound.is_none()
                    && is_failure
                    && ops.completed == 0
                    && ops.warning == 0
                    && !cancel_sent
                    && (st == status::MOVE_DESTINATION_UNKNOWN || delivered == 0)
                {
                    return Ok(Outcome::DestinationRefused(st));
                }
                if can_renegotiate
                    && ops.completed == 0
                    && ops.warning == 0
                    && ops.failed > 0
                    && stored_here == 0
                    && !cancel_sent
                {
                    return Ok(Outcome::Renegotiate);
                }
                shared
                    .failed
                    .fetch_add(ops.failed as usize, Ordering::Relaxed);
                shared
                    .warnings
                    .fetch_add(ops.warning as usize, Ordering::Relaxed);
                if !failed_list.is_empty()
                    && let Ok(mut v) = shared.failed_instances.lock()
                {
                    v.extend(failed_list);
                }
                match st {
                    status::SUCCESS | status::CANCEL => {}
                    status::SUBOPS_WARNING => shared.problem(format!(
                        "{}: {} sub-operation(s) failed, {} with warnings",
                        peer.label(),
                        ops.failed,
                        ops.warning
                    )),
                    _ => {
                        let comment = dimse::string(&command, tags::ERROR_COMMENT)
                            .map(|c| format!(": {c}"))
                            .unwrap_or_default();
                        shared.problem(format!(
                            "{}: retrieve of series {series_uid} ended with status {}{comment}",
                            peer.label(),
                            status::describe(st)
                        ));
                    }
                }
                return Ok(Outcome::Done);
            }
            Event::Data { bytes, last, .. } => {
                let Some(ib) = inbound.as_deref_mut() else {
                    continue;
                };
                if let Some(stored) = ib.data(assoc, &bytes, last)? {
                    if stored.status == status::SUCCESS {
                        stored_here += 1;
                    }
                    record(shared, &stored);
                }
            }
            Event::Abort => {
                return Err(Error::Net(format!(
                    "{}: the node aborted the association during the retrieve",
                    peer.label()
                )));
            }
            other => return Err(scu::unexpected(peer, assoc, "a retrieve response", &other)),
        }
    }
}

fn record(shared: &Shared<'_>, stored: &Stored) {
    if stored.status == status::SUCCESS {
        shared.note_received(&stored.sop_instance_uid);
    } else {
        if let Ok(mut v) = shared.failed_instances.lock() {
            v.push(stored.sop_instance_uid.clone());
        }
        shared.problem(format!(
            "{}: not stored: {}",
            stored.sop_instance_uid,
            stored.error.clone().unwrap_or_default()
        ));
    }
}

/// Our Storage SCP for the duration of a C-MOVE.
struct LocalScp {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<()>>,
}

impl LocalScp {
    fn start(shared: &Shared<'_>) -> Result<LocalScp> {
        let req = shared.req;
        let listener = TcpListener::bind((req.scp_bind.as_str(), req.scp_port)).map_err(|e| {
            Error::Net(format!(
                "cannot listen on {}:{} for C-MOVE ({e}); is `lightbox listen` running on \
                 that port? use --scp-port, or --method get",
                req.scp_bind, req.scp_port
            ))
        })?;
        let mut cfg = ScpConfig::new(&shared.peer.calling_ae, shared.ingest.root());
        cfg.durability = shared.ingest.durability();
        let stop = Arc::new(AtomicBool::new(false));
        let sink = Arc::clone(&shared.inbox);
        let observer: scp::Observer = Arc::new(move |_calling: &str, s: &Stored| {
            if s.status == status::SUCCESS
                && let Ok(mut v) = sink.lock()
            {
                v.push(s.sop_instance_uid.clone());
            }
        });
        let ingest = Arc::clone(shared.ingest);
        let stop2 = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("lightbox-move-scp".into())
            .spawn(move || {
                scp::serve_with(
                    listener,
                    cfg,
                    ingest,
                    stop2,
                    Arc::new(ScpStats::default()),
                    Some(observer),
                )
            })
            .map_err(|e| Error::Net(format!("cannot start the Storage SCP: {e}")))?;
        Ok(LocalScp { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Ok(Err(e)) = self.thread.join() {
            tracing::warn!("Storage SCP for C-MOVE: {e}");
        }
    }
}
