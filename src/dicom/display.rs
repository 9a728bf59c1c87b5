//! Readers of the display attributes a header carries into their value types
//! (`crate::values`): the Display Shutter (C.7.6.11) and the overlay planes of
//! groups 6000–601E (C.9.2).

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use super::attr::{self, Item};
use crate::values::{Overlay, Shutter};

impl Shutter {
    /// The Display Shutter of a data set, if it has a usable one.
    pub fn from_item(ds: &Item) -> Option<Shutter> {
        let shapes = attr::string(ds, tags::SHUTTER_SHAPE)?.to_uppercase();
        let has = |s: &str| shapes.split('\\').any(|x| x.trim() == s);
        let rect = if has("RECTANGULAR") {
            let f = |t| attr::float(ds, t);
            match (
                f(tags::SHUTTER_LEFT_VERTICAL_EDGE),
                f(tags::SHUTTER_RIGHT_VERTICAL_EDGE),
                f(tags::SHUTTER_UPPER_HORIZONTAL_EDGE),
                f(tags::SHUTTER_LOWER_HORIZONTAL_EDGE),
            ) {
                (Some(l), Some(r), Some(u), Some(d)) => Some([l, r, u, d]),
                _ => None,
            }
        } else {
            None
        };
        let circle = if has("CIRCULAR") {
            match (
                attr::floats_n::<2>(ds, tags::CENTER_OF_CIRCULAR_SHUTTER),
                attr::float(ds, tags::RADIUS_OF_CIRCULAR_SHUTTER),
            ) {
                (Some(c), Some(r)) if r > 0.0 => Some((c, r)),
                _ => None,
            }
        } else {
            None
        };
        let polygon: Vec<[f64; 2]> = if has("POLYGONAL") {
            attr::floats(ds, tags::VERTICES_OF_THE_POLYGONAL_SHUTTER)
                .unwrap_or_default()
                .chunks_exact(2)
                .map(|p| [p[0], p[1]])
                .collect()
        } else {
            Vec::new()
        };
        let polygon = if polygon.len() >= 3 {
            polygon
        } else {
            Vec::new()
        };
        if rect.is_none() && circle.is_none() && polygon.is_empty() {
            return None;
        }
        let value = attr::int(ds, tags::SHUTTER_PRESENTATION_VALUE)
            .map(|v| v.clamp(0, 0xFFFF) as u16)
            .unwrap_or(0);
        Some(Shutter {
            rect,
            circle,
            polygon,
            value,
        })
    }
}

impl Overlay {
    /// The overlay planes of a data set (those with their data in 60xx,3000;
    /// overlays in unused high bits of the pixel data are retired and not read).
    pub fn all(ds: &Item) -> Vec<Overlay> {
        (0..16u16)
            .filter_map(|k| Overlay::read(ds, 0x6000 + 2 * k))
            .collect()
    }

    fn read(ds: &Item, group: u16) -> Option<Overlay> {
        let t = |e: u16| Tag(group, e);
        let rows = attr::int(ds, t(0x0010))?;
        let columns = attr::int(ds, t(0x0011))?;
        let bits = attr::bytes(ds, t(0x3000))?;
        if rows <= 0 || columns <= 0 || rows > 65535 || columns > 65535 {
            return None;
        }
        let origin = attr::floats(ds, t(0x0050))
            .filter(|v| v.len() >= 2)
            .map(|v| [v[0] as i32, v[1] as i32])
            .unwrap_or([1, 1]);
        let frames = attr::int(ds, t(0x0015)).unwrap_or(1).max(1) as u32;
        let first_frame = attr::int(ds, t(0x0051)).unwrap_or(1).max(1) as u32;
        let needed = (rows as usize * columns as usize * frames as usize).div_ceil(8);
        if bits.len() < needed {
            return None;
        }
        Some(Overlay {
            group,
            rows: rows as u32,
            columns: columns as u32,
            origin,
            kind: attr::string(ds, t(0x0040)).unwrap_or_else(|| "G".into()),
            label: attr::string(ds, t(0x1500)),
            first_frame,
            frames,
            bits,
        })
    }
}
