//! Carrying out the plan: a queue of [`Unit`]s worked off by up to `parallel`
//! worker threads, each on an association of its own (C-MOVE associations are
//! reused from unit to unit; C-GET opens one per unit, with that unit's storage
//! classes). What the workers share — progress, counters, the cancel flag, the
//! switch from C-MOVE to C-GET — is [`Shared`]; the operations themselves are in
//! `ops`, the Storage SCP a C-MOVE sends to in `scp`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use super::ops::{self, Outcome};
use super::plan::Unit;
use super::scp::LocalScp;
use super::{Progress, Request};
use crate::config::RetrieveMethod;
use crate::error::{Error, NetFailure, Result};
use crate::net::dimse::Link;
use crate::net::scu::{self, Peer};
use crate::net::{failure, status};
use crate::store::Ingest;

/// Shared by the workers.
pub(super) struct Shared<'a> {
    pub(super) peer: &'a Peer,
    pub(super) req: &'a Request,
    pub(super) ingest: &'a Arc<Ingest>,
    pub(super) cancel: &'a AtomicBool,
    pub(super) progress: &'a (dyn Fn(Progress) + Sync),
    pub(super) queue: Mutex<Vec<Unit>>,
    /// Set when a C-MOVE was refused for its destination and C-GET takes over.
    pub(super) use_get: AtomicBool,
    pub(super) received: Mutex<HashSet<String>>,
    /// SOP instances our C-MOVE Storage SCP accepted, not yet counted.
    pub(super) inbox: Arc<Mutex<Vec<String>>>,
    pub(super) to_fetch: usize,
    pub(super) failed: AtomicUsize,
    pub(super) warnings: AtomicUsize,
    pub(super) failed_instances: Mutex<Vec<String>>,
    pub(super) problems: Mutex<Vec<String>>,
}

impl<'a> Shared<'a> {
    /// Nothing fetched yet; `units` are worked off in order.
    pub(super) fn new(
        peer: &'a Peer,
        req: &'a Request,
        ingest: &'a Arc<Ingest>,
        cancel: &'a AtomicBool,
        progress: &'a (dyn Fn(Progress) + Sync),
        units: Vec<Unit>,
        to_fetch: usize,
    ) -> Shared<'a> {
        Shared {
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
        }
    }

    /// The next units to work off (after the last ones are done).
    pub(super) fn refill(&self, units: Vec<Unit>) {
        if let Ok(mut q) = self.queue.lock() {
            *q = units.into_iter().rev().collect();
        }
    }

    pub(super) fn note_received(&self, sop: &str) {
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
    pub(super) fn drain_inbox(&self) {
        let got: Vec<String> = self
            .inbox
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default();
        for sop in got {
            self.note_received(&sop);
        }
    }

    pub(super) fn problem(&self, p: String) {
        (self.progress)(Progress::Note(p.clone()));
        if let Ok(mut v) = self.problems.lock() {
            v.push(p);
        }
    }
}

/// Run the units on up to `parallel` associations.
pub(super) fn fetch(shared: &Shared<'_>) -> Result<()> {
    let n_units = shared.queue.lock().map(|q| q.len()).unwrap_or(0);
    let workers = shared.req.parallel.max(1).min(n_units.max(1));
    // C-MOVE needs our Storage SCP listening; it feeds the same ingest.
    let scp = if shared.req.method == RetrieveMethod::Move {
        Some(LocalScp::start(shared)?)
    } else {
        None
    };
    let local = |what: String| failure(shared.peer.label(), NetFailure::Local(what));
    let errors: Vec<Error> = std::thread::scope(|scope| {
        let mut handles = Vec::new();
        let mut not_started = None;
        for _ in 0..workers {
            match std::thread::Builder::new()
                .name("retrieve-unit".into())
                .spawn_scoped(scope, || worker(shared))
            {
                Ok(h) => handles.push(h),
                Err(e) => not_started = Some(e),
            }
        }
        match not_started {
            // Not one worker: nothing can be fetched.
            Some(e) if handles.is_empty() => {
                return vec![local(format!("cannot start a retrieve worker: {e}"))];
            }
            // Fewer workers do the same work, more slowly.
            Some(e) => tracing::warn!(
                "retrieve: {} of {workers} worker(s) started: {e}",
                handles.len()
            ),
            None => {}
        }
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(local("a retrieve worker failed".into())),
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

/// One worker: units from the queue until it is empty or the retrieve is cancelled.
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
                conn = Some((use_get, ops::open(shared, use_get, &unit)?));
            }
            let Some((_, assoc)) = conn.as_mut() else {
                return Ok(());
            };
            let outcome = if use_get {
                ops::get_unit(shared, assoc, &unit)?
            } else {
                ops::move_unit(shared, assoc, &unit)?
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
                    return Err(failure(
                        shared.peer.label(),
                        NetFailure::Operation(format!(
                            "C-MOVE failed with status {} before sending anything: the node \
                             probably does not know our AE title {:?} (port {}) as a \
                             destination; add it to the node's configuration, or use \
                             --method get",
                            status::describe(st),
                            shared.peer.calling_ae,
                            shared.req.scp_port
                        )),
                    ));
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
