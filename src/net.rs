//! DICOM networking on `dicom-ul`: a small DIMSE layer (command sets in, command
//! sets out) and the Storage SCP that receives C-STORE (and answers C-ECHO) into the
//! local cache. Every socket has TCP_NODELAY; each association is served on its own
//! thread and opens its own handle on the cache (SQLite WAL serialises the writers).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use std::time::Duration;

use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;
use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, PDataValue, PDataValueType, UserIdentity};
use dicom_ul::{Pdu, ServerAssociationOptions};

use crate::error::{Error, Result};
use crate::store::Store;

const IMPLICIT_LE: &str = "1.2.840.10008.1.2";
const VERIFICATION: &str = "1.2.840.10008.1.1";
/// Command sets are a few hundred bytes; anything past this is hostile.
const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Transfer syntaxes the SCP accepts: everything Lightbox decodes, so nothing is
/// stored that cannot be displayed. Stored as received, never transcoded.
pub const ACCEPTED_SYNTAXES: &[&str] = &[
    "1.2.840.10008.1.2.1",    // Explicit VR Little Endian
    "1.2.840.10008.1.2",      // Implicit VR Little Endian
    "1.2.840.10008.1.2.2",    // Explicit VR Big Endian (retired, still sent)
    "1.2.840.10008.1.2.1.99", // Deflated
    "1.2.840.10008.1.2.5",    // RLE Lossless
    "1.2.840.10008.1.2.4.50", // JPEG Baseline
    "1.2.840.10008.1.2.4.51", // JPEG Extended (12-bit)
    "1.2.840.10008.1.2.4.57", // JPEG Lossless
    "1.2.840.10008.1.2.4.70", // JPEG Lossless SV1
    "1.2.840.10008.1.2.4.80", // JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81", // JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless
    "1.2.840.10008.1.2.4.91", // JPEG 2000
];

/// DIMSE status codes used here.
pub mod status {
    pub const SUCCESS: u16 = 0x0000;
    /// Out of resources (the cache could not store the object).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Cannot understand (the data set could not be read).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
    /// Unrecognised operation.
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
}

/// Storage SCP settings.
#[derive(Debug, Clone)]
pub struct ScpConfig {
    pub ae_title: String,
    /// Calling AE titles allowed to associate (empty: any).
    pub allowed_aes: Vec<String>,
    pub cache_root: PathBuf,
    pub max_pdu: u32,
    /// Largest data set accepted, bytes.
    pub max_object_bytes: usize,
    /// Read timeout on an idle association.
    pub timeout: Duration,
}

