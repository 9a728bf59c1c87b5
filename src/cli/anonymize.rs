//! `lightbox anonymize`: de-identify files or folders into a new folder (PS3.15
//! Basic Application Level Confidentiality Profile, see [`crate::dicom::anonymize`]).

use std::path::PathBuf;
use std::process::ExitCode;

use super::to_json;
use crate::error::{Error, Result};
use crate::scan;

#[derive(Debug, clap::Args)]
pub(super) struct AnonymizeArgs {
    /// Files or folders to export.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// A new or empty folder for the de-identified files.
    #[arg(long, short)]
    out: PathBuf,
    /// The pseudonym for Patient's Name.
    #[arg(long, default_value = "ANONYMOUS")]
    patient_name: String,
    /// The pseudonym for Patient ID.
    #[arg(long, default_value = "ANON")]
    patient_id: String,
    /// Keep dates and times (Retain Longitudinal Temporal Information option).
    #[arg(long)]
    keep_dates: bool,
    /// Keep study and series descriptions and protocol names (review them first).
    #[arg(long)]
    keep_descriptions: bool,
    #[arg(long)]
    json: bool,
}

/// `lightbox anonymize`.
pub(super) fn cmd_anonymize(a: AnonymizeArgs) -> Result<ExitCode> {
    let mut files = Vec::new();
    for p in &a.inputs {
        if p.is_dir() {
            files.extend(scan::list_files(p).map_err(|e| Error::Io {
                path: p.clone(),
                source: e,
            })?);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            return Err(Error::Usage(format!(
                "{}: no such file or folder",
                p.display()
            )));
        }
    }
    let opts = crate::dicom::anonymize::Options {
        patient_name: a.patient_name.clone(),
        patient_id: a.patient_id.clone(),
        keep_dates: a.keep_dates,
        keep_descriptions: a.keep_descriptions,
    };
    let r = crate::dicom::anonymize::export(&files, &a.out, &opts)?;
    if a.json {
        out!("{}", to_json(&r)?);
    } else {
        out!(
            "{} file(s) de-identified into {}",
            r.written.len(),
            a.out.display()
        );
    }
    for (f, why) in &r.refused {
        eprintln!("not exported: {}: {why}", f.display());
    }
    // Partial success exits 2, as everywhere else.
    Ok(match (r.written.is_empty(), r.refused.is_empty()) {
        (_, true) => ExitCode::SUCCESS,
        (false, false) => ExitCode::from(2),
        (true, false) => ExitCode::from(1),
    })
}
