//! Patient ▸ Study ▸ Series ▸ display sets, built from headers alone (no I/O).
//!
//! A display set is what a viewport shows: a stack of frames with one size and one
//! orientation. Series with mixed orientations or sizes are split; each multi-frame
//! instance is its own display set. Slices are ordered by their position along the
//! slice normal — never by file name — in the order radiologists read them
//! (axial superior → inferior, sagittal right → left, coronal anterior →
//! posterior: see [`reading_normal`]), and every stack is checked for gaps,
//! duplicates, uneven spacing, gantry tilt and mixed orientation.

use std::collections::BTreeMap;

use nalgebra::Vector3;
use serde::Serialize;

use crate::dicom::header::ImageHeader;
use crate::imaging::geometry::{ImagePlane, plane_name};

/// SOP Class of a DICOMDIR (Media Storage Directory Storage).
pub const MEDIA_STORAGE_DIRECTORY: &str = "1.2.840.10008.1.3.10";

/// One frame of one instance: an index into the header list and a 0-based frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FrameRef {
    pub instance: usize,
    pub frame: u32,
}

/// How the frames of a display set were ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SortBasis {
    /// Projection of Image Position (Patient) on the slice normal.
    Position,
    /// Instance Number (no usable geometry), then frame number.
    InstanceNumber,
}

/// A problem with a stack's geometry that a reader or a volume builder must know.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum GeometryIssue {
    /// A spacing larger than 1.5× the typical one: slices are missing.
    Gap {
        after_slice: usize,
        distance_mm: f64,
        missing_estimate: usize,
    },
    /// Two slices at the same position.
    Duplicate { slice: usize },
    /// Spacing varies beyond tolerance.
    UnevenSpacing { min_mm: f64, max_mm: f64 },
    /// Slices advance at an angle to their normal (tilted gantry).
    GantryTilt { degrees: f64 },
}

impl std::fmt::Display for GeometryIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gap {
                after_slice,
                distance_mm,
                missing_estimate,
            } => write!(
                f,
                "gap after slice {} ({distance_mm:.2} mm, about {missing_estimate} slice(s) missing)",
                after_slice + 1
            ),
            Self::Duplicate { slice } => write!(
                f,
                "slice {} duplicates the position of the previous one",
                slice + 1
            ),
            Self::UnevenSpacing { min_mm, max_mm } => {
                write!(f, "uneven spacing ({min_mm:.3}–{max_mm:.3} mm)")
            }
            Self::GantryTilt { degrees } => write!(f, "gantry tilt {degrees:.2}°"),
        }
    }
}

/// Geometry of a stack sorted by position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StackGeometry {
    /// "axial", "coronal", "sagittal" or "oblique".
    pub plane: &'static str,
    pub orientation: [f64; 6],
    /// Unit vector along which slices advance (row × column).
    pub normal: [f64; 3],
    /// Typical (median) distance between consecutive slices, mm.
    pub spacing_mm: Option<f64>,
    pub min_spacing_mm: Option<f64>,
    pub max_spacing_mm: Option<f64>,
    /// Position of each slice along the normal, in display order, mm.
    pub positions_mm: Vec<f64>,
    pub issues: Vec<GeometryIssue>,
}

/// Frames shown together in one viewport.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DisplaySet {
    pub frames: Vec<FrameRef>,
    pub rows: u32,
    pub columns: u32,
    pub sorted_by: SortBasis,
    pub geometry: Option<StackGeometry>,
    /// True when the set comes from one multi-frame instance.
    pub multiframe: bool,
}

impl DisplaySet {
    /// Geometry issues, if any.
    pub fn issues(&self) -> &[GeometryIssue] {
        self.geometry
            .as_ref()
            .map(|g| g.issues.as_slice())
            .unwrap_or(&[])
    }
}

