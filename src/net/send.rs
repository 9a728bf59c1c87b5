//! Sending objects to a node (C-STORE SCU): files, folders, or studies and
//! series from the cache.
//!
//! - **As stored.** Each object goes in its own transfer syntax: one presentation
//!   context per SOP class and stored transfer syntax, the data set's bytes
//!   streamed from the file after its meta group (never a whole object in
//!   memory), so the node receives what the file holds, byte for byte. Beside
//!   those, one context per SOP class offers the uncompressed syntaxes: used only
//!   when the node accepts nothing else for an object, which is then re-encoded
//!   (decompressed when it was compressed), and the report says so.
//! - **Parallel.** The node's `parallel` associations, each working off a
//!   shared queue; synchronous DIMSE on each (no asynchronous window).
//! - **Reported per object.** Success, warning (acknowledged, status kept) or
//!   failure (status and meaning); a refused context fails the objects that need
//!   it; an association the node aborts ends that worker, and what it had not
//!   sent is counted unsent.
//! - **Resumable.** What a node acknowledged is recorded in the cache's index
//!   ([`Store::record_sent`]) as it goes, keyed by the node's AE title and
//!   address; sending again skips it (unless forced), so a batch cut short is
//!   finished by running the same command again.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use dicom_core::dictionary::UidDictionary;
use dicom_dictionary_std::{StandardSopClassDictionary, tags};
use rayon::prelude::*;
use serde::Serialize;

use super::dimse::{self, Event, Link, field};
use super::scu::{self, Association, Peer};
use super::{EXPLICIT_LE, IMPLICIT_LE, failure, status};
use crate::dicom::{self, ReadMode};
use crate::error::{Error, NetFailure, Result};
use crate::store::{SentRecord, Store};

/// The Media Storage Directory class: a DICOMDIR indexes media, it is not sent.
const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// One object to send.
#[derive(Debug, Clone)]
pub struct Item {
    pub path: PathBuf,
    pub sop_class: String,
    pub sop_uid: String,
    /// The stored transfer syntax.
    pub transfer_syntax: String,
    /// Where the data set starts in the file, when its bytes are sent as they
    /// are (`None`: re-encoded, see [`dicom::dataset_start`]).
    pub offset: Option<u64>,
    /// Bytes of the data set (the file less its meta group).
    pub size: u64,
    /// For the audit trail: its study and patient (Patient ID, name).
    pub study_uid: String,
    pub patient_id: String,
    pub patient_name: String,
}

/// A file that is not sent, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What to send from a file: its classes and where its data set starts.
pub fn item_of(path: &Path) -> Result<Item> {
    let obj = dicom::open(path, ReadMode::HeaderOnly)?;
    let meta = obj.meta();
    let trim = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
    let sop_class = dicom::attr::string(&obj, tags::SOP_CLASS_UID)
        .unwrap_or_else(|| trim(&meta.media_storage_sop_class_uid));
    let sop_uid = dicom::attr::string(&obj, tags::SOP_INSTANCE_UID)
        .unwrap_or_else(|| trim(&meta.media_storage_sop_instance_uid));
    let unsupported = |what: &str| Error::Unsupported {
        path: path.to_path_buf(),
        what: what.to_string(),
    };
    if sop_class == MEDIA_STORAGE_DIRECTORY {
        return Err(unsupported(
            "a DICOMDIR indexes the media; it is not sent (its images are)",
        ));
    }
    if sop_class.is_empty() || sop_uid.is_empty() {
        return Err(unsupported("no SOP Class or SOP Instance UID"));
    }
    if let Err(e) = crate::net::find::check_uid("SOP Instance UID", &sop_uid) {
        return Err(unsupported(&e));
    }
    let transfer_syntax = trim(meta.transfer_syntax());
    let offset = dicom::dataset_start(path)?;
    let len = std::fs::metadata(path)
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    Ok(Item {
        path: path.to_path_buf(),
        sop_class,
        sop_uid,
        transfer_syntax,
        offset,
        size: len - offset.unwrap_or(0).min(len),
        study_uid: dicom::attr::string(&obj, tags::STUDY_INSTANCE_UID).unwrap_or_default(),
        patient_id: dicom::attr::string(&obj, tags::PATIENT_ID).unwrap_or_default(),
        patient_name: dicom::attr::string(&obj, tags::PATIENT_NAME).unwrap_or_default(),
    })
}