impl ScpConfig {
    pub fn new(ae_title: &str, cache_root: &Path) -> ScpConfig {
        ScpConfig {
            ae_title: ae_title.to_string(),
            allowed_aes: Vec::new(),
            cache_root: cache_root.to_path_buf(),
            max_pdu: 64 * 1024,
            max_object_bytes: 2 << 30,
            timeout: Duration::from_secs(60),
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

/// Serve associations on `listener` until `stop` is set (checked between
/// connections; the listener should be non-blocking or woken by a connection).
pub fn serve(
    listener: TcpListener,
    cfg: ScpConfig,
    stop: Arc<AtomicBool>,
    stats: Arc<ScpStats>,
) -> Result<()> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Usage(format!("listener: {e}")))?;
    let cfg = Arc::new(cfg);
    let mut workers = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let cfg = Arc::clone(&cfg);
                let stats = Arc::clone(&stats);
                workers.push(std::thread::spawn(move || {
                    stats.associations.fetch_add(1, Ordering::Relaxed);
                    if let Err(e) = handle_association(stream, &cfg, &stats) {
                        tracing::warn!("association from {peer}: {e}");
                    }
                }));
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
    Ok(())
}

fn net_err(e: impl std::fmt::Display) -> Error {
    Error::Usage(format!("DICOM association: {e}"))
}

fn handle_association(stream: TcpStream, cfg: &ScpConfig, stats: &ScpStats) -> Result<()> {
    stream.set_nodelay(true).map_err(net_err)?;
    stream.set_nonblocking(false).map_err(net_err)?;
    stream
        .set_read_timeout(Some(cfg.timeout))
        .map_err(net_err)?;
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(AllowList(cfg.allowed_aes.clone()))
        .ae_title(cfg.ae_title.clone())
        .max_pdu_length(cfg.max_pdu)
        .promiscuous(true)
        .with_abstract_syntax(VERIFICATION);
    for ts in ACCEPTED_SYNTAXES {
        options = options.with_transfer_syntax(*ts);
    }
    let mut assoc = options.establish(stream).map_err(net_err)?;
    let contexts = assoc.presentation_contexts().to_vec();
    let calling = {
        use dicom_ul::association::Association;
        assoc.peer_ae_title().to_string()
    };
    let mut store = Store::open(&cfg.cache_root)?;
    let mut command: Vec<u8> = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let mut pending: Option<(u8, InMemDicomObject)> = None;
    loop {
        let pdu = match assoc.receive() {
            Ok(p) => p,
            Err(e) => {
                // A peer that vanishes mid-object loses only that object.
                return Err(net_err(e));
            }
        };
        match pdu {
            Pdu::PData { data: values } => {
                for PDataValue {
                    presentation_context_id,
                    value_type,
                    is_last,
                    data: bytes,
                } in values
                {
                    match value_type {
                        PDataValueType::Command => {
                            if command.len() + bytes.len() > MAX_COMMAND_BYTES {
                                let _ = assoc.abort();
                                return Err(Error::Usage(format!(
                                    "{calling}: command set larger than {MAX_COMMAND_BYTES} bytes; association aborted"
                                )));
                            }
                            command.extend_from_slice(&bytes);
                            if !is_last {
                                continue;
                            }
                            let cmd = parse_command(&command)?;
                            command.clear();
                            let field = int(&cmd, tags::COMMAND_FIELD).unwrap_or(0);
                            let has_data =
                                int(&cmd, tags::COMMAND_DATA_SET_TYPE).unwrap_or(0x0101) != 0x0101;
                            match field {
                                0x0030 => {
                                    let rsp = response(&cmd, 0x8030, status::SUCCESS, VERIFICATION);
                                    send_command(&mut assoc, presentation_context_id, &rsp)?;
                                }
                                0x0001 if has_data => {
                                    pending = Some((presentation_context_id, cmd))
                                }
                                _ => {
                                    let class = string(&cmd, tags::AFFECTED_SOP_CLASS_UID)
                                        .unwrap_or_default();
                                    let rsp = response(
                                        &cmd,
                                        field | 0x8000,
                                        status::UNRECOGNIZED_OPERATION,
                                        &class,
                                    );
                                    send_command(&mut assoc, presentation_context_id, &rsp)?;
                                }
                            }
                        }
                        PDataValueType::Data => {
                            if data.len() + bytes.len() > cfg.max_object_bytes {
                                let _ = assoc.abort();
                                return Err(Error::Usage(format!(
                                    "{calling}: object larger than the {} MiB limit; association aborted",
                                    cfg.max_object_bytes >> 20
                                )));
                            }
                            data.extend_from_slice(&bytes);
                            if !is_last {
                                continue;
                            }
                            let Some((pc_id, cmd)) = pending.take() else {
                                data.clear();
                                continue;
                            };
                            let ts = contexts
                                .iter()
                                .find(|c| c.id == pc_id)
                                .map(|c| c.transfer_syntax.clone())
                                .unwrap_or_else(|| IMPLICIT_LE.to_string());
                            let class =
                                string(&cmd, tags::AFFECTED_SOP_CLASS_UID).unwrap_or_default();
                            let sop =
                                string(&cmd, tags::AFFECTED_SOP_INSTANCE_UID).unwrap_or_default();
                            let st = match store_object(
                                &mut store, &calling, &class, &sop, &ts, &data,
                            ) {
                                Ok(()) => {
                                    stats.stored.fetch_add(1, Ordering::Relaxed);
                                    status::SUCCESS
                                }
                                Err((code, why)) => {
                                    stats.failed.fetch_add(1, Ordering::Relaxed);
                                    tracing::warn!("C-STORE from {calling} failed: {why}");
                                    code
                                }
                            };
                            data.clear();
                            let mut rsp = response(&cmd, 0x8001, st, &class);
                            rsp.put(DataElement::new(
                                tags::AFFECTED_SOP_INSTANCE_UID,
                                VR::UI,
                                PrimitiveValue::from(sop),
                            ));
                            send_command(&mut assoc, pc_id, &rsp)?;
                        }
                    }
                }
            }
            Pdu::ReleaseRQ => {
                assoc.send(&Pdu::ReleaseRP).map_err(net_err)?;
                return Ok(());
            }
            Pdu::AbortRQ { .. } => return Ok(()),
            other => {
                tracing::warn!("unexpected PDU from {calling}: {other:?}");
                let _ = assoc.abort();
                return Ok(());
            }
        }
    }
}

/// Put the received data set behind a file meta group (the bytes exactly as
/// received) and store it in the cache.
fn store_object(
    store: &mut Store,
    calling: &str,
    class: &str,
    sop: &str,
    ts: &str,
    dataset: &[u8],
) -> std::result::Result<(), (u16, String)> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(class)
        .media_storage_sop_instance_uid(sop)
        .transfer_syntax(ts)
        .source_application_entity_title(calling)
        .build()
        .map_err(|e| (status::CANNOT_UNDERSTAND, e.to_string()))?;
    let mut file = Vec::with_capacity(dataset.len() + 512);
    file.extend_from_slice(&[0u8; 128]);
    file.extend_from_slice(b"DICM");
    meta.write(&mut file)
        .map_err(|e| (status::CANNOT_UNDERSTAND, e.to_string()))?;
    file.extend_from_slice(dataset);
    let label = PathBuf::from(format!("C-STORE {sop} from {calling}"));
    match store.store_bytes(&file, &label, "c-store") {
        Ok(_) => Ok(()),
        Err(e @ (Error::NotDicom { .. } | Error::Missing { .. } | Error::Invalid { .. })) => {
            Err((status::CANNOT_UNDERSTAND, e.to_string()))
        }
        Err(e) => Err((status::OUT_OF_RESOURCES, e.to_string())),
    }
}

