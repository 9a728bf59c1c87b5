//! Moving through a stack: the mouse wheel counted in notches (not in smoothed
//! points, so one notch is one slice whatever the frame rate), and the stack scroll
//! bar at the viewport's right edge (position, what is decoded, click or drag to
//! jump).

use super::*;
use crate::ui::theme;
use eframe::egui::{self, MouseWheelUnit, Pos2, Rect, Sense};

/// Width of the scroll bar strip at a viewport's right edge (points); the
/// annotations keep out of it.
pub const SCROLL_BAR_WIDTH: f32 = theme::SCROLL_STRIP;

/// Slices a page is (shift + wheel, PageUp/PageDown).
pub const PAGE: f32 = 10.0;

/// What the wheel did this frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WheelInput {
    /// Slices to move, positive toward the previous one (the wheel turned up, as
    /// egui's scroll delta); whole notches and fractions of touchpad pixels.
    pub slices: f32,
    /// Zoom factor (ctrl + wheel).
    pub zoom: f32,
}

/// The wheel events of this frame, every one of them, in order: line deltas (a
/// mouse wheel: one per notch), point deltas (a touchpad: one notch per
/// `line_scroll_speed` points) and page deltas.
pub fn wheel_input(ctx: &egui::Context) -> WheelInput {
    let line = ctx.options(|o| o.input_options.line_scroll_speed).max(1.0);
    ctx.input(|i| {
        let mut w = WheelInput {
            slices: 0.0,
            zoom: 1.0,
        };
        for e in &i.events {
            let egui::Event::MouseWheel {
                unit,
                delta,
                modifiers,
                ..
            } = e
            else {
                continue;
            };
            // Shift turns some platforms' wheel into a horizontal one.
            let d = if modifiers.shift {
                delta.y + delta.x
            } else {
                delta.y
            };
            let notches = match unit {
                MouseWheelUnit::Line => d,
                MouseWheelUnit::Point => d / line,
                MouseWheelUnit::Page => d * PAGE,
            };
            if modifiers.ctrl || modifiers.command {
                w.zoom *= 1.1f32.powf(notches);
            } else if modifiers.shift {
                w.slices += notches * PAGE;
            } else {
                w.slices += notches;
            }
        }
        w
    })
}

/// The scroll bar's strip in a viewport.
pub fn scroll_bar_rect(rect: Rect) -> Rect {
    Rect::from_min_max(
        Pos2::new(rect.max.x - SCROLL_BAR_WIDTH, rect.min.y + 2.0),
        Pos2::new(rect.max.x - 2.0, rect.max.y - 2.0),
    )
}

impl Viewport {
    /// The scroll bar's input: the slice a click or drag on it asks for.
    pub(super) fn scroll_bar(
        &self,
        ui: &mut egui::Ui,
        rect: Rect,
        key: u64,
        view: &FrameView<'_>,
    ) -> Option<usize> {
        if view.count < 2 {
            return None;
        }
        let bar = scroll_bar_rect(rect);
        let r = ui.interact(
            bar,
            ui.scope_id().with(("scroll-bar", key)),
            Sense::click_and_drag(),
        );
        if !(r.clicked() || r.dragged()) {
            return None;
        }
        let p = r.interact_pointer_pos()?;
        let t = ((p.y - bar.min.y) / bar.height().max(1.0)).clamp(0.0, 1.0);
        Some(((t * view.count as f32) as usize).min(view.count - 1))
    }

    /// Draw the scroll bar: the track, the decoded runs brighter, the position.
    pub(super) fn draw_scroll_bar(
        &self,
        painter: &egui::Painter,
        rect: Rect,
        view: &FrameView<'_>,
    ) {
        let n = view.count;
        if n < 2 {
            return;
        }
        let bar = scroll_bar_rect(rect).shrink2(egui::vec2(1.0, 0.0));
        painter.rect_filled(bar, 2.0, theme::SCROLL_TRACK);
        // Decoded runs, one rectangle per run (at most one per point of height).
        let y_of = |i: usize| bar.min.y + bar.height() * i as f32 / n as f32;
        let mut start = None;
        for i in 0..=n {
            let done = view.decoded.get(i).copied().unwrap_or(false) && i < n;
            match (done, start) {
                (true, None) => start = Some(i),
                (false, Some(s)) => {
                    painter.rect_filled(
                        Rect::from_x_y_ranges(bar.x_range(), y_of(s)..=y_of(i)),
                        0.0,
                        theme::SCROLL_DECODED,
                    );
                    start = None;
                }
                _ => {}
            }
        }
        // The thumb stays big enough to see and grab on a long stack.
        let h = (bar.height() / n as f32).max(16.0);
        let y = (y_of(self.index) + bar.height() / n as f32 / 2.0 - h / 2.0)
            .clamp(bar.min.y, bar.max.y - h);
        painter.rect_filled(
            Rect::from_min_size(
                Pos2::new(bar.min.x - 1.0, y),
                egui::vec2(bar.width() + 2.0, h),
            ),
            1.0,
            theme::SCROLL_THUMB,
        );
    }
}