/// A series with its display sets.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub uid: String,
    pub number: Option<i64>,
    pub modality: Option<String>,
    pub description: Option<String>,
    /// Indices into the header list, all instances of the series.
    pub instances: Vec<usize>,
    pub display_sets: Vec<DisplaySet>,
    /// Instances without pixel data (SR, PDF, KOS, presentation states...).
    pub non_image: Vec<usize>,
    /// Series-level findings: mixed orientation or size.
    pub warnings: Vec<String>,
}

/// A study.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Study {
    pub uid: String,
    pub date: Option<String>,
    pub description: Option<String>,
    pub accession_number: Option<String>,
    pub series: Vec<Series>,
}

/// A patient.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Patient {
    pub id: Option<String>,
    pub name: Option<String>,
    pub studies: Vec<Study>,
}

/// Group headers into patients, studies, series and display sets. DICOMDIR files are
/// skipped (they index media, they are not part of a study).
pub fn build(headers: &[ImageHeader]) -> Vec<Patient> {
    // patient key -> study uid -> series uid -> instance indices (BTreeMaps keep output stable)
    type SeriesMap = BTreeMap<String, Vec<usize>>;
    let mut patients: BTreeMap<(String, String), BTreeMap<String, SeriesMap>> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        if h.sop_class_uid == MEDIA_STORAGE_DIRECTORY
            || h.stand_in == Some(crate::dicom::StandIn::Arrived)
        {
            continue;
        }
        let key = (
            h.patient_id.clone().unwrap_or_default(),
            h.patient_name.clone().unwrap_or_default(),
        );
        patients
            .entry(key)
            .or_default()
            .entry(h.study_uid.clone())
            .or_default()
            .entry(h.series_uid.clone())
            .or_default()
            .push(i);
    }
    patients
        .into_iter()
        .map(|((id, name), studies)| Patient {
            id: Some(id).filter(|s| !s.is_empty()),
            name: Some(name).filter(|s| !s.is_empty()),
            studies: studies
                .into_iter()
                .map(|(uid, series)| {
                    let first = series
                        .values()
                        .next()
                        .and_then(|v| v.first())
                        .map(|&i| &headers[i]);
                    let mut series: Vec<Series> = series
                        .into_iter()
                        .map(|(uid, idx)| build_series(uid, idx, headers))
                        .collect();
                    series.sort_by_key(|s| (s.number.unwrap_or(i64::MAX), s.uid.clone()));
                    Study {
                        uid,
                        date: first.and_then(|h| h.study_date.clone()),
                        description: first.and_then(|h| h.study_description.clone()),
                        accession_number: first.and_then(|h| h.accession_number.clone()),
                        series,
                    }
                })
                .collect(),
        })
        .collect()
}

/// Rows, columns and rounded orientation: single-frame images sharing a key stack.
type StackKey = (u32, u32, Option<[i64; 6]>);

/// Orientation rounded so that float noise does not split a stack.
fn orientation_key(o: &[f64; 6]) -> [i64; 6] {
    o.map(|v| (v * 1000.0).round() as i64)
}

