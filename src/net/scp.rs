//! The Storage SCP: C-ECHO and C-STORE into the local cache, one thread per
//! association, all of them feeding one [`Ingest`] (group commit across
//! associations). Calling AE titles can be restricted; the called AE title must be
//! ours; objects and command sets are size-limited; failures are answered with
//! DIMSE statuses (out of resources, cannot understand), not by dropping the peer.
//!
//! Peers that hold connections without working are bounded three ways:
//! - **ARTIM** (PS3.8 9.1.5): a connection must have delivered its whole
//!   A-ASSOCIATE-RQ within [`ScpConfig::artim`] of being accepted, however slowly
//!   it trickles bytes; the accept loop closes it otherwise;
//! - **idle timeout**: an established association that sends nothing for
//!   [`ScpConfig::timeout`] is closed;
//! - **connection cap**: at most [`ScpConfig::max_associations`] connections are
//!   served at once (each has a thread). At the cap, the oldest connection that has
//!   not yet asked for an association is closed to make room (a flood of idle
//!   sockets cannot keep an honest modality out); when every slot holds an
//!   established association, the newcomer is rejected with A-ASSOCIATE-RJ
//!   "transient, local limit exceeded" (PS3.8 9.3.4), which modalities retry.

use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dicom_dictionary_std::tags;
use dicom_ul::ServerAssociationOptions;
use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};

use super::dimse::{self, Event, Link, field};
use super::inbound::{Inbound, Stored};
use super::{ACCEPTED_SYNTAXES, VERIFICATION, failure, status};
use crate::error::{Error, NetFailure, Result};
use crate::store::{Durability, Ingest};

/// Default ARTIM timeout, seconds (PS3.8 9.1.5 leaves it to the implementation;
/// DCMTK's is 30).
pub const DEFAULT_ARTIM_S: u64 = 30;
/// Default idle timeout of an established association, seconds.
pub const DEFAULT_IDLE_S: u64 = 60;
/// Default cap on connections served at once.
pub const DEFAULT_MAX_ASSOCIATIONS: usize = 64;

/// Storage SCP settings.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    pub ae_title: String,
    /// Calling AE titles allowed to associate (empty: any).
    pub allowed_aes: Vec<String>,
    pub cache_root: PathBuf,
    pub max_pdu: u32,
    /// Largest data set accepted, bytes.
    pub max_object_bytes: u64,
    /// An established association that sends nothing for this long is closed.
    pub timeout: Duration,
    /// ARTIM: a connection must deliver its A-ASSOCIATE-RQ within this long.
    pub artim: Duration,
    /// Connections served at once (pending and established).
    pub max_associations: usize,
    /// When a stored object is acknowledged.
    pub durability: Durability,
    /// DICOM over TLS on this listener (see [`super::tls::server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Record each association's transfers in the audit trail (refusals are
    /// always recorded). Off for a retrieve's own receiver: the retrieve records
    /// the transfer.
    pub audit_transfers: bool,
}

impl ScpConfig {
    pub fn new(ae_title: &str, cache_root: &Path) -> ScpConfig {
        ScpConfig {
            ae_title: ae_title.to_string(),
            allowed_aes: Vec::new(),
            cache_root: cache_root.to_path_buf(),
            max_pdu: 128 * 1024,
            max_object_bytes: 2 << 30,
            timeout: Duration::from_secs(DEFAULT_IDLE_S),
            artim: Duration::from_secs(DEFAULT_ARTIM_S),
            max_associations: DEFAULT_MAX_ASSOCIATIONS,
            durability: Durability::default(),
            tls: None,
            audit_transfers: true,
        }
    }
}

/// Allow-list of calling AE titles (empty: any).
#[derive(Debug, Clone)]
struct AllowList(Vec<String>);

