//! `lightbox synth` (deterministic synthetic studies into a folder) and
//! `lightbox demo` (the same studies in the cache, opened in the viewer): the only
//! commands that use [`crate::synth`].

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::cache_root;
use super::view::run_viewer;
use crate::error::{Error, Result};
use crate::synth;

#[derive(Debug, Args)]
pub(super) struct SynthArgs {
    /// Output folder (created).
    out: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value = "all")]
    what: SynthWhat,
    /// CT slices.
    #[arg(long, default_value_t = 400)]
    slices: usize,
    /// CT matrix size (columns = rows).
    #[arg(long, default_value_t = 512)]
    size: usize,
    /// CR matrix rows (3000 with --cr-columns 2500: a full-size radiograph).
    #[arg(long, default_value_t = 1248)]
    cr_rows: usize,
    /// CR matrix columns.
    #[arg(long, default_value_t = 1024)]
    cr_columns: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum SynthWhat {
    All,
    Ct,
    Mr,
    Cr,
}

/// `lightbox demo`: the synthetic studies, generated into the cache on first use,
/// opened with the CT and its prior side by side.
pub(super) fn cmd_demo(
    cache: Option<PathBuf>,
    slices: usize,
    size: usize,
    layout: Option<(usize, usize)>,
) -> Result<ExitCode> {
    let root = cache_root(cache)?;
    let mut store = crate::store::Store::open(&root)?;
    let current = synth::uid("lightbox-ct.study");
    let prior = synth::uid("lightbox-ct-prior.study");
    let cached = store.studies()?;
    let have = |uid: &str| cached.iter().any(|s| s.study_uid == uid);
    if !have(&current) || !have(&prior) {
        eprintln!(
            "writing the demo studies into {} (first use)…",
            root.display()
        );
        let src = root
            .join("tmp")
            .join(format!("demo-{}", std::process::id()));
        let (n, c, p) = synth::write_demo(&src, slices, size)?;
        debug_assert_eq!((c.as_str(), p.as_str()), (current.as_str(), prior.as_str()));
        let r = store.import(std::slice::from_ref(&src), crate::store::ImportMode::Copy);
        let _ = std::fs::remove_dir_all(&src);
        let r = r?;
        eprintln!("{n} file(s) generated, {} imported", r.stored);
    }
    drop(store);
    run_viewer(root, vec![current, prior], (1, 2), layout)
}

/// `lightbox synth`.
pub(super) fn cmd_synth(a: SynthArgs) -> Result<ExitCode> {
    std::fs::create_dir_all(&a.out).map_err(|e| Error::Write {
        path: a.out.clone(),
        reason: e.to_string(),
    })?;
    let t = Instant::now();
    let mut written = 0;
    if matches!(a.what, SynthWhat::All | SynthWhat::Ct) {
        let spec = synth::CtSpec {
            slices: a.slices,
            size: a.size,
            ..synth::CtSpec::default()
        };
        written += synth::write_ct(&a.out.join("ct"), &spec)?;
    }
    if matches!(a.what, SynthWhat::All | SynthWhat::Mr) {
        written += synth::write_mr(&a.out.join("mr"), &synth::MrSpec::default())?;
    }
    if matches!(a.what, SynthWhat::All | SynthWhat::Cr) {
        written += synth::write_cr_sized(&a.out.join("cr"), a.cr_rows, a.cr_columns)?;
    }
    out!(
        "{written} file(s) written under {} in {:.1} s",
        a.out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