fn build_series(uid: String, instances: Vec<usize>, headers: &[ImageHeader]) -> Series {
    let h0 = &headers[instances[0]];
    let mut non_image = Vec::new();
    let mut sets = Vec::new();
    // Single-frame images grouped by size and orientation.
    let mut groups: BTreeMap<StackKey, Vec<FrameRef>> = BTreeMap::new();
    for &i in &instances {
        let h = &headers[i];
        let Some(px) = &h.pixel else {
            non_image.push(i);
            continue;
        };
        if px.number_of_frames > 1 {
            let frames = (0..px.number_of_frames)
                .map(|f| FrameRef {
                    instance: i,
                    frame: f,
                })
                .collect();
            sets.push(make_set(frames, px.rows, px.columns, headers, true));
        } else {
            let o = h
                .frames
                .first()
                .and_then(|f| f.image_orientation)
                .map(|o| orientation_key(&o));
            groups
                .entry((px.rows, px.columns, o))
                .or_default()
                .push(FrameRef {
                    instance: i,
                    frame: 0,
                });
        }
    }
    let mut warnings = Vec::new();
    let orientations: std::collections::BTreeSet<_> = groups.keys().filter_map(|k| k.2).collect();
    let sizes: std::collections::BTreeSet<_> = groups.keys().map(|k| (k.0, k.1)).collect();
    if orientations.len() > 1 {
        warnings.push(format!(
            "mixed orientation: split into {} display sets",
            groups.len()
        ));
    }
    if sizes.len() > 1 {
        warnings.push(format!(
            "mixed image sizes: {} different sizes",
            sizes.len()
        ));
    }
    for ((rows, cols, _), frames) in groups {
        sets.push(make_set(frames, rows, cols, headers, false));
    }
    // Largest stacks first: that is what a viewport opens by default.
    sets.sort_by_key(|s| std::cmp::Reverse(s.frames.len()));
    Series {
        uid,
        number: h0.series_number,
        modality: h0.modality.clone(),
        description: h0.series_description.clone(),
        instances,
        display_sets: sets,
        non_image,
        warnings,
    }
}

fn plane_of(headers: &[ImageHeader], r: &FrameRef) -> Option<ImagePlane> {
    let f = headers[r.instance].frames.get(r.frame as usize)?;
    ImagePlane::new(
        f.image_position?,
        f.image_orientation?,
        f.pixel_spacing.unwrap_or([1.0, 1.0]),
    )
}

fn make_set(
    mut frames: Vec<FrameRef>,
    rows: u32,
    columns: u32,
    headers: &[ImageHeader],
    multiframe: bool,
) -> DisplaySet {
    let planes: Option<Vec<ImagePlane>> = frames.iter().map(|r| plane_of(headers, r)).collect();
    let Some(planes) = planes.filter(|p| !p.is_empty()) else {
        frames.sort_by(|a, b| {
            let ka = (
                headers[a.instance].instance_number,
                a.frame,
                &headers[a.instance].path,
            );
            let kb = (
                headers[b.instance].instance_number,
                b.frame,
                &headers[b.instance].path,
            );
            ka.cmp(&kb)
        });
        return DisplaySet {
            frames,
            rows,
            columns,
            sorted_by: SortBasis::InstanceNumber,
            geometry: None,
            multiframe,
        };
    };
    let normal = reading_normal(planes[0].normal());
    let mut order: Vec<(f64, FrameRef, ImagePlane)> = planes
        .iter()
        .zip(frames.iter())
        .map(|(p, r)| (p.distance_along(&normal), *r, *p))
        .collect();
    // Position first; Instance Number breaks ties so duplicates come out stable.
    order.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then(
                headers[a.1.instance]
                    .instance_number
                    .cmp(&headers[b.1.instance].instance_number),
            )
            .then(a.1.frame.cmp(&b.1.frame))
    });
    let positions: Vec<f64> = order.iter().map(|o| o.0).collect();
    let sorted_planes: Vec<ImagePlane> = order.iter().map(|o| o.2).collect();
    let frames: Vec<FrameRef> = order.iter().map(|o| o.1).collect();
    let geometry = stack_geometry(&planes[0], &sorted_planes, positions);
    DisplaySet {
        frames,
        rows,
        columns,
        sorted_by: SortBasis::Position,
        geometry: Some(geometry),
        multiframe,
    }
}

/// The slice normal pointing the way a stack is read: axial stacks superior →
/// inferior, sagittal right → left, coronal anterior → posterior (the conventions
/// of vendor PACS, Horos and RadiAnt), decided by the normal's largest patient
/// component (LPS: +x left, +y posterior, +z superior). Sorting by the distance
/// along it puts the first image of the reading order first.
pub fn reading_normal(normal: Vector3<f64>) -> Vector3<f64> {
    let a = normal.map(f64::abs);
    let toward = if a.z >= a.x && a.z >= a.y {
        -normal.z // axial: toward inferior (−z)
    } else if a.x >= a.y {
        normal.x // sagittal: toward the patient's left (+x)
    } else {
        normal.y // coronal: toward posterior (+y)
    };
    if toward < 0.0 { -normal } else { normal }
}

