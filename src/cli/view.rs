//! `lightbox [PATH...]` and `lightbox view`: import what is given and open the
//! viewer with the user's configuration (PACS nodes, hanging protocols,
//! annotations); also the viewer launch that `demo` shares.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{cache_root, report_failures};
use crate::error::{Error, Result};
use crate::scan;

/// "2x2", "1×3": rows and columns, 1 to 6 each.
pub(super) fn parse_layout(s: &str) -> std::result::Result<(usize, usize), String> {
    let (r, c) = s
        .split_once(['x', 'X', '×'])
        .ok_or_else(|| format!("{s:?}: give rows x columns, e.g. 2x2"))?;
    let n = |v: &str| -> std::result::Result<usize, String> {
        v.trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=6).contains(n))
            .ok_or_else(|| format!("{s:?}: rows and columns are 1 to 6"))
    };
    Ok((n(r)?, n(c)?))
}

/// `lightbox [PATH...]` / `lightbox view`: import what is given, open the viewer.
pub(super) fn cmd_view(
    paths: &[PathBuf],
    cache: Option<PathBuf>,
    layout: Option<(usize, usize)>,
) -> Result<ExitCode> {
    // A path that does not exist is the user's mistake: said before anything
    // (the cache folder included) is made.
    for p in paths {
        if !p.exists() {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    let root = cache_root(cache)?;
    let mut open = Vec::new();
    let mut skipped = Vec::new();
    if !paths.is_empty() {
        let mut store = crate::store::Store::open(&root)?;
        let report = store.import(paths, crate::store::ImportMode::Copy)?;
        report_failures(&report.failures);
        skipped = report.failures;
        // The studies of what was given, found by scanning it (already in the cache
        // if these were duplicates).
        let mut uids = std::collections::BTreeSet::new();
        for p in paths {
            if let Ok(s) = scan::scan(p) {
                uids.extend(s.headers.into_iter().map(|h| h.study_uid));
            }
        }
        open.extend(uids);
    }
    let initial = if open.len() > 1 { (1, 2) } else { (1, 1) };
    let given = (!paths.is_empty()).then(|| crate::ui::names_of(paths));
    run_viewer_with(root, open, initial, layout, skipped, given)
}

/// Open the viewer with the user's configuration (PACS nodes, hanging protocols,
/// annotations, export folder).
pub(super) fn run_viewer(
    cache: PathBuf,
    open_studies: Vec<String>,
    initial: (usize, usize),
    force_layout: Option<(usize, usize)>,
) -> Result<ExitCode> {
    run_viewer_with(cache, open_studies, initial, force_layout, Vec::new(), None)
}

/// [`run_viewer`] with the files skipped importing what was given, and its name.
fn run_viewer_with(
    cache: PathBuf,
    open_studies: Vec<String>,
    initial: (usize, usize),
    force_layout: Option<(usize, usize)>,
    skipped: Vec<(PathBuf, String)>,
    given: Option<String>,
) -> Result<ExitCode> {
    crate::audit::set_default_root(&cache);
    crate::ui::run(crate::ui::Launch {
        open_studies,
        layout: initial,
        pacs: pacs_settings(),
        protocol_dir: crate::hanging::user_dir(),
        force_layout,
        annotation_file: crate::ui::default_annotation_file(),
        slices_per_notch: crate::config::load(&crate::config::default_path())
            .map(|c| c.slices_per_notch.0)
            .unwrap_or(1.0),
        skipped,
        given,
        window_state: crate::ui::default_window_state(),
        ..crate::ui::Launch::new(cache)
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The PACS nodes, AE title and SCP port of the configuration, for the viewer's
/// browser (none when the configuration cannot be read: the viewer still opens,
/// and says why on stderr).
fn pacs_settings() -> crate::ui::pacs::PacsSettings {
    match crate::config::load(&crate::config::default_path()) {
        Ok(c) => crate::ui::pacs::PacsSettings {
            nodes: c.nodes,
            ae_title: c.ae_title.0,
            scp_port: c.scp_port.0,
            tls_port: c.tls_port.0,
            identity: c.tls.0,
            durability: c.durability.0,
        },
        Err(e) => {
            eprintln!("configuration: {e} (no PACS tabs)");
            crate::ui::pacs::PacsSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_layout;

    #[test]
    fn layouts_are_rows_by_columns_of_1_to_6() {
        assert_eq!(parse_layout("2x2"), Ok((2, 2)));
        assert_eq!(parse_layout("1×3"), Ok((1, 3)));
        assert_eq!(parse_layout(" 3 X 2 "), Ok((3, 2)));
        assert!(parse_layout("2").is_err());
        assert!(parse_layout("0x2").is_err());
        assert!(parse_layout("7x1").is_err());
    }
}
