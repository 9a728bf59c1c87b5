//! Colours and sizes of the viewer, in one place: no colour literal is written
//! anywhere else in `ui` (clippy's `disallowed-methods` holds the line, see
//! `clippy.toml`). A reading room is dark; text on images is light, warnings amber.

#![allow(clippy::disallowed_methods)]

use eframe::egui::Color32;

/// Behind the viewports and inside an empty one.
pub const BACKGROUND: Color32 = Color32::BLACK;
/// Secondary text: status bar, "loading…", find status.
pub const MUTED: Color32 = Color32::GRAY;
/// Warnings: notices, lossy compression, incomplete retrieves, empty viewports.
pub const WARNING: Color32 = Color32::from_rgb(230, 160, 60);
/// Errors (a failed retrieve).
pub const ERROR: Color32 = Color32::from_rgb(230, 100, 80);
/// Success (a complete retrieve).
pub const OK: Color32 = Color32::from_rgb(120, 200, 120);
/// "pinned" in the study list.
pub const PINNED: Color32 = Color32::from_rgb(120, 180, 255);
/// The active viewport's border.
pub const ACTIVE_BORDER: Color32 = Color32::from_rgb(90, 160, 255);
/// Other viewports' borders.
pub const BORDER: Color32 = Color32::from_gray(60);
/// Corner annotations and orientation markers.
pub const ANNOTATION: Color32 = Color32::from_rgb(220, 220, 200);
/// A viewport's note (what a hanging rule wanted).
pub const NOTE: Color32 = Color32::from_rgb(255, 150, 60);
/// The scale bar and its ticks.
pub const SCALE: Color32 = Color32::from_rgb(255, 220, 120);
/// The probe read-out.
pub const PROBE: Color32 = Color32::from_rgb(160, 220, 255);
/// Overlay planes are drawn in this colour (their texture is white where set).
pub const OVERLAY: Color32 = Color32::WHITE;
/// Reference lines of the active slice on the other viewports.
pub const REFERENCE_LINE: Color32 = Color32::from_rgb(255, 220, 80);
/// Measurements, and the outline of a viewport a series is dragged onto.
pub const MEASUREMENT: Color32 = Color32::from_rgb(120, 255, 140);
/// Today's study in the series strip ("current").
pub const CURRENT: Color32 = Color32::from_rgb(150, 210, 255);
/// A prior study in the series strip ("prior <date>").
pub const PRIOR: Color32 = Color32::from_rgb(215, 190, 140);
