//! The retrieve operations on one association: opening it with the presentation
//! contexts a unit needs (for C-GET, one per storage class and transfer syntax, or
//! one compressed syntax at a time when a node converts what it sends), sending the
//! C-MOVE or C-GET request for a unit, and reading its responses — with, for C-GET,
//! the C-STORE sub-operations on the same association — until the final status,
//! which says whether the unit is done or must be tried another way ([`Outcome`]).

use std::sync::atomic::Ordering;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use super::Progress;
use super::fetch::Shared;
use super::plan::Unit;
use crate::error::{NetFailure, Result};
use crate::net::dimse::{self, Event, field};
use crate::net::inbound::{Inbound, Stored};
use crate::net::scu::{self, SubOps, sop};
use crate::net::{ACCEPTED_SYNTAXES, failure, status};

/// Open an association for `unit`: Study Root C-MOVE, or C-GET with the unit's
/// storage classes (SCP role) in the transfer syntaxes its `lead` asks for.
pub(super) fn open(shared: &Shared<'_>, use_get: bool, unit: &Unit) -> Result<scu::Association> {
    let ts = crate::net::uncompressed();
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

/// How a unit's request ended.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Done (whatever the node delivered is accounted for).
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

/// Fetch a unit by C-MOVE to our own AE title (our Storage SCP receives).
pub(super) fn move_unit(
    shared: &Shared<'_>,
    assoc: &mut scu::Association,
    unit: &Unit,
) -> Result<Outcome> {
    let peer = shared.peer;
    let Some((pc, ts)) = scu::context_for(assoc, sop::STUDY_ROOT_MOVE) else {
        return Err(failure(
            peer.label(),
            NetFailure::Rejected("the node does not offer C-MOVE (try --method get)".into()),
        ));
    };
    let id = scu::next_message_id();
    let mut rq = dimse::request(field::C_MOVE_RQ, id, sop::STUDY_ROOT_MOVE, true);
    dimse::put_us(&mut rq, tags::PRIORITY, 0);
    dimse::put_ae(&mut rq, tags::MOVE_DESTINATION, &peer.calling_ae);
    let data = dimse::encode_dataset(&identifier(&shared.req.study_uid, unit), &ts)
        .map_err(|k| failure(peer.label(), k))?;
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

/// Fetch a unit by C-GET: the objects come back on this association.
pub(super) fn get_unit(
    shared: &Shared<'_>,
    assoc: &mut scu::Association,
    unit: &Unit,
) -> Result<Outcome> {
    let peer = shared.peer;
    let Some((pc, ts)) = scu::context_for(assoc, sop::STUDY_ROOT_GET) else {
        return Err(failure(
            peer.label(),
            NetFailure::Rejected("the node does not offer C-GET".into()),
        ));
    };
    let id = scu::next_message_id();
    let mut rq = dimse::request(field::C_GET_RQ, id, sop::STUDY_ROOT_GET, true);
    dimse::put_us(&mut rq, tags::PRIORITY, 0);
    let data = dimse::encode_dataset(&identifier(&shared.req.study_uid, unit), &ts)
        .map_err(|k| failure(peer.label(), k))?;
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

/// The request whose responses are awaited.
struct InFlight<'a> {
    pc: u8,
    id: u16,
    ts: &'a str,
    series_uid: &'a str,
    /// C-GET only: may ask for another context order (see [`Outcome::Renegotiate`]).
    can_renegotiate: bool,
}

/// Read C-MOVE/C-GET responses until the final one (C-GET: with the C-STORE
/// sub-operations on the same association).
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
                return Err(failure(
                    peer.label(),
                    NetFailure::Aborted(
                        "the node aborted the association during the retrieve".into(),
                    ),
                ));
            }
            other => return Err(scu::unexpected(peer, assoc, "a retrieve response", &other)),
        }
    }
}

/// Account for one C-STORE sub-operation of a C-GET.
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
