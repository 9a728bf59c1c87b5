//! The local cache: import, duplicates and versions, verify (missing, corrupt,
//! unindexed files), rebuild from files, linked import of read-only media, and UIDs
//! that try to leave the cache root.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use lightbox::store::{ImportMode, Store};
use lightbox::synth;

/// The counts a listing shows (kept by triggers) agree with the rows themselves.
fn listing_agrees_with_rows(store: &Store) {
    let mut bytes = 0;
    for st in store.studies().expect("ls") {
        let series = store.series_of(&st.study_uid).expect("series");
        let instances: usize = series
            .iter()
            .map(|se| {
                let rows = store.instances_of(&se.series_uid).expect("instances");
                assert_eq!(se.instances, rows.len(), "series {}", se.series_uid);
                rows.len()
            })
            .sum();
        assert_eq!(
            (st.series, st.instances),
            (series.len(), instances),
            "study {}",
            st.study_uid
        );
        bytes += st.bytes;
    }
    assert_eq!(bytes, store.stats().expect("stats").bytes);
}

#[test]
fn import_lists_and_verifies_then_skips_duplicates() {
    let tmp = common::tempdir();
    common::small_ct_mr_study(&tmp.path().join("in"));
    let mut store = Store::open(&tmp.path().join("cache")).expect("open");
    let r = store
        .import(&[tmp.path().join("in")], ImportMode::Copy)
        .expect("import");
    assert_eq!((r.stored, r.series, r.studies, r.duplicates), (11, 2, 2, 0));
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let rows = store.studies().expect("ls");
    assert_eq!(rows.len(), 2);
    let ct = rows
        .iter()
        .find(|r| r.modalities == ["CT"])
        .expect("ct row");
    assert_eq!(
        (
            ct.patient_name.as_str(),
            ct.patient_id.as_str(),
            ct.series,
            ct.instances
        ),
        ("PHANTOM^CHEST", "LBX0001", 1, 8)
    );
    assert!(store.verify().expect("verify").is_clean());
    // Files live under objects/<study>/<series>/<sop>.dcm and are byte-identical to
    // the files imported.
    let sources: HashMap<String, PathBuf> = lightbox::scan::list_files(&tmp.path().join("in"))
        .expect("list sources")
        .into_iter()
        .map(|p| {
            let h = lightbox::dicom::read_header(&p).expect("source readable");
            (h.sop_instance_uid, p)
        })
        .collect();
    let objects = lightbox::scan::list_files(&tmp.path().join("cache/objects")).expect("list");
    assert_eq!(objects.len(), 11);
    for f in &objects {
        let h = lightbox::dicom::read_header(f).expect("stored file readable");
        assert_eq!(
            f.file_name().expect("name").to_string_lossy(),
            format!("{}.dcm", h.sop_instance_uid)
        );
        let source = &sources[&h.sop_instance_uid];
        assert!(
            std::fs::read(f).expect("read stored") == std::fs::read(source).expect("read source"),
            "{} is not byte-identical to {}",
            f.display(),
            source.display()
        );
    }

    let again = store
        .import(&[tmp.path().join("in")], ImportMode::Copy)
        .expect("import again");
    assert_eq!((again.stored, again.duplicates), (0, 11));
    assert_eq!(
        store.studies().expect("ls")[0].instances + store.studies().expect("ls")[1].instances,
        11
    );
}

#[test]
fn changed_bytes_under_the_same_uid_are_kept_as_a_new_version() {
    let tmp = common::tempdir();
    let input = tmp.path().join("in");
    common::small_ct_mr_study(&input);
    let mut store = Store::open(&tmp.path().join("cache")).expect("open");
    store
        .import(std::slice::from_ref(&input), ImportMode::Copy)
        .expect("import");
    // Change one pixel of one CT file (same UIDs, different bytes).
    let f = lightbox::scan::list_files(&input.join("ct"))
        .expect("list")
        .remove(0);
    let mut bytes = std::fs::read(&f).expect("read");
    let n = bytes.len();
    bytes[n - 2] ^= 0x01;
    std::fs::write(&f, &bytes).expect("write");
    let r = store
        .import(std::slice::from_ref(&f), ImportMode::Copy)
        .expect("import changed");
    assert_eq!(r.new_versions.len(), 1, "{r:?}");
    assert!(r.new_versions[0].contains("kept as version 2"));
    assert!(store.verify().expect("verify").is_clean());
    // Two versions of one instance: listed once, both versions' bytes counted.
    listing_agrees_with_rows(&store);
    assert_eq!(store.stats().expect("stats").instances, 11);
}

