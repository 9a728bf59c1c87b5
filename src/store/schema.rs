//! The index's SQLite schema and its versioned migrations: `PRAGMA user_version`
//! records how many of [`MIGRATIONS`] ran. A migration is appended, never edited, so
//! every existing cache upgrades in place; a cache from a newer Lightbox is refused
//! rather than misread.

use super::{IndexResult, Store};
use crate::error::{Error, Result};

/// Schema migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE patients (
    key INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL,
    name TEXT NOT NULL,
    birth_date TEXT,
    sex TEXT,
    UNIQUE (patient_id, name)
);
CREATE TABLE studies (
    study_uid TEXT PRIMARY KEY,
    patient_key INTEGER NOT NULL REFERENCES patients(key),
    date TEXT, time TEXT, description TEXT, accession TEXT, referring_physician TEXT,
    last_access INTEGER NOT NULL,
    pinned INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE series (
    series_uid TEXT PRIMARY KEY,
    study_uid TEXT NOT NULL REFERENCES studies(study_uid),
    number INTEGER, modality TEXT, description TEXT, body_part TEXT
);
CREATE INDEX series_by_study ON series(study_uid);
CREATE TABLE instances (
    sop_uid TEXT NOT NULL,
    version INTEGER NOT NULL,
    series_uid TEXT NOT NULL REFERENCES series(series_uid),
    sop_class TEXT NOT NULL,
    instance_number INTEGER,
    transfer_syntax TEXT NOT NULL,
    path TEXT NOT NULL,
    linked INTEGER NOT NULL,
    size INTEGER NOT NULL,
    crc32 INTEGER NOT NULL,
    source TEXT NOT NULL,
    stored_at INTEGER NOT NULL,
    PRIMARY KEY (sop_uid, version)
);
CREATE INDEX instances_by_series ON instances(series_uid);
"#,
    r#"
-- Counts kept per series and per study by triggers, so listings never scan or
-- aggregate the instances.
ALTER TABLE series ADD COLUMN instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE series ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN modalities TEXT NOT NULL DEFAULT '';
ALTER TABLE studies ADD COLUMN series_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN instances INTEGER NOT NULL DEFAULT 0;
ALTER TABLE studies ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE series SET
    instances = (SELECT count(DISTINCT i.sop_uid) FROM instances i WHERE i.series_uid = series.series_uid),
    bytes = (SELECT coalesce(sum(i.size), 0) FROM instances i WHERE i.series_uid = series.series_uid);
UPDATE studies SET
    modalities = (SELECT coalesce(group_concat(DISTINCT se.modality), '') FROM series se WHERE se.study_uid = studies.study_uid),
    series_count = (SELECT count(*) FROM series se WHERE se.study_uid = studies.study_uid),
    instances = (SELECT coalesce(sum(se.instances), 0) FROM series se WHERE se.study_uid = studies.study_uid),
    bytes = (SELECT coalesce(sum(se.bytes), 0) FROM series se WHERE se.study_uid = studies.study_uid);
-- `instances` counts SOP instances (not versions); `bytes` counts every version.
CREATE TRIGGER instances_counted AFTER INSERT ON instances BEGIN
    UPDATE series SET bytes = bytes + NEW.size,
        instances = instances + NOT EXISTS (SELECT 1 FROM instances o
                                           WHERE o.sop_uid = NEW.sop_uid AND o.version <> NEW.version)
    WHERE series_uid = NEW.series_uid;
    UPDATE studies SET bytes = bytes + NEW.size,
        instances = instances + NOT EXISTS (SELECT 1 FROM instances o
                                           WHERE o.sop_uid = NEW.sop_uid AND o.version <> NEW.version)
    WHERE study_uid = (SELECT study_uid FROM series WHERE series_uid = NEW.series_uid);
END;
CREATE TRIGGER instances_uncounted AFTER DELETE ON instances BEGIN
    UPDATE series SET bytes = bytes - OLD.size,
        instances = instances - NOT EXISTS (SELECT 1 FROM instances o WHERE o.sop_uid = OLD.sop_uid)
    WHERE series_uid = OLD.series_uid;
    UPDATE studies SET bytes = bytes - OLD.size,
        instances = instances - NOT EXISTS (SELECT 1 FROM instances o WHERE o.sop_uid = OLD.sop_uid)
    WHERE study_uid = (SELECT study_uid FROM series WHERE series_uid = OLD.series_uid);
END;
CREATE TRIGGER series_counted AFTER INSERT ON series BEGIN
    UPDATE studies SET series_count = series_count + 1,
        modalities = (SELECT coalesce(group_concat(DISTINCT se.modality), '') FROM series se
                      WHERE se.study_uid = NEW.study_uid)
    WHERE study_uid = NEW.study_uid;
END;
CREATE TRIGGER series_uncounted AFTER DELETE ON series BEGIN
    UPDATE studies SET series_count = series_count - 1,
        modalities = (SELECT coalesce(group_concat(DISTINCT se.modality), '') FROM series se
                      WHERE se.study_uid = OLD.study_uid)
    WHERE study_uid = OLD.study_uid;
END;
CREATE INDEX studies_by_date ON studies(date DESC, study_uid);
"#,
    r#"
-- The last retrieve of a study from a PACS: complete only when the node's final
-- response said so, nothing failed, and every instance it listed is cached.
CREATE TABLE retrievals (
    study_uid TEXT PRIMARY KEY,
    node TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('in-progress', 'incomplete', 'complete')),
    expected INTEGER NOT NULL,
    cached INTEGER NOT NULL,
    note TEXT,
    updated_at INTEGER NOT NULL
);
"#,
    r#"
