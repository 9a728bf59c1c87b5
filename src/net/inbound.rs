//! Receiving C-STORE sub-operations into the cache: the Storage SCP's job, and
//! C-GET's (where the storage requests come back on the SCU's own association).
//! Each object streams into its staging file as its PDUs arrive (see
//! [`crate::store::ingest`]) under the meta group built from the command, so the
//! data set is kept byte for byte as received.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::meta::FileMetaTableBuilder;

use super::dimse::{self, Link, field};
use super::{failure, status};
use crate::error::{Error, NetFailure, Result};
use crate::store::{Ingest, Receipt, Receiving};

/// The object being received on one association.
#[derive(Debug)]
struct Current<'a> {
    pc_id: u8,
    command: InMemDicomObject,
    class: String,
    sop: String,
    receiving: Option<Receiving<'a>>,
    /// Why this object will be refused (it is still read to its end).
    refused: Option<(u16, String)>,
}

/// What became of one C-STORE.
#[derive(Debug)]
pub struct Stored {
    pub sop_instance_uid: String,
    pub status: u16,
    /// Present when the object was accepted.
    pub receipt: Option<Receipt>,
    /// The reason when it was refused.
    pub error: Option<String>,
}

/// C-STORE receiver for one association.
#[derive(Debug)]
pub struct Inbound<'a> {
    ingest: &'a Ingest,
    calling: String,
    source: &'static str,
    max_object_bytes: u64,
    current: Option<Current<'a>>,
}

impl<'a> Inbound<'a> {
    /// `source` is recorded in the index ("c-store", "c-get", ...).
    pub fn new(
        ingest: &'a Ingest,
        calling: &str,
        source: &'static str,
        max_object_bytes: u64,
    ) -> Inbound<'a> {
        Inbound {
            ingest,
            calling: calling.to_string(),
            source,
            max_object_bytes,
            current: None,
        }
    }

    /// A C-STORE-RQ arrived (its data set follows).
    pub fn begin(&mut self, link: &dyn Link, pc_id: u8, command: InMemDicomObject) {
        let class = dimse::string(&command, tags::AFFECTED_SOP_CLASS_UID).unwrap_or_default();
        let sop = dimse::string(&command, tags::AFFECTED_SOP_INSTANCE_UID).unwrap_or_default();
        let mut cur = Current {
            pc_id,
            command,
            class,
            sop,
            receiving: None,
            refused: None,
        };
        match link.context_syntax(pc_id) {
            None => {
                cur.refused = Some((
                    status::CANNOT_UNDERSTAND,
                    format!("no accepted presentation context {pc_id}"),
                ))
            }
            Some(ts) => match self.prefix(&cur.class, &cur.sop, &ts) {
                Err(e) => cur.refused = Some((status::CANNOT_UNDERSTAND, e)),
                Ok(prefix) => match self.ingest.begin(&prefix) {
                    Ok(r) => cur.receiving = Some(r),
                    Err(e) => cur.refused = Some((status::OUT_OF_RESOURCES, e.to_string())),
                },
            },
        }
        self.current = Some(cur);
    }

    /// Preamble, "DICM" and the file meta group for the received data set.
    fn prefix(&self, class: &str, sop: &str, ts: &str) -> std::result::Result<Vec<u8>, String> {
        let meta = FileMetaTableBuilder::new()
            .media_storage_sop_class_uid(class)
            .media_storage_sop_instance_uid(sop)
            .transfer_syntax(ts)
            .source_application_entity_title(self.calling.as_str())
            .build()
            .map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(&[0u8; 128]);
        out.extend_from_slice(b"DICM");
        meta.write(&mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Is an object being received?
    pub fn busy(&self) -> bool {
        self.current.is_some()
    }

    /// A chunk of the data set. At its end the object is handed to the cache and
    /// the C-STORE-RSP sent; returns what became of it. An object over the size
    /// limit aborts the association (an error).
    pub fn data(
        &mut self,
        link: &mut dyn Link,
        bytes: &[u8],
        last: bool,
    ) -> Result<Option<Stored>> {
        let Some(cur) = self.current.as_mut() else {
            // Data with no C-STORE before it: nothing to answer.
            return Ok(None);
        };
        if let Some(r) = cur.receiving.as_mut() {
            if r.len() + bytes.len() as u64 > self.max_object_bytes {
                link.abort_now();
                self.current = None;
                return Err(failure(
                    link.peer(),
                    NetFailure::Operation(format!(
                        "object larger than the {} MiB limit; association aborted",
                        self.max_object_bytes >> 20
                    )),
                ));
            }
            if let Err(e) = r.write(bytes) {
                cur.receiving = None; // dropped: the staging file goes
                cur.refused = Some((status::OUT_OF_RESOURCES, e.to_string()));
            }
        }
        if !last {
            return Ok(None);
        }
        let Some(cur) = self.current.take() else {
            return Ok(None);
        };
        let result = match (cur.refused, cur.receiving) {
            (Some(r), _) => Err(r),
            (None, None) => Err((status::OUT_OF_RESOURCES, "not received".into())),
            (None, Some(r)) => r.finish(self.source).map_err(|e| {
                let code = match e {
                    Error::NotDicom { .. } | Error::Missing { .. } | Error::Invalid { .. } => {
                        status::CANNOT_UNDERSTAND
                    }
                    _ => status::OUT_OF_RESOURCES,
                };
                (code, e.to_string())
            }),
        };
        let (st, receipt, error) = match result {
            Ok(r) => (status::SUCCESS, Some(r), None),
            Err((code, why)) => {
                tracing::warn!(
                    "C-STORE of {} from {} refused: {why}",
                    cur.sop,
                    self.calling
                );
                (code, None, Some(why))
            }
        };
        let mut rsp = dimse::response(&cur.command, field::C_STORE_RSP, st, &cur.class);
        dimse::put_ui(&mut rsp, tags::AFFECTED_SOP_INSTANCE_UID, &cur.sop);
        dimse::send_message(link, cur.pc_id, &rsp, None)?;
        Ok(Some(Stored {
            sop_instance_uid: cur.sop,
            status: st,
            receipt,
            error,
        }))
    }
}