#[test]
fn verify_finds_missing_corrupt_and_unindexed_files_and_rebuild_restores_the_index() {
    let tmp = common::tempdir();
    common::small_ct_mr_study(&tmp.path().join("in"));
    let root = tmp.path().join("cache");
    let mut store = Store::open(&root).expect("open");
    store
        .import(&[tmp.path().join("in")], ImportMode::Copy)
        .expect("import");
    let mut files = lightbox::scan::list_files(&root.join("objects")).expect("list");
    files.sort();
    std::fs::remove_file(&files[0]).expect("remove");
    let mut b = std::fs::read(&files[1]).expect("read");
    let last = b.len() - 1;
    b[last] ^= 0xFF;
    std::fs::write(&files[1], &b).expect("corrupt");
    std::fs::copy(&files[2], root.join("objects").join("stray.dcm")).expect("stray");
    let v = store.verify().expect("verify");
    assert_eq!(
        (v.missing.len(), v.corrupt.len(), v.orphaned.len()),
        (1, 1, 1),
        "{v:?}"
    );
    assert!(!v.is_clean());

    // Lose the index entirely: rebuild from the files.
    drop(store);
    for f in ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"] {
        let _ = std::fs::remove_file(root.join(f));
    }
    std::fs::remove_file(root.join("objects").join("stray.dcm")).expect("rm stray");
    let mut store = Store::open(&root).expect("reopen");
    assert!(store.studies().expect("ls").is_empty());
    let n = store.rebuild().expect("rebuild");
    assert_eq!(n, 10, "11 imported, one deleted");
    assert!(store.verify().expect("verify").is_clean());
    let total: usize = store
        .studies()
        .expect("ls")
        .iter()
        .map(|r| r.instances)
        .sum();
    assert_eq!(total, 10);
}

#[test]
fn linked_import_indexes_media_in_place() {
    let tmp = common::tempdir();
    let media = common::pydicom_test_files().join("dicomdirtests");
    let mut store = Store::open(&tmp.path().join("cache")).expect("open");
    let r = store.import(&[media], ImportMode::Link).expect("import");
    assert_eq!(r.stored, 31);
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    assert!(
        lightbox::scan::list_files(&tmp.path().join("cache/objects"))
            .expect("list")
            .is_empty(),
        "nothing copied"
    );
    assert_eq!(store.studies().expect("ls").len(), 6);
    assert!(store.verify().expect("verify").is_clean());
}

#[test]
fn hostile_uids_never_leave_the_cache_root() {
    use dicom_core::{DataElement, PrimitiveValue, VR};
    use dicom_dictionary_std::{tags, uids};
    use dicom_object::InMemDicomObject;
    use dicom_object::meta::FileMetaTableBuilder;
    let tmp = common::tempdir();
    let mut o = InMemDicomObject::new_empty();
    let t = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    o.put(t(
        tags::SOP_CLASS_UID,
        VR::UI,
        uids::SECONDARY_CAPTURE_IMAGE_STORAGE,
    ));
    o.put(t(tags::SOP_INSTANCE_UID, VR::UI, "../../../../tmp/escaped"));
    o.put(t(tags::STUDY_INSTANCE_UID, VR::UI, "/etc"));
    o.put(t(tags::SERIES_INSTANCE_UID, VR::UI, ".."));
    let f = o
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax(uids::EXPLICIT_VR_LITTLE_ENDIAN)
                .media_storage_sop_class_uid(uids::SECONDARY_CAPTURE_IMAGE_STORAGE)
                .media_storage_sop_instance_uid("1.2.3"),
        )
        .expect("meta");
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).expect("mkdir");
    f.write_to_file(input.join("evil.dcm")).expect("write");
    let root = tmp.path().join("cache");
    let mut store = Store::open(&root).expect("open");
    let r = store.import(&[input], ImportMode::Copy).expect("import");
    assert_eq!(r.stored, 1, "{r:?}");
    let files = lightbox::scan::list_files(&root.join("objects")).expect("list");
    assert_eq!(files.len(), 1);
    let canon = std::fs::canonicalize(&files[0]).expect("canon");
    assert!(
        canon.starts_with(std::fs::canonicalize(root.join("objects")).expect("root")),
        "{}",
        canon.display()
    );
    assert!(!Path::new("/tmp/escaped.dcm").exists());
    assert!(store.verify().expect("verify").is_clean());
}