fn parse_command(bytes: &[u8]) -> Result<InMemDicomObject> {
    use dicom_encoding::TransferSyntaxIndex;
    let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(IMPLICIT_LE)
        .ok_or_else(|| net_err("implicit VR little endian not registered"))?;
    InMemDicomObject::read_dataset_with_ts(bytes, ts)
        .map_err(|e| net_err(format!("bad command set: {e}")))
}

fn int(obj: &InMemDicomObject, tag: Tag) -> Option<u16> {
    obj.get(tag).and_then(|e| e.to_int::<u16>().ok())
}

fn string(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    crate::dicom::attr::string(obj, tag)
}

/// A response command set to `rq`.
fn response(rq: &InMemDicomObject, field: u16, status: u16, class: &str) -> InMemDicomObject {
    let id = int(rq, tags::MESSAGE_ID).unwrap_or(0);
    let mut o = InMemDicomObject::new_empty();
    o.put(DataElement::new(
        tags::AFFECTED_SOP_CLASS_UID,
        VR::UI,
        PrimitiveValue::from(class),
    ));
    o.put(DataElement::new(
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(field),
    ));
    o.put(DataElement::new(
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        VR::US,
        PrimitiveValue::from(id),
    ));
    o.put(DataElement::new(
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(0x0101u16),
    ));
    o.put(DataElement::new(
        tags::STATUS,
        VR::US,
        PrimitiveValue::from(status),
    ));
    o
}

/// Encode a command set in implicit VR little endian with its group length.
fn encode_command(cmd: &InMemDicomObject) -> Result<Vec<u8>> {
    use dicom_encoding::TransferSyntaxIndex;
    let ts = dicom_transfer_syntax_registry::TransferSyntaxRegistry
        .get(IMPLICIT_LE)
        .ok_or_else(|| net_err("implicit VR little endian not registered"))?;
    let mut body = Vec::new();
    cmd.write_dataset_with_ts(&mut body, ts).map_err(net_err)?;
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(&[0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00]);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    Ok(out)
}

fn send_command(
    assoc: &mut dicom_ul::ServerAssociation<TcpStream>,
    pc_id: u8,
    cmd: &InMemDicomObject,
) -> Result<()> {
    let bytes = encode_command(cmd)?;
    assoc
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: pc_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data: bytes,
            }],
        })
        .map_err(net_err)
}
