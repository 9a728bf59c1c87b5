//! The SCU side: associations to a PACS node (timeouts, TCP_NODELAY, clear errors
//! for refused connections, rejections and silence), C-ECHO, and the DIMSE
//! request/response loop that C-FIND, C-MOVE and C-GET share.

use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_ul::ClientAssociationOptions;
use serde::Serialize;

use super::dimse::{self, Assoc, Conn, Event, Link, field};
use super::{VERIFICATION, failure, status};
use crate::config::{Node, TlsIdentity};
use crate::error::{Error, NetFailure, Result};

/// Query/Retrieve information models (PS3.4 C.6).
pub mod sop {
    pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
    pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
    pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
    pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
    pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
    pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";
}

/// A node and the AE title we call it with.
#[derive(Debug, Clone)]
pub struct Peer {
    pub node: Node,
    pub calling_ae: String,
    /// Our TLS identity, sent to a TLS node that asks for a client certificate.
    pub identity: TlsIdentity,
}

impl Peer {
    pub fn new(node: Node, calling_ae: &str) -> Peer {
        Peer {
            node,
            calling_ae: calling_ae.to_string(),
            identity: TlsIdentity::default(),
        }
    }

    /// With our TLS identity (the configuration's `tls_certificate` and key).
    pub fn with_identity(mut self, identity: TlsIdentity) -> Peer {
        self.identity = identity;
        self
    }

    /// "NAME (AE@host:port)" for messages.
    pub fn label(&self) -> String {
        let n = &self.node;
        if let Some(url) = n.url.as_deref().filter(|_| super::dicomweb::is_dicomweb(n)) {
            return format!("{} ({})", n.name, url.trim_end_matches('/'));
        }
        if n.name == format!("{}@{}:{}", n.ae_title, n.host, n.port) {
            n.name.clone()
        } else {
            format!("{} ({}@{}:{})", n.name, n.ae_title, n.host, n.port)
        }
    }
}

/// An open association to a peer.
pub type Association = Conn;

/// Message IDs unique across this process, so that C-STORE sub-operations of
/// parallel C-MOVEs can be told apart by their Move Originator Message ID.
static MESSAGE_ID: AtomicU16 = AtomicU16::new(1);

pub fn next_message_id() -> u16 {
    loop {
        let id = MESSAGE_ID.fetch_add(1, Ordering::Relaxed);
        if id != 0 {
            return id;
        }
    }
}

/// Open an association proposing `contexts` (abstract syntax, transfer syntaxes),
/// taking the SCP role for the SOP classes in `scp_roles` (C-GET).
pub fn associate(
    peer: &Peer,
    contexts: &[(String, Vec<String>)],
    scp_roles: &[String],
) -> Result<Association> {
    let n = &peer.node;
    if contexts.len() > 127 {
        return Err(failure(
            peer.label(),
            NetFailure::Local(format!(
                "{} presentation contexts proposed (at most 127)",
                contexts.len()
            )),
        ));
    }
    let mut o = ClientAssociationOptions::new()
        .calling_ae_title(peer.calling_ae.as_str())
        .called_ae_title(n.ae_title.as_str())
        .max_pdu_length(n.max_pdu)
        .connection_timeout(Duration::from_secs(n.connect_timeout_s.max(1)))
        .read_timeout(Duration::from_secs(n.dimse_timeout_s.max(1)));
    for (a, ts) in contexts {
        o = o.with_presentation_context(a.as_str(), ts.iter().map(String::as_str).collect());
    }
    for c in scp_roles {
        o = o.with_role_selection(c.as_str(), true, true);
    }
    let addr = format!("{}:{}", n.host, n.port);
    let assoc = if n.tls {
        let config = super::tls::client_config(n, &peer.identity)?;
        o.tls_config(config)
            .server_name(super::tls::server_name(n))
            .establish_tls(addr.as_str())
            .map(Assoc::ClientTls)
    } else {
        o.establish(addr.as_str()).map(Assoc::Client)
    }
    .map_err(|e| establish_error(peer, &e))?;
    Conn::new(assoc, n.max_pdu, peer.label())
}

