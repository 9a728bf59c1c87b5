//! What is kept near each viewport: decoded frames expanded for the imaging code,
//! GPU textures of the slices around it, overlay planes as textures, and the series
//! thumbnails.

use std::sync::Arc;

use eframe::egui::{self};

use super::loader::Compact;
use super::viewport::ViewerGpu;
use super::*;
use crate::render::ImageTexture;

/// One frame slot of a display set.
#[derive(Default)]
pub(super) struct Slot {
    pub(super) pixels: Option<Arc<Compact>>,
    /// `pixels` is a reduced-resolution preview (the levels dropped; see
    /// `loader`): shown, never measured, exported or cut into planes.
    pub(super) preview: Option<u32>,
    pub(super) error: Option<String>,
    pub(super) texture: Option<Arc<ImageTexture>>,
}

impl Slot {
    /// The frame fully decoded (not a preview).
    pub(super) fn full(&self) -> Option<&Arc<Compact>> {
        self.pixels.as_ref().filter(|_| self.preview.is_none())
    }
}

/// An overlay plane as a texture, with its box in image coordinates (left,
/// top, right, bottom).
pub(super) type OverlayPlane = (egui::TextureHandle, [f64; 4]);

/// GPU textures are kept for the slices this close to one on screen.
const KEEP: usize = 32;
/// Slices prepared ahead of a viewport in the direction it moves, and behind it.
const AHEAD: usize = 8;
const BEHIND: usize = 2;
/// Prefetch uploads per viewport per frame (what is on screen is never held back).
const UPLOADS_PER_FRAME: usize = 4;

impl App {
    /// Expand and upload what the viewports show (W/L never uploads), then the
    /// decoded slices ahead of each viewport in the direction it moves (scroll or
    /// cine), so the next step has its texture ready; keep GPU textures only near
    /// what is shown, so memory stays near the voxel bytes.
    pub(super) fn keep_resident(&mut self, frame: &eframe::Frame) {
        let shown: Vec<(usize, usize)> = self
            .grid
            .viewports
            .iter()
            .filter_map(|v| v.set.map(|s| (s, v.index)))
            .collect();
        self.reformat(&shown);
        self.residency.expanded.retain(|k, _| shown.contains(k));
        self.residency
            .overlay_textures
            .retain(|k, _| shown.contains(k));
        for &(set, index) in &shown {
            if self.residency.overlay_textures.contains_key(&(set, index)) {
                continue;
            }
            let Some((fr, h)) = self.session.frame(set, index) else {
                continue;
            };
            let planes = h
                .overlays
                .iter()
                .filter(|o| o.on_frame(fr.frame))
                .map(|o| {
                    let (w, hh) = (o.columns as usize, o.rows as usize);
                    let mut rgba = vec![0u8; w * hh * 4];
                    for r in 0..o.rows {
                        for c in 0..o.columns {
                            if o.bit(fr.frame, c, r) {
                                let i = (r as usize * w + c as usize) * 4;
                                rgba[i..i + 4].copy_from_slice(&[255, 255, 255, 255]);
                            }
                        }
                    }
                    let tex = self.ctx.load_texture(
                        format!("overlay-{set}-{index}-{:04x}", o.group),
                        egui::ColorImage::from_rgba_unmultiplied([w, hh], &rgba),
                        egui::TextureOptions::NEAREST,
                    );
                    let (l, t) = (o.origin[1] as f64 - 1.0, o.origin[0] as f64 - 1.0);
                    (tex, [l, t, l + w as f64, t + hh as f64])
                })
                .collect();
            self.residency.overlay_textures.insert((set, index), planes);
        }
        for &(set, index) in &shown {
            if self.residency.expanded.contains_key(&(set, index)) {
                continue;
            }
            if let Some(c) = self
                .residency
                .slots
                .get(set)
                .and_then(|s| s.get(index))
                .and_then(|s| s.pixels.as_ref())
            {
                self.residency
                    .expanded
                    .insert((set, index), Arc::new(c.expand()));
            }
        }
        // Which way each viewport is moving through its stack (the textures
        // ahead of it are prepared first).
        for (i, v) in self.grid.viewports.iter().enumerate() {
            let Some(set) = v.set else { continue };
            let dir = match self.residency.travel.get(&i) {
                Some(&(s, j, _)) if s == set && j != v.index => {
                    if v.index > j {
                        1
                    } else {
                        -1
                    }
                }
                Some(&(s, _, d)) if s == set => d,
                _ => 1,
            };
            self.residency.travel.insert(i, (set, v.index, dir));
        }
        let viewports = &self.grid.viewports;
        self.residency
            .travel
            .retain(|&i, _| viewports.get(i).is_some_and(|v| v.set.is_some()));
        for (set, slots) in self.residency.slots.iter_mut().enumerate() {
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.texture.is_some()
                    && !shown
                        .iter()
                        .any(|&(s, j)| s == set && i.abs_diff(j) <= KEEP)
                {
                    slot.texture = None;
                }
            }
        }
        let Some(rs) = frame.wgpu_render_state() else {
            return;
        };
        let renderer = rs.renderer.read();
        let Some(g) = renderer.callback_resources.get::<ViewerGpu>() else {
            return;
        };
        // What is on screen first, from its expanded pixels.
        for &(set, index) in &shown {
            let Some(slot) = self
                .residency
                .slots
                .get_mut(set)
                .and_then(|s| s.get_mut(index))
            else {
                continue;
            };
            if slot.texture.is_none()
                && let Some(p) = self.residency.expanded.get(&(set, index))
            {
                match g.gpu.upload(&rs.device, &rs.queue, p) {
                    Ok(t) => slot.texture = Some(Arc::new(t)),
                    Err(e) => slot.error = Some(e.to_string()),
                }
            }
        }
        // Then the decoded slices ahead in the direction of travel (and a few
        // behind), a few per viewport per frame so a frame stays short.
        let mut pending = false;
        let travel: Vec<(usize, usize, i64)> = self.residency.travel.values().copied().collect();
        for (set, index, dir) in travel {
            let Some(slots) = self.residency.slots.get_mut(set) else {
                continue;
            };
            let n = slots.len() as i64;
            let wanted: Vec<usize> = (1..=AHEAD as i64)
                .map(|k| index as i64 + dir * k)
                .chain((1..=BEHIND as i64).map(|k| index as i64 - dir * k))
                .filter(|&j| (0..n).contains(&j))
                .map(|j| j as usize)
                .filter(|&j| {
                    let s = &slots[j];
                    s.texture.is_none() && s.error.is_none() && s.pixels.is_some()
                })
                .collect();
            pending |= wanted.len() > UPLOADS_PER_FRAME;
            for j in wanted.into_iter().take(UPLOADS_PER_FRAME) {
                let slot = &mut slots[j];
                let Some(c) = slot.pixels.as_ref() else {
                    continue;
                };
                match g.gpu.upload(&rs.device, &rs.queue, &c.expand()) {
                    Ok(t) => slot.texture = Some(Arc::new(t)),
                    Err(e) => slot.error = Some(e.to_string()),
                }
            }
        }
        self.residency.prefetch_pending = pending;
        if pending {
            self.ctx.request_repaint();
        }
    }

    /// The series strip's thumbnail of a set, from one of its decoded frames (the
    /// CPU reference pipeline, box-filtered down).
    pub(super) fn make_thumbnail(&mut self, set: usize, index: usize) {
        let Some(c) = self
            .residency
            .slots
            .get(set)
            .and_then(|s| s.get(index))
            .and_then(|s| s.pixels.as_ref())
        else {
            return;
        };
        let Some((fr, h)) = self.session.frame(set, index) else {
            return;
        };
        let px = c.expand();
        let Ok(r) = crate::imaging::render::render(
            h,
            fr.frame,
            &px,
            &crate::imaging::render::RenderOptions::default(),
        ) else {
            return;
        };
        let image = thumbnail(&r, 72);
        let tex =
            self.ctx
                .load_texture(format!("thumb-{set}"), image, egui::TextureOptions::LINEAR);
        if let Some(t) = self.residency.thumbs.get_mut(set) {
            *t = Some(tex);
        }
    }
}