/// Every object under `paths` (files or folders, read in parallel); what is
/// not DICOM, a DICOMDIR, or a second copy of an instance is skipped with the
/// reason.
pub fn gather(paths: &[PathBuf]) -> (Vec<Item>, Vec<Skipped>) {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        match crate::scan::list_files(p) {
            Ok(mut f) => files.append(&mut f),
            Err(e) => skipped.push(Skipped {
                path: p.clone(),
                reason: format!("cannot list: {e}"),
            }),
        }
    }
    let (items, more) = read_items(files);
    skipped.extend(more);
    (items, skipped)
}

/// The objects of a cached study (or of some of its series).
pub fn from_cache(store: &Store, study_uid: &str, series: &[String]) -> Result<Vec<Item>> {
    let all = store.series_of(study_uid)?;
    if all.is_empty() {
        return Err(Error::Usage(format!(
            "study {study_uid} is not in the cache at {}",
            store.root().display()
        )));
    }
    for s in series {
        if !all.iter().any(|r| &r.series_uid == s) {
            return Err(Error::Usage(format!(
                "series {s} is not in the cached study {study_uid}"
            )));
        }
    }
    let mut paths = Vec::new();
    for s in all
        .iter()
        .filter(|r| series.is_empty() || series.contains(&r.series_uid))
    {
        for i in store.instances_of(&s.series_uid)? {
            paths.push(store.root().join(&i.path));
        }
    }
    let (items, skipped) = read_items(paths);
    if let Some(s) = skipped.first() {
        // A cached object that cannot be read is damage, not a choice.
        return Err(Error::Unsupported {
            path: s.path.clone(),
            what: format!(
                "{} (run `lightbox cache verify`); {} cached object(s) unreadable",
                s.reason,
                skipped.len()
            ),
        });
    }
    Ok(items)
}

/// Read the files in parallel into items (one per SOP instance, the first
/// copy kept) and what was skipped, with the reason.
fn read_items(files: Vec<PathBuf>) -> (Vec<Item>, Vec<Skipped>) {
    let read: Vec<(PathBuf, Result<Item>)> = files
        .into_par_iter()
        .map(|f| {
            let r = item_of(&f);
            (f, r)
        })
        .collect();
    dedupe(read)
}

fn dedupe(read: Vec<(PathBuf, Result<Item>)>) -> (Vec<Item>, Vec<Skipped>) {
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    for (path, r) in read {
        match r {
            Ok(item) => {
                if let Some(first) = seen.get(&item.sop_uid) {
                    skipped.push(Skipped {
                        reason: format!("the same SOP instance as {} (sent once)", first.display()),
                        path,
                    });
                } else {
                    seen.insert(item.sop_uid.clone(), path);
                    items.push(item);
                }
            }
            Err(e) => skipped.push(Skipped {
                reason: match &e {
                    Error::NotDicom { reason, .. } => format!("not DICOM: {reason}"),
                    Error::Unsupported { what, .. } => what.clone(),
                    other => other.to_string(),
                },
                path,
            }),
        }
    }
    (items, skipped)
}

/// How to send.
#[derive(Debug, Clone)]
pub struct Options {
    /// Associations at once.
    pub parallel: usize,
    /// Send even what the node acknowledged before.
    pub force: bool,
}

/// Progress, reported from worker threads.
#[derive(Debug, Clone)]
pub enum Progress {
    Planned {
        objects: usize,
        already_sent: usize,
    },
    /// Objects answered so far (any status) of those to send.
    Sent {
        done: usize,
        to_send: usize,
    },
    Note(String),
}

