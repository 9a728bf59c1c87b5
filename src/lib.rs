//! # Lightbox
//!
//! A native diagnostic DICOM display workstation. This crate is its library; the
//! `lightbox` binary is a thin command line over it.
//!
//! ## Data flow
//!
//! ```text
//!  files / folders ──▶ scan (header-only, parallel) ──▶ model (patients ▸ studies ▸
//!  series ▸ display sets, sorted by position, geometry checked)
//!        │                                                   │
//!        ▼                                                   ▼
//!  dicom (decode one frame, any transfer syntax)       volume (contiguous 16-bit
//!        │                                              volume + patient affine)
//!        ▼
//!  imaging (Modality LUT ▸ VOI ▸ Presentation LUT; colour; geometry) ──▶ PNG / screen
//!
//!  import (files, folders, DICOMDIR, zip) ─┐
//!  net (Storage SCP, C-STORE / C-ECHO) ────┼──▶ store (files + SQLite index)
//!  net (C-FIND / C-MOVE / C-GET SCU) ──────┘
//! ```
//!
//! `audit` appends the audit trail (security-relevant events, PS3.15 A.5);
//! `config` holds the TOML configuration; `synth` writes the synthetic studies the
//! tests, benchmarks and quick start use; `cli` is the command line.
//!
//! ## Failures
//!
//! Every fallible function returns [`error::Error`], whose message names the file,
//! the attribute or frame, and the reason. Nothing panics on input: a folder with
//! bad files still yields the good ones, with the bad ones listed.

pub mod audit;
pub mod cli;
pub mod config;
pub mod dicom;
pub mod error;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod hanging;
pub mod imaging;
pub mod model;
pub mod net;
pub mod render;
pub mod scan;
pub mod store;
pub mod synth;
pub mod ui;
pub mod values;
pub mod volume;

pub use error::{Error, Result};
