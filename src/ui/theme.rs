//! Colours and sizes of the viewer, in one place: no colour literal is written
//! anywhere else in `ui` (clippy's `disallowed-methods` holds the line, see
//! `clippy.toml`). A reading room is dark; text on images is light, warnings amber.

#![allow(clippy::disallowed_methods)]

use eframe::egui::{Color32, Vec2};

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
/// The orientation markers at the image edges.
pub const MARKER: Color32 = Color32::from_rgb(255, 220, 120);
/// The dark edge around everything written or drawn on an image, so that it
/// reads on white as on black.
pub const OUTLINE: Color32 = Color32::from_gray(8);
/// The scale bar and its ticks.
pub const SCALE: Color32 = Color32::from_rgb(255, 220, 120);
/// The probe read-out.
pub const PROBE: Color32 = Color32::from_rgb(160, 220, 255);
/// Overlay planes are drawn in this colour (their texture is white where set).
pub const OVERLAY: Color32 = Color32::WHITE;
/// Reference lines of the active slice on the other viewports.
pub const REFERENCE_LINE: Color32 = Color32::from_rgb(255, 220, 80);
/// An MPR's planes: each plane's lines on the others and its viewport's
/// frame, in one colour (the stack's own plane, across its rows, across its
/// columns: red, green and yellow, as most workstations draw axial, coronal
/// and sagittal).
pub const MPR_ALONG: Color32 = Color32::from_rgb(240, 90, 90);
pub const MPR_ACROSS_ROWS: Color32 = Color32::from_rgb(110, 220, 110);
pub const MPR_ACROSS_COLUMNS: Color32 = Color32::from_rgb(240, 210, 80);
/// The 3-D view's crop box and its face handles.
pub const CROP_BOX: Color32 = Color32::from_rgb(120, 200, 255);
/// Measurements, and the outline of a viewport a series is dragged onto.
pub const MEASUREMENT: Color32 = Color32::from_rgb(120, 255, 140);
/// The stack scroll bar: its track, the decoded slices, the position.
pub const SCROLL_TRACK: Color32 = Color32::from_gray(45);
pub const SCROLL_DECODED: Color32 = Color32::from_gray(110);
pub const SCROLL_THUMB: Color32 = Color32::from_rgb(110, 180, 255);

/// How far the dark edge reaches around text and lines on an image, points.
pub const OUTLINE_WIDTH: f32 = 1.0;
/// The strip at each viewport's right edge kept for the stack scroll bar (no
/// annotation is written there), points.
pub const SCROLL_STRIP: f32 = 10.0;
/// Space between a viewport's edge and what is written at it, and between two
/// annotation boxes, points.
pub const ANNOTATION_INSET: f32 = 4.0;
/// Corner text size in a viewport of normal size, and the smallest it gets in
/// small ones (MPR 1×3, a 3×3 grid), points.
pub const TEXT_SIZE: f32 = 12.0;
pub const TEXT_SIZE_MIN: f32 = 10.0;
/// The orientation markers are this much larger than the corner text.
pub const MARKER_EXTRA: f32 = 3.0;

/// The corner text size for a viewport of `size` points on a display of
/// `pixels_per_point`: 12 points from about 480 points wide (and 320 high), down
/// to 10 in smaller viewports, rounded to whole physical pixels so glyphs stay sharp.
pub fn text_size(size: Vec2, pixels_per_point: f32) -> f32 {
    let by_size = (size.x / 40.0).min(size.y / 26.0);
    let pt = by_size.clamp(TEXT_SIZE_MIN, TEXT_SIZE);
    let ppp = pixels_per_point.max(0.5);
    (pt * ppp).round() / ppp
}
/// Today's study in the series strip ("current").
pub const CURRENT: Color32 = Color32::from_rgb(150, 210, 255);
/// A prior study in the series strip ("prior <date>").
pub const PRIOR: Color32 = Color32::from_rgb(215, 190, 140);