/// One object's outcome, where it is worth reporting.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub sop_uid: String,
    pub path: PathBuf,
    /// The C-STORE response status, when the node answered.
    pub status: Option<u16>,
    pub reason: String,
}

/// How a send ended.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub node: String,
    /// Objects asked for.
    pub objects: usize,
    /// Acknowledged by the node in an earlier send, not sent again.
    pub already_sent: usize,
    /// Acknowledged now (success or warning).
    pub sent: usize,
    /// Acknowledged with a warning status.
    pub warnings: Vec<Outcome>,
    /// Refused by the node, or not sendable (context refused, unreadable).
    pub failed: Vec<Outcome>,
    /// Never sent: the association ended (or the user cancelled) first.
    pub unsent: usize,
    /// Sent in another transfer syntax than stored, and why.
    pub transcoded: Vec<Outcome>,
    /// Association-level troubles (aborts, timeouts, a ledger not written).
    pub problems: Vec<String>,
    pub cancelled: bool,
    /// Every object asked for is now acknowledged by the node.
    pub complete: bool,
    pub bytes: u64,
    pub seconds: f64,
}

/// The ledger's key for a node: its AE title and address, not its local name.
pub fn node_key(peer: &Peer) -> String {
    let n = &peer.node;
    match n
        .url
        .as_deref()
        .filter(|_| crate::net::dicomweb::is_dicomweb(n))
    {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("{}@{}:{}", n.ae_title, n.host, n.port),
    }
}

/// A SOP class's name for messages ("CT Image Storage"), or its UID.
pub fn sop_class_name(uid: &str) -> String {
    StandardSopClassDictionary
        .by_uid(uid)
        .map(|e| e.name.to_string())
        .unwrap_or_else(|| uid.to_string())
}

/// The presentation contexts for some objects: one per SOP class and stored
/// transfer syntax, and per SOP class one offering the uncompressed syntaxes
/// (left out when the objects are all Explicit VR Little Endian already).
fn contexts_for(items: &[&Item]) -> Vec<(String, Vec<String>)> {
    let mut by_class: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for i in items {
        by_class
            .entry(&i.sop_class)
            .or_default()
            .insert(&i.transfer_syntax);
    }
    let mut out = Vec::new();
    for (class, syntaxes) in by_class {
        for ts in &syntaxes {
            out.push((class.to_string(), vec![ts.to_string()]));
        }
        if syntaxes.iter().any(|ts| *ts != EXPLICIT_LE) {
            out.push((
                class.to_string(),
                vec![EXPLICIT_LE.to_string(), IMPLICIT_LE.to_string()],
            ));
        }
    }
    out
}