impl AccessControl for AllowList {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> std::result::Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if !self.0.is_empty() && !self.0.iter().any(|a| a.trim() == calling_ae_title.trim()) {
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// Counters of a running SCP.
#[derive(Debug, Default)]
pub struct ScpStats {
    pub associations: AtomicU64,
    pub stored: AtomicU64,
    pub failed: AtomicU64,
    /// Connections closed for not asking for an association in time (ARTIM) or to
    /// make room for a newcomer at the cap.
    pub closed_idle: AtomicU64,
    /// Connections rejected because every slot held an association.
    pub rejected_busy: AtomicU64,
}

/// A connection being served, as the accept loop sees it.
#[derive(Debug)]
struct Slot {
    id: u64,
    peer: SocketAddr,
    accepted: Instant,
    /// A handle on the socket, to close it from the accept loop.
    stream: TcpStream,
    /// The association is established (ARTIM no longer applies).
    established: bool,
    /// Why the accept loop closed it, if it did.
    closed: Option<&'static str>,
}

/// The connections being served.
#[derive(Debug, Default)]
struct Slots(Mutex<Vec<Slot>>);

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn established(&self, id: u64) {
        if let Some(s) = self.lock().iter_mut().find(|s| s.id == id) {
            s.established = true;
        }
    }

    /// Forget a finished connection; why the accept loop closed it, if it did.
    fn finished(&self, id: u64) -> Option<&'static str> {
        let mut v = self.lock();
        let i = v.iter().position(|s| s.id == id)?;
        v.swap_remove(i).closed
    }

