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
//!
//! Where things are: `plan` decides what to fetch (pure, unit-tested) from what
//! `query` learns from the node; `fetch` runs the units on worker threads;
//! `ops` holds the C-MOVE and C-GET operations on one association; `scp` is
//! the Storage SCP that receives a C-MOVE. This file is the public face and the
//! accounting at the end.

mod fetch;
mod ops;
mod plan;
mod query;
mod scp;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde::Serialize;

use crate::config::RetrieveMethod;
use crate::error::{Error, Result};
use crate::net::scu::{Peer, SubOps};
use crate::store::{Ingest, Retrieval, RetrievalSeries, RetrievalState, Store};
use fetch::Shared;

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
    /// Fetch each series' middle image first (what a viewer opens a stack at),
    /// then the rest; costs the node an IMAGE level query per series.
    pub middle_first: bool,
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

/// Retrieve a study from `peer` into the cache behind `ingest`. A full disk is
/// [`Error::CacheFull`], naming the cache.
pub fn retrieve(
    peer: &Peer,
    req: &Request,
    ingest: &Arc<Ingest>,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report> {
    let r = retrieve_into(peer, req, ingest, cancel, progress)
        .map_err(|e| crate::store::full_or(ingest.root(), e));
    audit(peer, req, ingest.root(), &r);
    r
}

/// The retrieve in the audit trail: the node as the source, Lightbox (which
/// asked) as the destination, the study with what arrived.
fn audit(peer: &Peer, req: &Request, root: &std::path::Path, r: &Result<Report>) {
    use crate::audit::{Action, Event, EventId, Outcome, Role};
    let n = &peer.node;
    let e = Event::new(
        EventId::InstancesTransferred,
        Action::Create,
        &peer.calling_ae,
        Role::Destination,
    )
    .peer(&n.ae_title, &n.host, Role::Source, false);
    let e = match r {
        Ok(rep) if rep.complete => e
            .study(&req.study_uid, Some(rep.received as u64))
            .outcome(Outcome::Success, format!("{}, complete", rep.method)),
        Ok(rep) => e.study(&req.study_uid, Some(rep.received as u64)).outcome(
            Outcome::MinorFailure,
            format!("{}, incomplete: {}", rep.method, rep.problems.join("; ")),
        ),
        Err(err) => e
            .study(&req.study_uid, None)
            .outcome(Outcome::SeriousFailure, err.to_string()),
    };
    let who = Store::open(root)
        .ok()
        .and_then(|s| s.patient_of(&req.study_uid).ok().flatten());
    let e = match who {
        Some((id, name, _)) => e.patient(&id, &name),
        None => e,
    };
    e.record(root);
}

fn retrieve_into(
    peer: &Peer,
    req: &Request,
    ingest: &Arc<Ingest>,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report> {
    let t0 = Instant::now();
    if let Err(e) = crate::net::find::check_uid("study UID", &req.study_uid) {
        return Err(Error::Usage(e));
    }
    if crate::net::dicomweb::is_dicomweb(&peer.node) {
        return crate::net::dicomweb::retrieve(peer, req, ingest, cancel, progress);
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
    let plan = query::plan(peer, req, cancel, &cached_in)?;
    tracing::debug!(
        "retrieve: planned in {:.1} ms",
        t0.elapsed().as_secs_f64() * 1e3
    );
    let expected = plan.expected();
    let already_cached = plan.already_cached();
    progress(Progress::Planned {
        series: plan.series.len(),
        instances: expected,
        already_cached,
    });
    let units = plan.units(&cached, req.parallel.max(1), req.middle_first);
    let to_fetch = expected.saturating_sub(already_cached);
    // What each series should hold, and the image it opens at.
    let expect: Vec<RetrievalSeries> = plan
        .series
        .iter()
        .map(|(uid, p)| RetrievalSeries {
            series_uid: uid.clone(),
            expected: p.count,
            middle_sop: p
                .listed
                .as_deref()
                .and_then(plan::middle)
                .map(|r| r.sop.clone()),
        })
        .collect();
    store.set_retrieval_series(&req.study_uid, &expect)?;
    store.set_retrieval_instances(&req.study_uid, &plan.expected_instances())?;
    store.set_retrieval(&Retrieval {
        study_uid: req.study_uid.clone(),
        node: peer.node.name.clone(),
        state: RetrievalState::InProgress,
        expected,
        cached: already_cached,
        note: None,
    })?;
    // 2. Fetch: the middle images first (all of them before anything else).
    let (first, rest): (Vec<plan::Unit>, Vec<plan::Unit>) =
        units.into_iter().partition(|u| u.first);
    let shared = Shared::new(peer, req, ingest, cancel, progress, first, to_fetch);
    if to_fetch > 0 {
        if shared.queue.lock().is_ok_and(|q| !q.is_empty()) {
            fetch::fetch(&shared)?;
        }
        shared.refill(rest);
        fetch::fetch(&shared)?;
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
    for (series, p) in &plan.series {
        match &p.listed {
            Some(list) => {
                let gone = plan::not_cached(list, &cached);
                missing += gone.len();
                missing_instances.extend(gone);
            }
            None => {
                let have = cached_in(series)?.len();
                if have < p.count {
                    missing += p.count - have;
                    // Name them if the node still answers.
                    if let Ok(list) = query::list_images(peer, &req.study_uid, series, cancel) {
                        missing_instances.extend(plan::not_cached(&list, &cached));
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
        series: plan.series.len(),
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