/// Split the objects into groups whose contexts fit one association (127).
fn groups(items: &[usize], all: &[Item]) -> Vec<Vec<usize>> {
    let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for &i in items {
        by_class.entry(&all[i].sop_class).or_default().push(i);
    }
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut contexts = 0;
    for (_, idx) in by_class {
        let refs: Vec<&Item> = idx.iter().map(|&i| &all[i]).collect();
        let n = contexts_for(&refs).len();
        if contexts + n > 127 && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            contexts = 0;
        }
        contexts += n;
        current.extend(idx);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// How one object goes on an association.
enum Route {
    /// On context `pc`, as stored (`None`) or re-encoded in this syntax.
    Context(u8, Option<String>),
    /// No accepted context can carry it.
    Refused(String),
}

fn route(accepted: &[(u8, String, String)], item: &Item) -> Route {
    let stored = &item.transfer_syntax;
    if let Some((pc, _, _)) = accepted
        .iter()
        .find(|(_, a, t)| a == &item.sop_class && t == stored)
    {
        return Route::Context(*pc, item.offset.is_none().then(|| stored.clone()));
    }
    if let Some((pc, _, t)) = accepted
        .iter()
        .find(|(_, a, t)| a == &item.sop_class && (t == EXPLICIT_LE || t == IMPLICIT_LE))
    {
        return Route::Context(*pc, Some(t.clone()));
    }
    let class = sop_class_name(&item.sop_class);
    Route::Refused(if accepted.iter().any(|(_, a, _)| a == &item.sop_class) {
        format!(
            "the node accepts {class} only in other transfer syntaxes than {}",
            dicom::pixels::transfer_syntax_name(stored)
        )
    } else {
        format!("the node does not accept {class} (presentation context refused)")
    })
}

/// What the workers share.
struct Shared<'a> {
    peer: &'a Peer,
    items: &'a [Item],
    queue: Mutex<Vec<usize>>,
    cancel: &'a AtomicBool,
    progress: &'a (dyn Fn(Progress) + Sync),
    ledger: Option<Mutex<Store>>,
    key: String,
    to_send: usize,
    done: AtomicUsize,
    bytes: AtomicUsize,
    sent: AtomicUsize,
    opened: AtomicUsize,
    warnings: Mutex<Vec<Outcome>>,
    failed: Mutex<Vec<Outcome>>,
    transcoded: Mutex<Vec<Outcome>>,
    problems: Mutex<Vec<String>>,
    /// Fallbacks already told to the user: (class, stored syntax).
    told: Mutex<HashSet<(String, String)>>,
    first_error: Mutex<Option<Error>>,
}

fn push<T>(m: &Mutex<Vec<T>>, v: T) {
    if let Ok(mut g) = m.lock() {
        g.push(v);
    }
}

impl Shared<'_> {
    fn problem(&self, p: String) {
        (self.progress)(Progress::Note(p.clone()));
        push(&self.problems, p);
    }

    fn answered(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        (self.progress)(Progress::Sent {
            done,
            to_send: self.to_send,
        });
    }

    fn record(&self, acked: &mut Vec<SentRecord>) {
        if acked.is_empty() {
            return;
        }
        if let Some(l) = &self.ledger {
            let r = match l.lock() {
                Ok(mut s) => s.record_sent(&self.key, acked),
                Err(_) => Ok(()),
            };
            if let Err(e) = r {
                self.problem(format!(
                    "what the node acknowledged could not be recorded ({e}); \
                     sending again may resend it"
                ));
            }
        }
        acked.clear();
    }

    fn outcome(item: &Item, status: Option<u16>, reason: String) -> Outcome {
        Outcome {
            sop_uid: item.sop_uid.clone(),
            path: item.path.clone(),
            status,
            reason,
        }
    }
}