/// The files under `objects/` and `tmp/` with their inode and size: what an import
/// has written (a new file, or a rename over an orphan) changes it.
fn cache_files(root: &Path) -> BTreeSet<(PathBuf, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    ["objects", "tmp"]
        .iter()
        .flat_map(|d| lightbox::scan::list_files(&root.join(d)).unwrap_or_default())
        .filter_map(|p| {
            let m = std::fs::metadata(&p).ok()?;
            Some((p, m.ino(), m.len()))
        })
        .collect()
}

#[test]
fn importer_killed_mid_transfer_leaves_no_half_indexed_instance() {
    use std::os::unix::process::ExitStatusExt;
    const SLICES: usize = 120;
    // Kills that must land mid-import (the importer still running, some files
    // written, not all indexed), and the attempts allowed to get them.
    const WANTED: usize = 4;
    const ATTEMPTS: usize = 60;
    const SIGKILL: i32 = 9;
    let tmp = common::tempdir();
    let input = tmp.path().join("in");
    synth::write_ct(
        &input,
        &synth::CtSpec {
            slices: SLICES,
            size: 128,
            ..Default::default()
        },
    )
    .expect("ct");
    let bin = env!("CARGO_BIN_EXE_lightbox");
    let mut caches = 0;
    let mut root = tmp.path().join("cache-0");
    // The delay before the kill adapts: later when the kill came before the import
    // wrote anything, earlier (on a fresh cache) when it had already finished.
    let mut delay_ms = 10.0_f64;
    let mut landed = 0;
    let mut seen = Vec::new();
    for attempt in 0..ATTEMPTS {
        if landed == WANTED {
            break;
        }
        let before = cache_files(&root);
        let mut child = std::process::Command::new(bin)
            .args([
                "import",
                input.to_str().expect("utf8"),
                "--cache",
                root.to_str().expect("utf8"),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_micros((delay_ms * 1000.0) as u64));
        // SIGKILL; if it has already exited this does nothing, and wait() says so.
        let _ = child.kill();
        let status = child.wait().expect("wait");
        // After every crash: nothing indexed without its file, nothing corrupt,
        // and the killed importer's temporary copies gone once a writer reopens.
        let store = Store::open(&root).expect("reopen after crash");
        let v = store.verify().expect("verify");
        assert!(
            v.missing.is_empty() && v.corrupt.is_empty() && v.leftovers.is_empty(),
            "after attempt {attempt} ({delay_ms:.1} ms, {status}): {v:?}"
        );
        let left: Vec<_> = std::fs::read_dir(root.join("tmp"))
            .expect("tmp")
            .flatten()
            .map(|e| e.path())
            .collect();
        assert!(
            left.is_empty(),
            "after attempt {attempt}: tmp/ holds {left:?}"
        );
        let indexed = store.stats().expect("stats").instances;
        drop(store);
        let wrote = cache_files(&root) != before;
        let outcome = if status.signal() != Some(SIGKILL) {
            assert!(
                status.success(),
                "attempt {attempt}: import failed: {status}"
            );
            "finished first"
        } else if indexed == SLICES {
            "killed after indexing everything"
        } else if !wrote {
            "killed before writing"
        } else {
            landed += 1;
            "killed mid-import"
        };
        seen.push(format!("{delay_ms:.1} ms: {outcome} ({indexed} indexed)"));
        if indexed == SLICES {
            // Too late, and nothing is left to import here: a fresh cache, earlier.
            caches += 1;
            root = tmp.path().join(format!("cache-{caches}"));
            delay_ms *= 0.6;
        } else if !wrote {
            delay_ms = delay_ms * 1.5 + 2.0;
        } else {
            // Landed: the next kill a little later, at another stage of the import.
            delay_ms *= 1.2;
        }
    }
    assert_eq!(
        landed, WANTED,
        "only {landed} of {WANTED} kills landed mid-import in {ATTEMPTS} attempts: {seen:#?}"
    );
    // Re-sending completes the study and leaves the cache clean.
    let mut store = Store::open(&root).expect("open");
    let r = store
        .import(&[input], ImportMode::Copy)
        .expect("final import");
    assert!(r.failures.is_empty(), "{:?}", r.failures);
    let v = store.verify().expect("verify");
    assert!(v.is_clean(), "{v:?}");
    assert_eq!(store.studies().expect("ls")[0].instances, SLICES);
}

#[test]
fn eviction_removes_least_recently_opened_unpinned_studies_whole() {
    let tmp = common::tempdir();
    let input = tmp.path().join("in");
    // Three studies: CT (8×32² ≈ 17 KB each), MR, CR (≈ 2.6 MB).
    common::small_ct_mr_study(&input);
    synth::write_cr(&input.join("cr")).expect("cr");
    let mut store = Store::open(&tmp.path().join("cache")).expect("open");
    store.import(&[input], ImportMode::Copy).expect("import");
    let rows = store.studies().expect("ls");
    let uid = |m: &str| {
        rows.iter()
            .find(|r| r.modalities == [m])
            .expect("study")
            .study_uid
            .clone()
    };
    let (ct, mr, cr) = (uid("CT"), uid("MR"), uid("CR"));
    let before = store.stats().expect("stats");
    assert_eq!((before.studies, before.instances), (3, 12));
    listing_agrees_with_rows(&store);

    // The CR is the biggest and least recently opened, but pinned: it stays.
    store.set_pinned(&cr, true).expect("pin");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    store.touch(&mr).expect("touch");
    let removed = store.evict(1).expect("evict");
    assert_eq!(
        removed,
        vec![ct.clone(), mr.clone()],
        "oldest first, pinned kept"
    );
    let after = store.stats().expect("stats");
    assert_eq!(
        (after.studies, after.instances, after.pinned_studies),
        (1, 1, 1)
    );
    assert!(store.verify().expect("verify").is_clean());
    listing_agrees_with_rows(&store);
    assert_eq!(
        lightbox::scan::list_files(&tmp.path().join("cache/objects"))
            .expect("list")
            .len(),
        1
    );

    store.set_pinned(&cr, false).expect("unpin");
    assert_eq!(store.remove_study(&cr).expect("rm"), 1);
    assert_eq!(
        store.stats().expect("stats"),
        lightbox::store::Stats::default()
    );
    assert!(
        store.remove_study(&cr).is_err(),
        "removing twice names the missing study"
    );
}

fn write_zip(path: &Path, entries: &[(&str, Vec<u8>)]) {
    use std::io::Write;
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).expect("create zip"));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        z.start_file(*name, opts).expect("entry");
        z.write_all(bytes).expect("write entry");
    }
    z.finish().expect("finish zip");
}

