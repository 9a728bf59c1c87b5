//! The panels around the viewports: study browser, series strip, toolbar (and
//! its icons), status bar with the skipped-files and help windows, and the
//! viewport grid itself.

mod browser;
mod grid;
mod icons;
mod series;
mod status;
mod toolbar;

pub(in crate::ui) use icons::icon_button;
pub(in crate::ui) use series::{age_of, show_date};