/// Send `items` to `peer`. What it acknowledged before (in `ledger`, unless
/// forced) is skipped; what it acknowledges now is recorded there. An error
/// only when no association could be opened at all (wrong AE title, nothing
/// listening): everything else is in the [`Report`].
pub fn send(
    peer: &Peer,
    items: Vec<Item>,
    ledger: Option<Store>,
    opts: &Options,
    cancel: &AtomicBool,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<Report> {
    let t0 = Instant::now();
    let key = node_key(peer);
    let audit_root = ledger.as_ref().map(|s| s.root().to_path_buf());
    let before = match &ledger {
        Some(store) if !opts.force => store.sent_to(&key)?,
        _ => HashMap::new(),
    };
    let todo: Vec<usize> = (0..items.len())
        .filter(|&i| before.get(&items[i].sop_uid) != Some(&items[i].size))
        .collect();
    let already_sent = items.len() - todo.len();
    progress(Progress::Planned {
        objects: items.len(),
        already_sent,
    });
    if crate::net::dicomweb::is_dicomweb(&peer.node) {
        let to_send = todo.len();
        let r = crate::net::dicomweb::stow(peer, &items, &todo, opts.parallel, cancel, &|done| {
            progress(Progress::Sent { done, to_send })
        })?;
        let mut problems = r.problems;
        if let Some(mut store) = ledger {
            let records: Vec<SentRecord> = r.acknowledged.iter().map(|(_, s)| s.clone()).collect();
            if let Err(e) = store.record_sent(&key, &records) {
                problems.push(format!("what the node acknowledged was not recorded: {e}"));
            }
        }
        let failed: Vec<Outcome> = r
            .failed
            .iter()
            .map(|(i, reason)| Outcome {
                sop_uid: items[*i].sop_uid.clone(),
                path: items[*i].path.clone(),
                status: None,
                reason: reason.clone(),
            })
            .collect();
        let cancelled = cancel.load(Ordering::Relaxed);
        let report = Report {
            node: peer.label(),
            objects: items.len(),
            already_sent,
            sent: r.acknowledged.len(),
            warnings: Vec::new(),
            complete: failed.is_empty() && r.unsent == 0 && !cancelled && problems.is_empty(),
            failed,
            unsent: r.unsent,
            transcoded: Vec::new(),
            problems,
            cancelled,
            bytes: r.bytes,
            seconds: t0.elapsed().as_secs_f64(),
        };
        audit(peer, &items, &todo, &report, audit_root.as_deref());
        return Ok(report);
    }
    let shared = Shared {
        peer,
        items: &items,
        queue: Mutex::new(Vec::new()),
        cancel,
        progress,
        ledger: ledger.map(Mutex::new),
        key,
        to_send: todo.len(),
        done: AtomicUsize::new(0),
        bytes: AtomicUsize::new(0),
        sent: AtomicUsize::new(0),
        opened: AtomicUsize::new(0),
        warnings: Mutex::new(Vec::new()),
        failed: Mutex::new(Vec::new()),
        transcoded: Mutex::new(Vec::new()),
        problems: Mutex::new(Vec::new()),
        told: Mutex::new(HashSet::new()),
        first_error: Mutex::new(None),
    };
    let mut attempted_groups = 0;
    for group in groups(&todo, &items) {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        attempted_groups += 1;
        let refs: Vec<&Item> = group.iter().map(|&i| &items[i]).collect();
        let contexts = contexts_for(&refs);
        // Worked off from the end: reverse so objects go in the order given.
        if let Ok(mut q) = shared.queue.lock() {
            *q = group.iter().rev().copied().collect();
        }
        let workers = opts.parallel.max(1).min(group.len());
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| worker(&shared, &contexts));
            }
        });
    }
    let unsent = todo.len() - shared.done.load(Ordering::Relaxed);
    if shared.opened.load(Ordering::Relaxed) == 0
        && attempted_groups > 0
        && let Some(e) = shared.first_error.lock().ok().and_then(|mut e| e.take())
    {
        return Err(e);
    }
    let take = |m: Mutex<Vec<Outcome>>| m.into_inner().unwrap_or_default();
    let failed = take(shared.failed);
    let cancelled = cancel.load(Ordering::Relaxed);
    let report = Report {
        node: peer.label(),
        objects: items.len(),
        already_sent,
        sent: shared.sent.load(Ordering::Relaxed),
        warnings: take(shared.warnings),
        complete: failed.is_empty() && unsent == 0 && !cancelled,
        failed,
        unsent,
        transcoded: take(shared.transcoded),
        problems: shared.problems.into_inner().unwrap_or_default(),
        cancelled,
        bytes: shared.bytes.load(Ordering::Relaxed) as u64,
        seconds: t0.elapsed().as_secs_f64(),
    };
    audit(peer, &items, &todo, &report, audit_root.as_deref());
    Ok(report)
}