/// What went wrong opening an association, told from dicom-ul's message.
fn establish_error(peer: &Peer, e: &dicom_ul::association::Error) -> Error {
    use dicom_ul::association::Error as U;
    let text = crate::dicom::chain(e);
    let n = &peer.node;
    let tls = super::tls::find_tls_error(e);
    let kind = if let Some(t) = tls {
        NetFailure::Tls(super::tls::explain(
            t,
            n.tls.then(|| super::tls::server_name(n)),
        ))
    } else if matches!(e, U::TlsNotSupported) {
        NetFailure::Tls(
            "the node answered in TLS: it expects DICOM over TLS on this port (set tls = true \
             for it)"
                .into(),
        )
    } else if n.tls && matches!(e, U::TlsHandshake { .. }) {
        NetFailure::Tls(format!(
            "the TLS handshake failed ({text}); a plaintext DICOM port closes the \
             connection like this: is {} a TLS port?",
            n.port
        ))
    } else if n.tls && matches!(e, U::InvalidServerName { .. }) {
        NetFailure::Tls(format!(
            "{:?} cannot be checked against a certificate; set tls_server_name",
            super::tls::server_name(n)
        ))
    } else if text.contains("rejected") {
        NetFailure::Rejected(format!(
            "{text}; check that the node's AE title is {:?} and that it knows ours ({:?})",
            peer.node.ae_title, peer.calling_ae
        ))
    } else if text.contains("refused") {
        NetFailure::Connect(format!(
            "connection refused ({text}); is the node running on this port?"
        ))
    } else if text.contains("timed out")
        || text.contains("WouldBlock")
        || text.contains("would block")
        // EAGAIN: how Linux reports a socket read timeout.
        || text.contains("temporarily unavailable")
    {
        NetFailure::Timeout(format!(
            "no answer within {} s ({text})",
            peer.node.connect_timeout_s.max(peer.node.dimse_timeout_s)
        ))
    } else if text.contains("presentation context") {
        NetFailure::Rejected(format!(
            "the node accepted none of the proposed services ({text})"
        ))
    } else {
        NetFailure::Connect(text)
    };
    if let NetFailure::Tls(why) = &kind {
        use crate::audit::{Action, Event, EventId, Outcome, Role, kind};
        Event::new(
            EventId::SecurityAlert,
            Action::Execute,
            &peer.calling_ae,
            Role::Source,
        )
        .kind(kind::node_authentication())
        .peer(&n.ae_title, &n.host, Role::Destination, false)
        .outcome(
            Outcome::MinorFailure,
            format!("TLS to port {}: {why}", n.port),
        )
        .record_default();
    }
    failure(peer.label(), kind)
}

/// Release an association politely (errors ignored: the work is done).
pub fn release(assoc: Association) {
    assoc.release();
}

/// The accepted presentation context for an abstract syntax.
pub fn context_for(assoc: &Association, abstract_syntax: &str) -> Option<(u8, String)> {
    assoc
        .presentation_contexts()
        .iter()
        .find(|c| c.abstract_syntax == abstract_syntax)
        .map(|c| (c.id, c.transfer_syntax.clone()))
}

/// What C-ECHO found.
#[derive(Debug, Serialize)]
pub struct EchoReport {
    pub peer: String,
    /// Time to open the association.
    pub associate_ms: f64,
    /// C-ECHO round trip.
    pub echo_ms: f64,
    pub status: u16,
    /// Accepted contexts: (abstract syntax, transfer syntax).
    pub accepted: Vec<(String, String)>,
    /// Proposed abstract syntaxes the peer did not accept.
    pub refused: Vec<String>,
    pub peer_max_pdu: u32,
}

/// C-ECHO: also proposes the Query/Retrieve services, to report what the node offers.
pub fn echo(peer: &Peer) -> Result<EchoReport> {
    let ts = super::uncompressed();
    let proposed: Vec<(String, Vec<String>)> = [
        VERIFICATION,
        sop::STUDY_ROOT_FIND,
        sop::STUDY_ROOT_MOVE,
        sop::STUDY_ROOT_GET,
        sop::PATIENT_ROOT_FIND,
        sop::PATIENT_ROOT_MOVE,
        sop::PATIENT_ROOT_GET,
    ]
    .iter()
    .map(|a| (a.to_string(), ts.clone()))
    .collect();
    let t0 = Instant::now();
    let mut assoc = associate(peer, &proposed, &[])?;
    let associate_ms = t0.elapsed().as_secs_f64() * 1e3;
    let accepted: Vec<(String, String)> = assoc
        .presentation_contexts()
        .iter()
        .map(|c| (c.abstract_syntax.clone(), c.transfer_syntax.clone()))
        .collect();
    let refused = proposed
        .iter()
        .filter(|(a, _)| !accepted.iter().any(|(b, _)| b == a))
        .map(|(a, _)| a.clone())
        .collect();
    let peer_max_pdu = assoc.peer_max_pdu();
    let Some((pc, _)) = context_for(&assoc, VERIFICATION) else {
        assoc.abort_now();
        return Err(failure(
            peer.label(),
            NetFailure::Rejected("the node does not accept the Verification service".into()),
        ));
    };
    let t1 = Instant::now();
    let id = next_message_id();
    let rq = dimse::request(field::C_ECHO_RQ, id, VERIFICATION, false);
    dimse::send_message(&mut assoc, pc, &rq, None)?;
    let mut reader = dimse::Reader::default();
    let rsp = match reader.next(&mut assoc).map_err(|e| in_context(peer, e))? {
        Event::Command { command, .. } => command,
        Event::Abort => {
            return Err(failure(
                peer.label(),
                NetFailure::Aborted("aborted the association".into()),
            ));
        }
        other => {
            assoc.abort_now();
            return Err(failure(
                peer.label(),
                NetFailure::Operation(format!("answered C-ECHO with {}", dimse::describe(&other))),
            ));
        }
    };
    let echo_ms = t1.elapsed().as_secs_f64() * 1e3;
    let st = dimse::int(&rsp, tags::STATUS).unwrap_or(0xFFFF);
    release(assoc);
    Ok(EchoReport {
        peer: peer.label(),
        associate_ms,
        echo_ms,
        status: st,
        accepted,
        refused,
        peer_max_pdu,
    })
}