    /// Close connections that have not asked for an association within `artim`.
    fn expire(&self, artim: Duration, stats: &ScpStats) {
        for s in self.lock().iter_mut() {
            if !s.established && s.closed.is_none() && s.accepted.elapsed() >= artim {
                tracing::info!(
                    "connection from {} closed: no association request within {} s (ARTIM)",
                    s.peer,
                    artim.as_secs()
                );
                let _ = s.stream.shutdown(Shutdown::Both);
                s.closed = Some("no association request in time (ARTIM)");
                stats.closed_idle.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Make room for one more connection under `max`: true when there is room
    /// (the oldest connection still without an association is closed if needed).
    fn make_room(&self, max: usize, stats: &ScpStats) -> bool {
        let mut v = self.lock();
        let open = v.iter().filter(|s| s.closed.is_none()).count();
        if open < max {
            return true;
        }
        let oldest = v
            .iter_mut()
            .filter(|s| !s.established && s.closed.is_none())
            .min_by_key(|s| s.accepted);
        match oldest {
            Some(s) => {
                tracing::info!(
                    "connection from {} closed after {:.1} s without an association request, \
                     to make room ({max} connections at once)",
                    s.peer,
                    s.accepted.elapsed().as_secs_f64()
                );
                let _ = s.stream.shutdown(Shutdown::Both);
                s.closed = Some("closed to make room for a newcomer");
                stats.closed_idle.fetch_add(1, Ordering::Relaxed);
                true
            }
            None => false,
        }
    }
}

/// A-ASSOCIATE-RJ: rejected-transient, service-provider (presentation), local
/// limit exceeded (PS3.8 9.3.4).
const REJECT_BUSY: [u8; 10] = [0x03, 0, 0, 0, 0, 4, 0, 2, 3, 2];

/// Answer peers turned away at the cap, one at a time on one thread: read what
/// they sent (briefly), reject, close. Peers beyond what it can queue are simply
/// closed.
fn start_rejecter() -> Option<std::sync::mpsc::SyncSender<(TcpStream, SocketAddr)>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<(TcpStream, SocketAddr)>(32);
    let spawned = std::thread::Builder::new()
        .name("scp-reject".into())
        .spawn(move || {
            use std::io::{Read, Write};
            for (mut s, peer) in rx {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(&REJECT_BUSY);
                let _ = s.shutdown(Shutdown::Write);
                // Let the peer read the rejection before the socket goes.
                let _ = s.read(&mut buf);
                tracing::warn!("association from {peer} rejected: too many at once");
            }
        });
    match spawned {
        Ok(_) => Some(tx),
        Err(e) => {
            tracing::error!("cannot start the thread that rejects peers at the cap: {e}");
            None
        }
    }
}

/// Called for every C-STORE the SCP answers, with the calling AE title (C-MOVE
/// follows its sub-operations through this).
pub type Observer = Arc<dyn Fn(&str, &Stored) + Send + Sync>;

/// Serve associations on `listener` until `stop` is set, with an ingest of its own.
pub fn serve(
    listener: TcpListener,
    cfg: ScpConfig,
    stop: Arc<AtomicBool>,
    stats: Arc<ScpStats>,
) -> Result<()> {
    let ingest = Arc::new(Ingest::start(&cfg.cache_root, cfg.durability)?);
    serve_with(listener, cfg, ingest, stop, stats, None)
}

/// Serve associations on `listener` into `ingest` until `stop` is set (checked
/// between connections and every 20 ms while idle), each on a thread of its own
/// ("scp-assoc").
pub fn serve_with(
    listener: TcpListener,
    cfg: ScpConfig,
    ingest: Arc<Ingest>,
    stop: Arc<AtomicBool>,
    stats: Arc<ScpStats>,
    observer: Option<Observer>,
) -> Result<()> {
    listener.set_nonblocking(true).map_err(|e| {
        let at = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|_| "Storage SCP".into());
        failure(at, NetFailure::Local(e.to_string()))
    })?;
    let cfg = Arc::new(cfg);
    let slots = Arc::new(Slots::default());
    let rejecter = start_rejecter();
    let mut workers = Vec::new();
    let mut next_id = 0u64;
    while !stop.load(Ordering::Relaxed) {
        slots.expire(cfg.artim, &stats);
        match listener.accept() {
            Ok((stream, peer)) => {
                if !slots.make_room(cfg.max_associations.max(1), &stats) {
                    stats.rejected_busy.fetch_add(1, Ordering::Relaxed);
                    match &rejecter {
                        Some(r) => {
                            // A full queue: the connection is closed unanswered.
                            let _ = r.try_send((stream, peer));
                        }
                        None => drop(stream),
                    }
                    continue;
                }
                let handle = match stream.try_clone() {
                    Ok(h) => h,
                    Err(e) => {
                        tracing::error!("association from {peer}: {e}");
                        continue;
                    }
                };
                next_id += 1;
                let id = next_id;
                slots.lock().push(Slot {
                    id,
                    peer,
                    accepted: Instant::now(),
                    stream: handle,
                    established: false,
                    closed: None,
                });
                let cfg = Arc::clone(&cfg);
                let stats = Arc::clone(&stats);
                let ingest = Arc::clone(&ingest);
                let observer = observer.clone();
                let slots2 = Arc::clone(&slots);
                let spawned =
                    std::thread::Builder::new()
                        .name("scp-assoc".into())
                        .spawn(move || {
                            stats.associations.fetch_add(1, Ordering::Relaxed);
                            let r = handle_association(
                                stream,
                                peer,
                                &cfg,
                                &ingest,
                                &stats,
                                observer.as_ref(),
                                &|| slots2.established(id),
                            );
                            let closed = slots2.finished(id);
                            let from = peer.to_string();
                            match (r, closed) {
                                (Ok(()), _) => {}
                                // Closed by the accept loop, and said so there.
                                (Err(_), Some(_)) => {}
                                // Failed before the association was established: the
                                // address is all there is to name, and it is named.
                                (Err(Error::Network { peer, kind }), None) if peer == from => {
                                    tracing::warn!("association from {from}: {kind}")
                                }
                                (Err(e), None) => tracing::warn!("association from {from}: {e}"),
                            }
                        });
                match spawned {
                    Ok(w) => workers.push(w),
                    // The connection is dropped (closed) with the closure: the peer
                    // sees it refused, and the SCP goes on.
                    Err(e) => {
                        slots.finished(id);
                        tracing::error!("association from {peer}: cannot start a thread: {e}")
                    }
                }
                workers.retain(|w| !w.is_finished());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => {
                tracing::warn!("accept: {e}");
                // Out of descriptors, say: do not spin.
                std::thread::sleep(Duration::from_millis(20))
            }
        }
    }
    // Stopping: connections still without an association are closed now.
    for s in slots.lock().iter_mut().filter(|s| !s.established) {
        let _ = s.stream.shutdown(Shutdown::Both);
        s.closed = Some("the SCP is stopping");
    }
    for w in workers {
        let _ = w.join();
    }
    ingest.flush()
}

/// Largest A-ASSOCIATE-RQ waited for (127 contexts and a user identity fit
/// many times over).
const MAX_ASSOCIATE_RQ: usize = 1 << 20;

/// Wait, peeking (nothing consumed), until the connection's first message is
/// whole in the socket's buffer — an A-ASSOCIATE-RQ PDU on a plain port, a TLS
/// record holding a whole ClientHello on a TLS port — and refuse anything else.
///
/// dicom-ul 0.10 built with `sync-tls` hands what it read to rustls's `Acceptor`
/// when it fails to read the first PDU (to recognise a TLS client), and loops
/// there for as long as the record is incomplete: a peer that sends part of a
/// message and then closes (or is closed at ARTIM) would leave its thread
/// spinning. Handing it only whole messages of the right kind keeps it out of
/// that loop. The wait ends at `deadline` — just after ARTIM, which the accept
/// loop enforces by shutting the socket down (peeking goes on seeing what had
/// arrived even then).
fn first_message_whole(
    stream: &TcpStream,
    tls: bool,
    deadline: Duration,
) -> std::result::Result<(), NetFailure> {
    let deadline = Instant::now() + deadline;
    let mut buf = vec![0u8; 9];
    let mut seen = 0;
    loop {
        if Instant::now() >= deadline {
            return Err(NetFailure::Timeout(
                "no whole A-ASSOCIATE-RQ within the ARTIM timeout (ARTIM)".into(),
            ));
        }
        let n = stream.peek(&mut buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                NetFailure::Timeout("no A-ASSOCIATE-RQ within the ARTIM timeout (ARTIM)".into())
            }
            _ => NetFailure::Aborted(format!("reading the association request: {e}")),
        })?;
        if n == 0 {
            return Err(NetFailure::Aborted(
                "closed the connection before asking for an association".into(),
            ));
        }
        let whole = if tls {
            // TLS record: type 0x16 (handshake), version, length; then the
            // handshake header: type 0x01 (ClientHello), 24-bit length.
            if buf[0] != 0x16 {
                return Err(NetFailure::Tls(
                    "the peer does not speak TLS on this port (plaintext DICOM?)".into(),
                ));
            }
            if n < 9 {
                None
            } else {
                let record = u16::from_be_bytes([buf[3], buf[4]]) as usize;
                let hello = u32::from_be_bytes([0, buf[6], buf[7], buf[8]]) as usize;
                if buf[5] != 0x01 || hello + 4 > record || record > 18 * 1024 {
                    return Err(NetFailure::Tls(
                        "the peer's first TLS record is not a whole ClientHello".into(),
                    ));
                }
                Some(5 + record)
            }
        } else {
            if buf[0] == 0x16 {
                return Err(NetFailure::Tls(
                    "the peer spoke TLS to the plaintext port (tls_port is the TLS one)".into(),
                ));
            }
            if buf[0] != 0x01 {
                return Err(NetFailure::Rejected(format!(
                    "PDU type 0x{:02X} before any association (A-ASSOCIATE-RQ expected)",
                    buf[0]
                )));
            }
            if n < 6 {
                None
            } else {
                let len = u32::from_be_bytes([buf[2], buf[3], buf[4], buf[5]]) as usize;
                if len > MAX_ASSOCIATE_RQ {
                    return Err(NetFailure::Rejected(format!(
                        "an A-ASSOCIATE-RQ of {len} bytes (at most {MAX_ASSOCIATE_RQ})"
                    )));
                }
                Some(6 + len)
            }
        };
        match whole {
            Some(total) if n >= total => return Ok(()),
            Some(total) if buf.len() < total => buf.resize(total, 0),
            _ => {}
        }
        if n == seen {
            // Nothing new since the last look: the rest is still on its way.
            std::thread::sleep(Duration::from_millis(10));
        }
        seen = n;
    }
}