/// The send in the audit trail: Lightbox (which asked) as the source, the node
/// as the destination, each study with the objects sent of it.
fn audit(peer: &Peer, items: &[Item], todo: &[usize], r: &Report, root: Option<&Path>) {
    use crate::audit::{Action, Event, EventId, Outcome, Role};
    if todo.is_empty() {
        return;
    }
    let n = &peer.node;
    let mut e = Event::new(
        EventId::InstancesTransferred,
        Action::Read,
        &peer.calling_ae,
        Role::Source,
    )
    .peer(&n.ae_title, &n.host, Role::Destination, false)
    .outcome(
        if r.complete {
            Outcome::Success
        } else if r.sent > 0 {
            Outcome::MinorFailure
        } else {
            Outcome::SeriousFailure
        },
        format!(
            "sent {} of {} object(s), {} failed, {} unsent",
            r.sent,
            todo.len(),
            r.failed.len(),
            r.unsent
        ),
    );
    let mut studies = crate::audit::Studies::default();
    for &i in todo {
        let it = &items[i];
        studies.add(&it.study_uid, &it.patient_id, &it.patient_name);
    }
    e = e.studies(&studies);
    match root {
        Some(root) => e.record(root),
        None => e.record_default(),
    }
}

/// One association: open it, send from the queue until it is empty, release.
fn worker(sh: &Shared<'_>, contexts: &[(String, Vec<String>)]) {
    let mut assoc = match scu::associate(sh.peer, contexts, &[]) {
        Ok(a) => a,
        Err(Error::Network {
            kind: NetFailure::Rejected(m),
            ..
        }) if m.contains("accepted none of the proposed services") => {
            // The node answered but refused every context: each object fails
            // with its SOP class named.
            sh.opened.fetch_add(1, Ordering::Relaxed);
            while let Some(idx) = sh.queue.lock().ok().and_then(|mut q| q.pop()) {
                let item = &sh.items[idx];
                if let Route::Refused(why) = route(&[], item) {
                    push(&sh.failed, Shared::outcome(item, None, why));
                }
                sh.answered();
            }
            return;
        }
        Err(e) => {
            sh.problem(format!("association not opened: {e}"));
            if let Ok(mut f) = sh.first_error.lock() {
                f.get_or_insert(e);
            }
            return;
        }
    };
    sh.opened.fetch_add(1, Ordering::Relaxed);
    let accepted: Vec<(u8, String, String)> = assoc
        .presentation_contexts()
        .iter()
        .map(|c| (c.id, c.abstract_syntax.clone(), c.transfer_syntax.clone()))
        .collect();
    let mut reader = dimse::Reader::default();
    let mut acked: Vec<SentRecord> = Vec::new();
    let mut alive = true;
    loop {
        if sh.cancel.load(Ordering::Relaxed) {
            break;
        }
        let Some(idx) = sh.queue.lock().ok().and_then(|mut q| q.pop()) else {
            break;
        };
        let item = &sh.items[idx];
        let (pc, reencode) = match route(&accepted, item) {
            Route::Context(pc, r) => (pc, r),
            Route::Refused(why) => {
                push(&sh.failed, Shared::outcome(item, None, why));
                sh.answered();
                continue;
            }
        };
        // A re-encoded object is made before anything goes on the wire, so an
        // object that cannot be decoded fails alone.
        let payload = match &reencode {
            None => None,
            Some(ts) => match dicom::transcode::native_dataset(&item.path, ts) {
                Ok((bytes, decompressed)) => {
                    if &item.transfer_syntax != ts {
                        note_transcoded(sh, item, ts, decompressed);
                    }
                    Some((bytes, ts.clone()))
                }
                Err(e) => {
                    push(
                        &sh.failed,
                        Shared::outcome(item, None, format!("cannot be re-encoded: {e}")),
                    );
                    sh.answered();
                    continue;
                }
            },
        };
        let sent_ts = payload
            .as_ref()
            .map(|(_, ts)| ts.clone())
            .unwrap_or_else(|| item.transfer_syntax.clone());
        match store_one(sh.peer, &mut assoc, &mut reader, pc, item, payload) {
            Ok((st, bytes)) => {
                sh.bytes.fetch_add(bytes as usize, Ordering::Relaxed);
                let class = match st {
                    status::SUCCESS => Some(false),
                    0x0001 | 0xB000..=0xBFFF => Some(true),
                    _ => None,
                };
                match class {
                    Some(warned) => {
                        sh.sent.fetch_add(1, Ordering::Relaxed);
                        if warned {
                            push(
                                &sh.warnings,
                                Shared::outcome(item, Some(st), status::describe(st)),
                            );
                        }
                        acked.push(SentRecord {
                            sop_uid: item.sop_uid.clone(),
                            size: item.size,
                            transfer_syntax: sent_ts,
                            status: st,
                        });
                        if acked.len() >= 64 {
                            sh.record(&mut acked);
                        }
                    }
                    None => push(
                        &sh.failed,
                        Shared::outcome(item, Some(st), status::describe(st)),
                    ),
                }
                sh.answered();
            }
            Err(StoreError::Local(e)) => {
                push(&sh.failed, Shared::outcome(item, None, e.to_string()));
                sh.answered();
            }
            Err(StoreError::Association(e)) => {
                push(
                    &sh.failed,
                    Shared::outcome(item, None, format!("not acknowledged: {e}")),
                );
                sh.answered();
                sh.problem(format!("association ended: {e}"));
                alive = false;
                break;
            }
        }
    }
    sh.record(&mut acked);
    if alive {
        scu::release(assoc);
    }
}