-- Measurements, per instance and frame: points in patient coordinates (mm, LPS)
-- when the image has a plane, else in image pixel coordinates.
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL,
    frame INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('length', 'ellipse')),
    space TEXT NOT NULL CHECK (space IN ('patient', 'image')),
    points TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX measurements_by_sop ON measurements(sop_uid);
"#,
    r#"
-- What each node acknowledged (C-STORE success or warning), so that sending
-- again resends nothing it already has. `node` is "AE@host:port"; `size` is the
-- data set's size, so a changed object is sent again.
CREATE TABLE sent (
    node TEXT NOT NULL,
    sop_uid TEXT NOT NULL,
    size INTEGER NOT NULL,
    transfer_syntax TEXT NOT NULL,
    status INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (node, sop_uid)
);
"#,
    r#"
-- What a retrieve expects of each series of a study: the instances the node
-- listed and the middle image, fetched first (a viewer opening the study while
-- it arrives shows that slice and says how many are still to come).
CREATE TABLE retrieval_series (
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    expected INTEGER NOT NULL,
    middle_sop TEXT,
    PRIMARY KEY (study_uid, series_uid)
);
"#,
    r#"
-- The instances a retrieve expects, with what the node said of where each one
-- lies (Image Position/Orientation as DICOM strings, when it said): a viewer
-- opening the study while it arrives gives every listed image its place in
-- the stack before its pixels come.
CREATE TABLE retrieval_instances (
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    sop_uid TEXT NOT NULL,
    number INTEGER,
    position TEXT,
    orientation TEXT,
    PRIMARY KEY (study_uid, sop_uid)
);
"#,
    r#"
-- Measurements of every kind the viewer draws (the first table took lengths and
-- ellipses only: rectangles, angles and Cobb angles were refused), and on MPR
-- planes: space 'mpr' holds patient coordinates on a plane reformatted from the
-- stack whose first image is `sop_uid` (frame 0).
CREATE TABLE measurements_8 (
    id INTEGER PRIMARY KEY,
    sop_uid TEXT NOT NULL,
    frame INTEGER NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('length', 'ellipse', 'rectangle', 'angle', 'cobb')),
    space TEXT NOT NULL CHECK (space IN ('patient', 'image', 'mpr')),
    points TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT INTO measurements_8 (id, sop_uid, frame, kind, space, points, created_at)
    SELECT id, sop_uid, frame, kind, space, points, created_at FROM measurements;
DROP TABLE measurements;
ALTER TABLE measurements_8 RENAME TO measurements;
CREATE INDEX measurements_by_sop ON measurements(sop_uid);
"#,
];

impl Store {
    /// Run the migrations this cache has not seen, each in its own write
    /// transaction (taken before reading, so processes opening a new cache at
    /// once run each migration exactly once).
    pub(super) fn migrate(&mut self) -> Result<()> {
        let version: i64 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .during("reading the schema version")?;
        if version as usize > MIGRATIONS.len() {
            return Err(Error::Unsupported {
                path: self.index_path(),
                what: format!(
                    "cache index schema version {version} is newer than this Lightbox knows ({})",
                    MIGRATIONS.len()
                ),
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let context = format!("migrating the schema to version {}", i + 1);
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .during(&context)?;
            // Another process may have run it while this one waited for the lock.
            let now: i64 = tx
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .during(&context)?;
            if now as usize > i {
                continue;
            }
            tx.execute_batch(sql).during(&context)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
                .during(&context)?;
            tx.commit().during(&context)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_cache_runs_every_migration_and_a_newer_one_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version as usize, MIGRATIONS.len());
        store
            .conn
            .execute_batch(&format!("PRAGMA user_version = {}", MIGRATIONS.len() + 1))
            .expect("pretend a newer Lightbox wrote it");
        drop(store);
        let e = Store::open(dir.path()).expect_err("newer schema");
        assert!(
            matches!(&e, Error::Unsupported { what, .. } if what.contains("newer than this Lightbox")),
            "{e}"
        );
    }

    #[test]
    fn writers_opening_a_new_cache_at_once_migrate_it_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let barrier = std::sync::Barrier::new(8);
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        Store::open(dir.path()).map(drop)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect()
        });
        for r in &results {
            assert!(r.is_ok(), "{r:?}");
        }
        let store = Store::open(dir.path()).expect("open");
        let version: i64 = store
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .expect("version");
        assert_eq!(version as usize, MIGRATIONS.len());
    }

    #[test]
    fn measurements_of_a_version_7_cache_are_carried_into_the_new_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            // A cache as Lightbox with seven migrations left it, one length kept.
            let conn = rusqlite::Connection::open(dir.path().join("index.sqlite")).expect("db");
            for sql in &MIGRATIONS[..7] {
                conn.execute_batch(sql).expect("old migration");
            }
            conn.execute_batch(
                "PRAGMA user_version = 7;
                 INSERT INTO measurements (sop_uid, frame, kind, space, points, created_at)
                 VALUES ('1.2.3', 0, 'length', 'patient', '[[1,2,3],[4,5,6]]', 1);",
            )
            .expect("old row");
        }
        std::fs::create_dir_all(dir.path().join("objects")).expect("objects");
        let store = Store::open(dir.path()).expect("migrated");
        let got = store.measurements_of(&["1.2.3".to_string()]).expect("read");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].points, vec![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
        let angle = crate::store::MeasurementRow {
            kind: "angle".into(),
            points: vec![[0.0; 3], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]],
            ..got[0].clone()
        };
        store.add_measurement(&angle).expect("an angle is kept now");
    }
}
