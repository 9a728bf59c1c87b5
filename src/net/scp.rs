//! The Storage SCP: C-ECHO and C-STORE into the local cache, one thread per
//! association, all of them feeding one [`Ingest`] (group commit across
//! associations). Calling AE titles can be restricted; the called AE title must be
//! ours; objects and command sets are size-limited; failures are answered with
//! DIMSE statuses (out of resources, cannot understand), not by dropping the peer.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dicom_dictionary_std::tags;
use dicom_ul::ServerAssociationOptions;
use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};

use super::dimse::{self, Event, Link, field};
use super::inbound::{Inbound, Stored};
use super::{ACCEPTED_SYNTAXES, VERIFICATION, failure, status};
use crate::error::{Error, NetFailure, Result};
use crate::store::{Durability, Ingest};

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
    /// Read timeout on an idle association.
    pub timeout: Duration,
    /// When a stored object is acknowledged.
    pub durability: Durability,
}

impl ScpConfig {
    pub fn new(ae_title: &str, cache_root: &Path) -> ScpConfig {
        ScpConfig {
            ae_title: ae_title.to_string(),
            allowed_aes: Vec::new(),
            cache_root: cache_root.to_path_buf(),
            max_pdu: 128 * 1024,
            max_object_bytes: 2 << 30,
            timeout: Duration::from_secs(60),
            durability: Durability::default(),
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
    let mut workers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let cfg = Arc::clone(&cfg);
                let stats = Arc::clone(&stats);
                let ingest = Arc::clone(&ingest);
                let observer = observer.clone();
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
                            );
                            let from = peer.to_string();
                            match r {
                                Ok(()) => {}
                                // Failed before the association was established: the
                                // address is all there is to name, and it is named.
                                Err(Error::Network { peer, kind }) if peer == from => {
                                    tracing::warn!("association from {from}: {kind}")
                                }
                                Err(e) => tracing::warn!("association from {from}: {e}"),
                            }
                        });
                match spawned {
                    Ok(w) => workers.push(w),
                    // The connection is dropped (closed) with the closure: the peer
                    // sees it refused, and the SCP goes on.
                    Err(e) => {
                        tracing::error!("association from {peer}: cannot start a thread: {e}")
                    }
                }
                workers.retain(|w| !w.is_finished());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => tracing::warn!("accept: {e}"),
        }
    }
    for w in workers {
        let _ = w.join();
    }
    ingest.flush()
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
) -> Result<()> {
    let local = |e: std::io::Error| failure(from.to_string(), NetFailure::Local(e.to_string()));
    stream.set_nodelay(true).map_err(local)?;
    stream.set_nonblocking(false).map_err(local)?;
    stream.set_read_timeout(Some(cfg.timeout)).map_err(local)?;
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(AllowList(cfg.allowed_aes.clone()))
        .ae_title(cfg.ae_title.clone())
        .max_pdu_length(cfg.max_pdu)
        .promiscuous(true)
        .with_abstract_syntax(VERIFICATION);
    for ts in ACCEPTED_SYNTAXES {
        options = options.with_transfer_syntax(*ts);
    }
    let assoc = options
        .establish(stream)
        .map_err(|e| failure(from.to_string(), NetFailure::Rejected(e.to_string())))?;
    let calling = {
        use dicom_ul::association::Association;
        assoc.peer_ae_title().trim().to_string()
    };
    let mut assoc = dimse::Conn::new(assoc, cfg.max_pdu, calling.as_str())?;
    let mut reader = dimse::Reader::default();
    let mut inbound = Inbound::new(ingest, &calling, "c-store", cfg.max_object_bytes);
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
                    calling,
                    NetFailure::Operation(format!("{what} on an established association; aborted")),
                ));
            }
        }
    }
}
