//! `lightbox import` (files, folders, CD/USB roots into the cache) and
//! `lightbox cache ...` (list, verify, rebuild, stats, pin, remove, evict): the
//! commands about the local cache.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Subcommand;

use super::{cache_root, json_value, report_failures, to_json};
use crate::error::{Error, Result};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub(super) enum CacheAction {
    /// List cached studies with patient, counts and UIDs.
    Ls {
        /// Also list each study's series.
        #[arg(long)]
        series: bool,
        /// Also list each series' instances (implies --series).
        #[arg(long)]
        instances: bool,
        #[arg(long)]
        json: bool,
    },
    /// Check every indexed file (present, size, CRC-32), find unindexed files and
    /// temporary files of crashed writers, and run SQLite's integrity check.
    Verify {
        /// Repair what was found: index unindexed files (unreadable ones go to
        /// lost+found/), drop rows whose file is gone, remove leftovers.
        #[arg(long)]
        repair: bool,
    },
    /// Recreate the index from the files alone.
    Rebuild,
    /// Totals: patients, studies, series, instances, size, pins.
    Stats,
    /// Pin a study: it is never evicted.
    Pin { study: String },
    /// Unpin a study.
    Unpin { study: String },
    /// Remove a study (rows first, then files).
    Rm { study: String },
    /// Evict least recently opened, unpinned studies down to a size cap.
    Evict {
        /// Size cap in megabytes (default: cache_max_mb from the configuration).
        #[arg(long)]
        max_mb: Option<u64>,
    },
}

/// `lightbox cache rebuild`: the index from the files; a damaged index is set
/// aside first (what it still yields of pins and measurements carried over).
fn cache_rebuild(root: &std::path::Path) -> Result<ExitCode> {
    match Store::open(root) {
        Ok(mut store) => {
            let n = store.rebuild()?;
            out!("index rebuilt from the files: {n} instance(s)");
        }
        Err(Error::IndexDamaged { reason, .. }) => {
            let (_, s) = Store::rebuild_damaged(root, &reason)?;
            out!("the index was damaged: {}", s.reason);
            out!("set aside as {}", s.damaged_copy.display());
            out!(
                "index rebuilt from the files: {} instance(s); carried over {} pin(s), {} measurement(s), {} retrieve record(s)",
                s.instances,
                s.pins,
                s.measurements,
                s.retrievals
            );
            for l in &s.lost {
                out!("could not be read back: {l}");
            }
        }
        Err(e) => return Err(e),
    }
    Ok(ExitCode::SUCCESS)
}

/// The cache given, or the configuration's.
fn open_store(cache: Option<PathBuf>) -> Result<Store> {
    Store::open(&cache_root(cache)?)
}