#[test]
fn zip_archives_import_and_bombs_and_traversal_are_refused() {
    let tmp = common::tempdir();
    let input = tmp.path().join("in");
    common::small_ct_mr_study(&input);
    let entries: Vec<(String, Vec<u8>)> = lightbox::scan::list_files(&input.join("mr"))
        .expect("list")
        .iter()
        .map(|p| {
            (
                format!(
                    "export/MR/{}",
                    p.file_name().expect("name").to_string_lossy()
                ),
                std::fs::read(p).expect("read"),
            )
        })
        .collect();
    let good = tmp.path().join("study.zip");
    write_zip(
        &good,
        &entries
            .iter()
            .map(|(n, b)| (n.as_str(), b.clone()))
            .collect::<Vec<_>>(),
    );
    // 300 MB of zeros deflate to ~300 KB: a 1000:1 bomb.
    let bomb = tmp.path().join("bomb.zip");
    write_zip(&bomb, &[("zeros.dcm", vec![0u8; 300 << 20])]);
    let sneaky = tmp.path().join("sneaky.zip");
    write_zip(&sneaky, &[("../../outside.dcm", entries[0].1.clone())]);

    let root = tmp.path().join("cache");
    let mut store = Store::open(&root).expect("open");
    let r = store
        .import(&[good, bomb.clone(), sneaky.clone()], ImportMode::Copy)
        .expect("import");
    assert_eq!(r.stored, 3, "the MR series from the good archive: {r:?}");
    assert_eq!(r.failures.len(), 2, "{:?}", r.failures);
    let why = |p: &Path| {
        r.failures
            .iter()
            .find(|f| f.0 == p)
            .map(|f| f.1.clone())
            .unwrap_or_default()
    };
    assert!(why(&bomb).contains("zip bomb"), "{}", why(&bomb));
    assert!(
        why(&sneaky).contains("outside the archive folder"),
        "{}",
        why(&sneaky)
    );
    assert!(!tmp.path().join("outside.dcm").exists() && !root.join("outside.dcm").exists());
    // Nothing left behind in tmp/.
    assert_eq!(std::fs::read_dir(root.join("tmp")).expect("tmp").count(), 0);
    assert!(store.verify().expect("verify").is_clean());
}

