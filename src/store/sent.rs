//! What nodes acknowledged: the `sent` table, so that `send` run again resends
//! nothing a node already holds (a changed object, of another size, goes again).

use std::collections::HashMap;

use rusqlite::params;

use super::{IndexResult, Store, now};
use crate::error::Result;

/// One object a node acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    pub sop_uid: String,
    /// Bytes of the data set sent.
    pub size: u64,
    pub transfer_syntax: String,
    /// The C-STORE response status (success or a warning).
    pub status: u16,
}

impl Store {
    /// What `node` ("AE@host:port") acknowledged: SOP Instance UID → data set size.
    pub fn sent_to(&self, node: &str) -> Result<HashMap<String, u64>> {
        const CONTEXT: &str = "reading what a node acknowledged";
        let mut stmt = self
            .conn
            .prepare("SELECT sop_uid, size FROM sent WHERE node = ?1")
            .during(CONTEXT)?;
        stmt.query_map(params![node], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .during(CONTEXT)?
        .collect::<rusqlite::Result<_>>()
        .during(CONTEXT)
    }

    /// Record objects `node` acknowledged, in one transaction.
    pub fn record_sent(&mut self, node: &str, records: &[SentRecord]) -> Result<()> {
        const CONTEXT: &str = "recording what a node acknowledged";
        if records.is_empty() {
            return Ok(());
        }
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .during(CONTEXT)?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO sent (node, sop_uid, size, transfer_syntax, status, sent_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (node, sop_uid) DO UPDATE SET size = excluded.size,
                         transfer_syntax = excluded.transfer_syntax, status = excluded.status,
                         sent_at = excluded.sent_at",
                )
                .during(CONTEXT)?;
            let t = now();
            for r in records {
                stmt.execute(params![
                    node,
                    r.sop_uid,
                    r.size as i64,
                    r.transfer_syntax,
                    r.status,
                    t
                ])
                .during(CONTEXT)?;
            }
        }
        tx.commit().during(CONTEXT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_objects_are_remembered_per_node() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path()).expect("open");
        let rec = |uid: &str, size| SentRecord {
            sop_uid: uid.into(),
            size,
            transfer_syntax: "1.2.840.10008.1.2.1".into(),
            status: 0,
        };
        store
            .record_sent("PACS@h:104", &[rec("1.2.3", 10), rec("1.2.4", 20)])
            .expect("record");
        store
            .record_sent("PACS@h:104", &[rec("1.2.3", 11)])
            .expect("record again");
        store
            .record_sent("OTHER@h:104", &[rec("1.2.5", 5)])
            .expect("other node");
        let got = store.sent_to("PACS@h:104").expect("read");
        assert_eq!(got.len(), 2);
        assert_eq!(got["1.2.3"], 11);
        assert_eq!(got["1.2.4"], 20);
        assert!(store.sent_to("NOBODY@h:1").expect("read").is_empty());
    }
}