/// Why an association from `from` was not accepted; over TLS, the handshake's
/// reason (an untrusted or absent client certificate, a plaintext peer).
fn accept_error(from: SocketAddr, tls: bool, e: &dicom_ul::association::Error) -> Error {
    use dicom_ul::association::Error as U;
    let kind = match super::tls::find_tls_error(e) {
        Some(t) => NetFailure::Tls(super::tls::explain(t, None)),
        None if tls && matches!(e, U::TlsHandshake { .. }) => NetFailure::Tls(format!(
            "the TLS handshake failed ({})",
            crate::dicom::chain(e)
        )),
        None => NetFailure::Rejected(e.to_string()),
    };
    failure(from.to_string(), kind)
}

/// One association from `from`: established (or refused), then served until the
/// peer releases or aborts it.
fn handle_association(
    stream: TcpStream,
    from: SocketAddr,
    cfg: &ScpConfig,
    ingest: &Ingest,
    stats: &ScpStats,
    observer: Option<&Observer>,
    established: &dyn Fn(),
) -> Result<()> {
    let local = |e: std::io::Error| failure(from.to_string(), NetFailure::Local(e.to_string()));
    stream.set_nodelay(true).map_err(local)?;
    stream.set_nonblocking(false).map_err(local)?;
    // dicom-ul sets the socket's timeouts from these while it waits for the
    // A-ASSOCIATE-RQ (the accept loop enforces ARTIM as a deadline besides).
    let mut options = ServerAssociationOptions::new()
        .read_timeout(cfg.artim)
        .write_timeout(cfg.timeout)
        .ae_access_control(AllowList(cfg.allowed_aes.clone()))
        .ae_title(cfg.ae_title.clone())
        .max_pdu_length(cfg.max_pdu)
        .promiscuous(true)
        .with_abstract_syntax(VERIFICATION);
    for ts in ACCEPTED_SYNTAXES {
        options = options.with_transfer_syntax(*ts);
    }
    // The accept loop enforces ARTIM (and says so); this wait ends a little
    // later, for what it closed while bytes were still buffered.
    let wait = cfg.artim + Duration::from_secs(1);
    stream.set_read_timeout(Some(wait)).map_err(local)?;
    first_message_whole(&stream, cfg.tls.is_some(), wait)
        .map_err(|kind| failure(from.to_string(), kind))
        .inspect_err(|e| audit_refusal(cfg, from, e))?;
    let assoc = match &cfg.tls {
        Some(tls) => options
            .tls_config(Arc::clone(tls))
            .establish_tls(stream)
            .map(dimse::Assoc::ServerTls),
        None => options.establish(stream).map(dimse::Assoc::Server),
    }
    .map_err(|e| accept_error(from, cfg.tls.is_some(), &e))
    .inspect_err(|e| audit_refusal(cfg, from, e))?;
    established();
    let calling = {
        use dicom_ul::association::Association;
        match &assoc {
            dimse::Assoc::Server(a) => a.peer_ae_title().trim().to_string(),
            dimse::Assoc::ServerTls(a) => a.peer_ae_title().trim().to_string(),
            _ => String::new(),
        }
    };
    let mut assoc = dimse::Conn::new(assoc, cfg.max_pdu, calling.as_str())?;
    // From here on the peer may be silent for `timeout` at most.
    assoc.set_read_timeout(cfg.timeout).map_err(local)?;
    let mut reader = dimse::Reader::default();
    let mut inbound = Inbound::new(ingest, &calling, "c-store", cfg.max_object_bytes);
    let mut received = Received::default();
    let result = (|| -> Result<()> {
        loop {
            // A peer that vanishes mid-object loses only that object (its staging file
            // is removed when `inbound` drops).
            let event = reader.next(&mut assoc)?;
            match event {
                Event::Command { pc_id, command } => {
                    let fieldv = dimse::int(&command, tags::COMMAND_FIELD).unwrap_or(0);
                    match fieldv {
                        field::C_ECHO_RQ => {
                            let rsp = dimse::response(
                                &command,
                                field::C_ECHO_RSP,
                                status::SUCCESS,
                                VERIFICATION,
                            );
                            dimse::send_message(&mut assoc, pc_id, &rsp, None)?;
                        }
                        field::C_STORE_RQ if dimse::has_data_set(&command) => {
                            inbound.begin(&assoc, pc_id, command)
                        }
                        _ => {
                            let class = dimse::string(&command, tags::AFFECTED_SOP_CLASS_UID)
                                .unwrap_or_default();
                            let rsp = dimse::response(
                                &command,
                                fieldv | 0x8000,
                                status::UNRECOGNIZED_OPERATION,
                                &class,
                            );
                            dimse::send_message(&mut assoc, pc_id, &rsp, None)?;
                        }
                    }
                }
                Event::Data { bytes, last, .. } => {
                    if let Some(stored) = inbound.data(&mut assoc, &bytes, last)? {
                        if let Some(r) = &stored.receipt {
                            received.add(r);
                        }
                        if stored.status == status::SUCCESS {
                            stats.stored.fetch_add(1, Ordering::Relaxed);
                        } else {
                            stats.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(o) = observer {
                            o(&calling, &stored);
                        }
                    }
                }
                Event::ReleaseRQ => {
                    // Everything this peer sent is durable and indexed before it hears
                    // that the association is released.
                    if let Err(e) = ingest.flush() {
                        tracing::error!("{calling}: {e}");
                    }
                    assoc.send_pdu(&dicom_ul::Pdu::ReleaseRP)?;
                    return Ok(());
                }
                Event::Abort => return Ok(()),
                other => {
                    let what = dimse::describe(&other);
                    assoc.abort_now();
                    return Err(failure(
                        calling.as_str(),
                        NetFailure::Operation(format!(
                            "{what} on an established association; aborted"
                        )),
                    ));
                }
            }
        }
    })();
    if cfg.audit_transfers {
        received.record(cfg, &calling, from, &result);
    }
    result
}

/// What one association stored, per study, for the audit trail.
#[derive(Debug, Default)]
struct Received {
    studies: crate::audit::Studies,
}

impl Received {
    fn add(&mut self, r: &crate::store::Receipt) {
        self.studies.add(
            &r.study_uid,
            r.patient_id.as_deref().unwrap_or(""),
            r.patient_name.as_deref().unwrap_or(""),
        );
    }

    /// The association's transfer: the peer as the source (it asked), the SCP as
    /// the destination.
    fn record(&self, cfg: &ScpConfig, calling: &str, from: SocketAddr, result: &Result<()>) {
        use crate::audit::{Action, Event, EventId, Outcome, Role};
        if self.studies.is_empty() {
            return;
        }
        let total = self.studies.total();
        let e = Event::new(
            EventId::InstancesTransferred,
            Action::Create,
            &cfg.ae_title,
            Role::Destination,
        )
        .peer(calling, &from.ip().to_string(), Role::Source, true);
        let e = match result {
            Ok(()) => e.outcome(Outcome::Success, format!("{total} object(s) stored")),
            Err(err) => e.outcome(
                Outcome::MinorFailure,
                format!("{total} object(s) stored, then: {err}"),
            ),
        };
        e.studies(&self.studies).record(&cfg.cache_root);
    }
}

/// A refused association in the audit trail (a security alert): a wrong AE
/// title, a failed TLS handshake. Peers that merely connect and go (or idle
/// out) are not recorded.
fn audit_refusal(cfg: &ScpConfig, from: SocketAddr, e: &Error) {
    use crate::audit::{Action, Event, EventId, Outcome, Role, kind};
    let Error::Network { kind: k, .. } = e else {
        return;
    };
    if !matches!(k, NetFailure::Rejected(_) | NetFailure::Tls(_)) {
        return;
    }
    Event::new(
        EventId::SecurityAlert,
        Action::Execute,
        &cfg.ae_title,
        Role::Destination,
    )
    .kind(kind::node_authentication())
    .peer("(unknown AE)", &from.ip().to_string(), Role::Source, true)
    .outcome(
        Outcome::MinorFailure,
        format!(
            "association from {from} to {} refused{}: {k}",
            cfg.ae_title,
            if cfg.tls.is_some() { " (TLS port)" } else { "" }
        ),
    )
    .record(&cfg.cache_root);
}