fn note_transcoded(sh: &Shared<'_>, item: &Item, ts: &str, decompressed: bool) {
    let reason = format!(
        "sent as {}{}: the node accepts no {} for {}",
        dicom::pixels::transfer_syntax_name(ts),
        if decompressed { " (decompressed)" } else { "" },
        dicom::pixels::transfer_syntax_name(&item.transfer_syntax),
        sop_class_name(&item.sop_class)
    );
    let first = sh
        .told
        .lock()
        .map(|mut t| t.insert((item.sop_class.clone(), item.transfer_syntax.clone())))
        .unwrap_or(false);
    if first {
        (sh.progress)(Progress::Note(reason.clone()));
    }
    push(&sh.transcoded, Shared::outcome(item, None, reason));
}

enum StoreError {
    /// This object only (its file could not be opened); the association is fine.
    Local(Error),
    /// The association is gone (aborted, timed out, a read failed mid-object).
    Association(Error),
}

/// C-STORE one object; its response status and the data set bytes sent.
fn store_one(
    peer: &Peer,
    assoc: &mut Association,
    reader: &mut dimse::Reader,
    pc: u8,
    item: &Item,
    payload: Option<(Vec<u8>, String)>,
) -> std::result::Result<(u16, u64), StoreError> {
    use std::io::{Seek, SeekFrom};
    let io = |source| {
        StoreError::Local(Error::Io {
            path: item.path.clone(),
            source,
        })
    };
    // Open (and position) the file before the command goes out.
    let file = match &payload {
        Some(_) => None,
        None => {
            let mut f = std::fs::File::open(&item.path).map_err(io)?;
            f.seek(SeekFrom::Start(item.offset.unwrap_or(0)))
                .map_err(io)?;
            Some(f)
        }
    };
    let id = scu::next_message_id();
    let mut rq = dimse::request(field::C_STORE_RQ, id, &item.sop_class, true);
    dimse::put_us(&mut rq, tags::PRIORITY, 0);
    dimse::put_ui(&mut rq, tags::AFFECTED_SOP_INSTANCE_UID, &item.sop_uid);
    let lost = StoreError::Association;
    dimse::send_message(assoc, pc, &rq, None).map_err(lost)?;
    let bytes = match (payload, file) {
        (Some((data, _)), _) => {
            dimse::send_data(assoc, pc, &data).map_err(lost)?;
            data.len() as u64
        }
        (None, Some(mut f)) => {
            let mut r = std::io::BufReader::with_capacity(256 * 1024, &mut f);
            dimse::send_data_from(assoc, pc, &mut r, item.size, &item.path).map_err(lost)?;
            item.size
        }
        (None, None) => 0,
    };
    match reader.next(assoc) {
        Ok(Event::Command { command, .. }) => {
            let f = dimse::int(&command, tags::COMMAND_FIELD).unwrap_or(0);
            let to = dimse::int(&command, tags::MESSAGE_ID_BEING_RESPONDED_TO);
            if f != field::C_STORE_RSP || to != Some(id) {
                assoc.abort_now();
                return Err(lost(failure(
                    peer.label(),
                    NetFailure::Operation(format!(
                        "answered C-STORE {} with a command 0x{f:04X} for message {to:?}; \
                         association aborted",
                        item.sop_uid
                    )),
                )));
            }
            let st = dimse::int(&command, tags::STATUS).unwrap_or(0xFFFF);
            Ok((st, bytes))
        }
        Ok(Event::Abort) => Err(lost(failure(
            peer.label(),
            NetFailure::Aborted(format!(
                "the node aborted the association before acknowledging {}",
                item.sop_uid
            )),
        ))),
        Ok(other) => Err(lost(scu::unexpected(
            peer,
            assoc,
            "the C-STORE response",
            &other,
        ))),
        Err(e) => Err(lost(scu::in_context(peer, e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(class: &str, ts: &str, uid: &str) -> Item {
        Item {
            path: PathBuf::from(uid),
            sop_class: class.into(),
            sop_uid: uid.into(),
            transfer_syntax: ts.into(),
            offset: Some(132),
            size: 10,
            study_uid: "1.2.3".into(),
            patient_id: String::new(),
            patient_name: String::new(),
        }
    }

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
    const JLS: &str = "1.2.840.10008.1.2.4.80";

    #[test]
    fn contexts_offer_each_stored_syntax_and_an_uncompressed_fallback() {
        let a = item(CT, JLS, "1.1");
        let b = item(CT, EXPLICIT_LE, "1.2");
        let c = item("1.2.840.10008.5.1.4.1.1.4", EXPLICIT_LE, "1.3");
        let ctx = contexts_for(&[&a, &b, &c]);
        assert_eq!(
            ctx,
            vec![
                (CT.to_string(), vec![EXPLICIT_LE.to_string()]),
                (CT.to_string(), vec![JLS.to_string()]),
                (
                    CT.to_string(),
                    vec![EXPLICIT_LE.to_string(), IMPLICIT_LE.to_string()]
                ),
                (
                    "1.2.840.10008.5.1.4.1.1.4".to_string(),
                    vec![EXPLICIT_LE.to_string()]
                ),
            ]
        );
    }

    #[test]
    fn objects_go_as_stored_then_re_encoded_then_refused() {
        let jls = item(CT, JLS, "1.1");
        let stored = [(1u8, CT.to_string(), JLS.to_string())];
        assert!(matches!(route(&stored, &jls), Route::Context(1, None)));
        let fallback = [(5u8, CT.to_string(), IMPLICIT_LE.to_string())];
        assert!(matches!(route(&fallback, &jls), Route::Context(5, Some(ts)) if ts == IMPLICIT_LE));
        match route(&[], &jls) {
            Route::Refused(why) => assert_eq!(
                why,
                "the node does not accept CT Image Storage (presentation context refused)"
            ),
            _ => panic!("expected a refusal"),
        }
        let other = [(3u8, CT.to_string(), "1.2.840.10008.1.2.4.90".to_string())];
        assert!(matches!(route(&other, &jls), Route::Refused(w) if w.contains("only in other")));
    }

    #[test]
    fn many_classes_are_split_to_fit_127_contexts() {
        let items: Vec<Item> = (0..100)
            .map(|i| item(&format!("1.2.3.{i}"), JLS, &format!("9.{i}")))
            .collect();
        let idx: Vec<usize> = (0..items.len()).collect();
        let g = groups(&idx, &items);
        assert_eq!(g.len(), 2, "two contexts per class, 200 in all");
        assert_eq!(g.iter().map(Vec::len).sum::<usize>(), 100);
        for part in &g {
            let refs: Vec<&Item> = part.iter().map(|&i| &items[i]).collect();
            assert!(contexts_for(&refs).len() <= 127);
        }
    }
}