#[test]
fn measurements_are_kept_per_instance_and_go_with_their_study() {
    use lightbox::store::MeasurementRow;
    let tmp = common::tempdir();
    let input = tmp.path().join("in");
    common::small_ct_mr_study(&input);
    let root = tmp.path().join("cache");
    let mut store = Store::open(&root).expect("open");
    store.import(&[input], ImportMode::Copy).expect("import");
    let rows = store.studies().expect("ls");
    let ct = rows.iter().find(|r| r.modalities == ["CT"]).expect("CT");
    let series = store.series_of(&ct.study_uid).expect("series");
    let sop = store
        .instances_of(&series[0].series_uid)
        .expect("instances")[0]
        .sop_uid
        .clone();
    let m = MeasurementRow {
        id: 0,
        sop_uid: sop.clone(),
        frame: 0,
        kind: "length".into(),
        space: "patient".into(),
        points: vec![[-10.0, 5.0, 300.0], [20.0, 45.0, 300.0]],
    };
    let id = store.add_measurement(&m).expect("add");
    let id2 = store
        .add_measurement(&MeasurementRow {
            kind: "ellipse".into(),
            ..m.clone()
        })
        .expect("add");
    // Every kind the viewer draws is kept, on images and on MPR planes
    // (patient points on a plane reformatted from the stack of `sop`).
    let mut more = Vec::new();
    for (kind, n) in [("rectangle", 2), ("angle", 3), ("cobb", 4)] {
        let row = MeasurementRow {
            kind: kind.into(),
            points: m.points.iter().cycle().take(n).copied().collect(),
            ..m.clone()
        };
        more.push(store.add_measurement(&row).expect(kind));
    }
    let on_mpr = store
        .add_measurement(&MeasurementRow {
            space: "mpr".into(),
            ..m.clone()
        })
        .expect("on an MPR plane");
    let got = store
        .measurements_of(std::slice::from_ref(&sop))
        .expect("list");
    assert_eq!(got.len(), 6);
    assert_eq!(got[5].space, "mpr");
    for x in more.into_iter().chain([on_mpr]) {
        store.delete_measurement(x).expect("delete");
    }
    // Reopened (the viewer opens the cache afresh), the measurements are there.
    drop(store);
    let mut store = Store::open(&root).expect("reopen");
    let got = store
        .measurements_of(std::slice::from_ref(&sop))
        .expect("list");
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], MeasurementRow { id, ..m.clone() });
    store.delete_measurement(id2).expect("delete");
    assert_eq!(
        store
            .measurements_of(std::slice::from_ref(&sop))
            .expect("list")
            .len(),
        1
    );
    // Removing the study removes its measurements.
    store.remove_study(&ct.study_uid).expect("rm");
    assert!(store.measurements_of(&[sop]).expect("list").is_empty());
}

#[test]
fn temporaries_of_dead_writers_are_removed_by_the_next_writer() {
    let tmp = common::tempdir();
    let root = tmp.path().join("cache");
    drop(Store::open(&root).expect("create"));
    // What a killed import and a killed zip import leave (a process id no system
    // runs: above Linux's largest pid_max), and this process's own file in use.
    let t = root.join("tmp");
    std::fs::write(t.join("999999999-3.part"), vec![7u8; 5000]).expect("part");
    std::fs::create_dir_all(t.join("zip-999999999-0/sub")).expect("zip dir");
    std::fs::write(t.join("zip-999999999-0/sub/a.dcm"), vec![1u8; 3000]).expect("zip file");
    std::fs::write(t.join("stray.bin"), b"x").expect("stray");
    let own = t.join(format!("{}-0.part", std::process::id()));
    std::fs::write(&own, b"in use").expect("own");
    let store = Store::open(&root).expect("reopen");
    let left: Vec<String> = std::fs::read_dir(&t)
        .expect("tmp")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        vec![
            own.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned()
        ]
    );
    let v = store.verify().expect("verify");
    assert!(
        v.is_clean(),
        "a live writer's file is not a leftover: {v:?}"
    );
    // The CLI reports a leftover it finds (here: one made after the open).
    std::fs::write(t.join("999999999-4.part"), vec![0u8; 2048]).expect("part");
    let v = store.verify().expect("verify");
    assert_eq!(v.leftovers, vec![(t.join("999999999-4.part"), 2048)]);
    assert!(!v.is_clean());
}
