//! The panels around the viewports: study browser, series strip, toolbar, and the
//! viewport grid itself.

mod browser;
mod grid;
mod series;
mod toolbar;