/// `lightbox import`.
pub(super) fn cmd_import(
    paths: &[PathBuf],
    link: bool,
    cache: Option<PathBuf>,
) -> Result<ExitCode> {
    for p in paths {
        if !p.exists() {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    let mut store = open_store(cache)?;
    let t = Instant::now();
    let mode = if link {
        crate::store::ImportMode::Link
    } else {
        crate::store::ImportMode::Copy
    };
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let r = store.import_with_progress(paths, mode, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let r = r?;
    out!(
        "{} instance(s) stored in {} series of {} study(ies) in {:.2} s; {} duplicate(s) skipped; {} new version(s); cache {}",
        r.stored,
        r.series,
        r.studies,
        t.elapsed().as_secs_f64(),
        r.duplicates,
        r.new_versions.len(),
        store.root().display()
    );
    for w in r.warnings.iter().chain(&r.new_versions) {
        eprintln!("warning: {w}");
    }
    report_failures(&r.failures);
    if r.cache_full {
        eprintln!(
            "{}: no space left on device: the import stopped there; what was stored is indexed, \
             nothing is half-stored. Free space (or `lightbox cache evict`) and import again: \
             what is already cached is skipped",
            store.root().display()
        );
    }
    Ok(if r.failures.is_empty() {
        ExitCode::SUCCESS
    } else if r.stored + r.duplicates + r.new_versions.len() > 0 {
        ExitCode::from(2)
    } else {
        ExitCode::from(1)
    })
}

/// `lightbox cache ...`.
pub(super) fn cmd_cache(action: CacheAction, cache: Option<PathBuf>) -> Result<ExitCode> {
    let root = cache_root(cache)?;
    if matches!(action, CacheAction::Rebuild) {
        return cache_rebuild(&root);
    }
    let mut store = Store::open(&root)?;
    match action {
        CacheAction::Ls {
            series,
            instances,
            json,
        } => cache_ls(&store, series, instances, json),
        CacheAction::Verify { repair } => {
            let mut v = store.verify()?;
            if repair && !v.is_clean() {
                if !v.index_problems.is_empty() {
                    return Err(Error::IndexDamaged {
                        path: store.root().join("index.sqlite"),
                        reason: v.index_problems.join("; "),
                    });
                }
                let r = store.repair(&v)?;
                out!(
                    "repaired: {} unindexed file(s) indexed, {} moved to lost+found, {} row(s) without a file removed, {} leftover(s) removed",
                    r.indexed,
                    r.quarantined.len(),
                    r.dropped_rows.len(),
                    r.removed_leftovers
                );
                for d in &r.dropped_rows {
                    out!("removed from the index (file gone; retrieve the study again): {d}");
                }
                v = store.verify()?;
            }
            for m in &v.missing {
                out!("missing file: {m}");
            }
            for c in &v.corrupt {
                out!("checksum mismatch: {c}");
            }
            for o in &v.orphaned {
                out!("not indexed: {}", o.display());
            }
            for p in &v.index_problems {
                out!("index damaged: {p}");
            }
            for (p, bytes) in &v.leftovers {
                out!(
                    "left over from a crashed writer: {} ({} KB; could not be removed)",
                    p.display(),
                    bytes.div_ceil(1024)
                );
            }
            out!(
                "{} instance(s) checked: {} missing, {} corrupt, {} unindexed file(s), {} leftover temporary file(s); index {}",
                v.checked,
                v.missing.len(),
                v.corrupt.len(),
                v.orphaned.len(),
                v.leftovers.len(),
                if v.index_problems.is_empty() {
                    "intact (SQLite integrity check)".to_string()
                } else {
                    format!(
                        "damaged ({} problem(s)): run `lightbox cache rebuild`",
                        v.index_problems.len()
                    )
                }
            );
            if !v.orphaned.is_empty() || !v.missing.is_empty() {
                out!("`lightbox cache rebuild` indexes the stored files afresh");
            }
            Ok(if v.is_clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        CacheAction::Rebuild => cache_rebuild(store.root()),
        CacheAction::Stats => {
            let s = store.stats()?;
            out!(
                "{} patient(s), {} study(ies) ({} pinned), {} series, {} instance(s), {:.1} MB in {}",
                s.patients,
                s.studies,
                s.pinned_studies,
                s.series,
                s.instances,
                s.bytes as f64 / 1e6,
                store.root().display()
            );
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Pin { study } => {
            store.set_pinned(&study, true)?;
            out!("pinned {study}");
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Unpin { study } => {
            store.set_pinned(&study, false)?;
            out!("unpinned {study}");
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Rm { study } => {
            let n = store.remove_study(&study)?;
            out!("removed {study} ({n} file(s))");
            Ok(ExitCode::SUCCESS)
        }
        CacheAction::Evict { max_mb } => {
            let cap = match max_mb {
                Some(v) => v,
                None => crate::config::load(&crate::config::default_path())?
                    .cache_max_mb
                    .0
                    .ok_or_else(|| {
                        Error::Usage(
                            "no cap: give --max-mb or set cache_max_mb in the configuration".into(),
                        )
                    })?,
            };
            let removed = store.evict(cap * 1_000_000)?;
            for u in &removed {
                out!("evicted {u}");
            }
            let s = store.stats()?;
            out!(
                "{} study(ies) evicted; {:.1} MB remain",
                removed.len(),
                s.bytes as f64 / 1e6
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `lightbox cache ls`: the cached studies (with their series and instances).
fn cache_ls(store: &Store, series: bool, instances: bool, json: bool) -> Result<ExitCode> {
    let rows = store.studies()?;
    let series = series || instances;
    if json {
        let mut v = Vec::new();
        for r in &rows {
            let mut st = json_value(r)?;
            if series {
                let mut list = Vec::new();
                for se in store.series_of(&r.study_uid)? {
                    let mut sv = json_value(&se)?;
                    if instances {
                        sv["instance_list"] = json_value(store.instances_of(&se.series_uid)?)?;
                    }
                    list.push(sv);
                }
                st["series_list"] = serde_json::Value::Array(list);
            }
            v.push(st);
        }
        out!("{}", to_json(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &rows {
        out!(
            "{} ({})  {}  {}  {}  {} series, {} instances, {:.1} MB{}{}  {}",
            r.patient_name,
            r.patient_id,
            r.date.as_deref().unwrap_or("-"),
            r.modalities_label(),
            r.description.as_deref().unwrap_or(""),
            r.series,
            r.instances,
            r.bytes as f64 / 1e6,
            if r.pinned { ", pinned" } else { "" },
            match r.retrieval {
                Some(crate::store::RetrievalState::Incomplete) => ", INCOMPLETE retrieve",
                Some(crate::store::RetrievalState::InProgress) => {
                    ", retrieve in progress or interrupted"
                }
                _ => "",
            },
            r.study_uid
        );
        if !series {
            continue;
        }
        for se in store.series_of(&r.study_uid)? {
            out!(
                "    Series {} {} {} — {} instance(s)  {}",
                se.number
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                se.modality.as_deref().unwrap_or("??"),
                se.description.as_deref().unwrap_or(""),
                se.instances,
                se.series_uid
            );
            if instances {
                for i in store.instances_of(&se.series_uid)? {
                    out!(
                        "        #{} {}  {}  {} bytes{}{}  {}",
                        i.instance_number
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "-".into()),
                        i.sop_uid,
                        crate::dicom::pixels::transfer_syntax_name(&i.transfer_syntax),
                        i.size,
                        if i.version > 1 {
                            format!(", version {}", i.version)
                        } else {
                            String::new()
                        },
                        if i.linked { ", linked" } else { "" },
                        i.path
                    );
                }
            }
        }
    }
    out!("{} study(ies) in {}", rows.len(), store.root().display());
    Ok(ExitCode::SUCCESS)
}