/// An error from reading an association to `peer`, in its context: a timeout
/// says how long we waited.
pub fn in_context(peer: &Peer, e: Error) -> Error {
    match e {
        Error::Network {
            kind: NetFailure::Timeout(m),
            ..
        } => failure(
            peer.label(),
            NetFailure::Timeout(format!(
                "{m} (no answer within {} s)",
                peer.node.dimse_timeout_s
            )),
        ),
        other => other,
    }
}

/// Sub-operation counts of a C-MOVE/C-GET response.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SubOps {
    pub remaining: u32,
    pub completed: u32,
    pub failed: u32,
    pub warning: u32,
}

impl SubOps {
    pub fn from_command(c: &InMemDicomObject) -> SubOps {
        let n = |t| dimse::int(c, t).map(u32::from).unwrap_or(0);
        SubOps {
            remaining: n(tags::NUMBER_OF_REMAINING_SUBOPERATIONS),
            completed: n(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS),
            failed: n(tags::NUMBER_OF_FAILED_SUBOPERATIONS),
            warning: n(tags::NUMBER_OF_WARNING_SUBOPERATIONS),
        }
    }
}

/// Is this a pending status?
pub fn is_pending(st: u16) -> bool {
    st == status::PENDING || st == status::PENDING_WARNING
}

/// Send C-CANCEL-RQ for the request `message_id` on context `pc`.
pub fn send_cancel(assoc: &mut Association, pc: u8, message_id: u16) -> Result<()> {
    let mut c = InMemDicomObject::new_empty();
    dimse::put_us(&mut c, tags::COMMAND_FIELD, field::C_CANCEL_RQ);
    dimse::put_us(&mut c, tags::MESSAGE_ID_BEING_RESPONDED_TO, message_id);
    dimse::put_us(&mut c, tags::COMMAND_DATA_SET_TYPE, dimse::NO_DATA_SET);
    dimse::send_message(assoc, pc, &c, None)
}

/// A PDU other than what the protocol expects: abort with a message.
pub fn unexpected(peer: &Peer, assoc: &mut Association, what: &str, e: &Event) -> Error {
    assoc.abort_now();
    failure(
        peer.label(),
        NetFailure::Operation(format!(
            "{} while waiting for {what}; association aborted",
            dimse::describe(e)
        )),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> Peer {
        let mut node = Node::ad_hoc("127.0.0.1", 104, "PACS");
        node.dimse_timeout_s = 7;
        Peer::new(node, "LIGHTBOX")
    }

    #[test]
    fn a_timeout_in_context_says_how_long_was_waited() {
        let p = peer();
        let e = in_context(
            &p,
            failure(
                p.label(),
                NetFailure::Timeout("waiting for the peer".into()),
            ),
        );
        match &e {
            Error::Network {
                peer,
                kind: NetFailure::Timeout(m),
            } => {
                assert_eq!(peer, &p.label());
                assert_eq!(m, "waiting for the peer (no answer within 7 s)");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            e.to_string(),
            "PACS@127.0.0.1:104: timed out: waiting for the peer (no answer within 7 s)"
        );
    }

    #[test]
    fn other_errors_pass_through_in_context() {
        let p = peer();
        let e = in_context(
            &p,
            failure(p.label(), NetFailure::Aborted("the peer closed".into())),
        );
        assert_eq!(e.to_string(), "PACS@127.0.0.1:104: the peer closed");
        assert!(matches!(
            in_context(&p, Error::Usage("x".into())),
            Error::Usage(_)
        ));
    }

    #[test]
    fn a_tls_node_without_trusted_certificates_is_refused_before_connecting() {
        let mut p = peer();
        p.node.tls = true;
        p.node.tls_ca = Some("/nonexistent/pacs-ca.pem".into());
        let e = associate(&p, &[], &[]).expect_err("tls");
        let text = e.to_string();
        assert!(
            text.contains("tls_ca") && text.contains("/nonexistent/pacs-ca.pem"),
            "{text}"
        );
    }
}