/// A thumbnail of a rendered frame, at most `max` pixels on its longer side, by
/// averaging the source pixels each thumbnail pixel covers.
pub(super) fn thumbnail(r: &crate::imaging::render::Rendered, max: usize) -> egui::ColorImage {
    let (w, h) = (r.width as usize, r.height as usize);
    let scale = (max as f64 / w.max(h).max(1) as f64).min(1.0);
    let (tw, th) = (
        ((w as f64 * scale).round() as usize).max(1),
        ((h as f64 * scale).round() as usize).max(1),
    );
    let ch = r.channels as usize;
    let k = r.max_level.max(1) as f64;
    let mut rgba = Vec::with_capacity(tw * th * 4);
    for ty in 0..th {
        let (y0, y1) = (ty * h / th, ((ty + 1) * h / th).max(ty * h / th + 1));
        for tx in 0..tw {
            let (x0, x1) = (tx * w / tw, ((tx + 1) * w / tw).max(tx * w / tw + 1));
            let mut sum = [0.0f64; 3];
            let mut n = 0.0f64;
            for y in y0..y1.min(h) {
                for x in x0..x1.min(w) {
                    let i = (y * w + x) * ch;
                    for (c, s) in sum.iter_mut().enumerate() {
                        *s += r.data.get(i + c.min(ch - 1)).copied().unwrap_or(0) as f64;
                    }
                    n += 1.0;
                }
            }
            for s in sum {
                rgba.push((s / n.max(1.0) / k * 255.0).round() as u8);
            }
            rgba.push(255);
        }
    }
    egui::ColorImage::from_rgba_unmultiplied([tw, th], &rgba)
}