/// Spacing statistics and issues of planes already sorted along
/// `reading_normal(first.normal())`.
pub fn stack_geometry(
    first: &ImagePlane,
    sorted: &[ImagePlane],
    positions: Vec<f64>,
) -> StackGeometry {
    let normal = reading_normal(first.normal());
    let mut issues = Vec::new();
    let diffs: Vec<f64> = positions.windows(2).map(|w| w[1] - w[0]).collect();
    for (i, d) in diffs.iter().enumerate() {
        if d.abs() < 0.01 {
            issues.push(GeometryIssue::Duplicate { slice: i + 1 });
        }
    }
    let distinct: Vec<f64> = diffs.iter().copied().filter(|d| d.abs() >= 0.01).collect();
    let median = median(&distinct);
    let (mut min_s, mut max_s) = (None, None);
    if let Some(m) = median {
        let lo = distinct.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = distinct.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        min_s = Some(lo);
        max_s = Some(hi);
        let mut gap = false;
        for (i, d) in diffs.iter().enumerate() {
            if *d > 1.5 * m {
                gap = true;
                issues.push(GeometryIssue::Gap {
                    after_slice: i,
                    distance_mm: *d,
                    missing_estimate: ((d / m).round() as usize).saturating_sub(1).max(1),
                });
            }
        }
        let tolerance = (0.01 * m).max(0.02);
        if !gap && hi - lo > tolerance {
            issues.push(GeometryIssue::UnevenSpacing {
                min_mm: lo,
                max_mm: hi,
            });
        }
    }
    if let (Some(a), Some(b)) = (sorted.first(), sorted.last()) {
        let d: Vector3<f64> = b.position - a.position;
        if d.norm() > 1.0 {
            let cos = (d.dot(&normal).abs() / d.norm()).min(1.0);
            let deg = cos.acos().to_degrees();
            if deg > 0.1 {
                issues.push(GeometryIssue::GantryTilt { degrees: deg });
            }
        }
    }
    let o = [
        first.row_dir.x,
        first.row_dir.y,
        first.row_dir.z,
        first.col_dir.x,
        first.col_dir.y,
        first.col_dir.z,
    ];
    StackGeometry {
        plane: plane_name(first),
        orientation: o,
        normal: [normal.x, normal.y, normal.z],
        spacing_mm: median,
        min_spacing_mm: min_s,
        max_spacing_mm: max_s,
        positions_mm: positions,
        issues,
    }
}

fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_are_read_head_first_right_first_front_first() {
        let v = |x, y, z| Vector3::new(x, y, z);
        // Axial (either acquisition direction): toward the feet (−z in LPS).
        assert_eq!(reading_normal(v(0.0, 0.0, 1.0)), v(0.0, 0.0, -1.0));
        assert_eq!(reading_normal(v(0.0, 0.0, -1.0)), v(0.0, 0.0, -1.0));
        // Sagittal: from the patient's right toward the left (+x).
        assert_eq!(reading_normal(v(-1.0, 0.0, 0.0)), v(1.0, 0.0, 0.0));
        // Coronal: from the front toward the back (+y).
        assert_eq!(reading_normal(v(0.0, -1.0, 0.0)), v(0.0, 1.0, 0.0));
        // Oblique: by the largest component (a 30° tilted axial stays axial).
        let t = 30f64.to_radians();
        let n = reading_normal(v(0.0, t.sin(), t.cos()));
        assert!(n.z < 0.0 && (n.norm() - 1.0).abs() < 1e-12, "{n:?}");
    }
}
