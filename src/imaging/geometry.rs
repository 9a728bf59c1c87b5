//! Patient geometry (PS3.3 C.7.6.2): the image plane in the patient coordinate
//! system (LPS: +x left, +y posterior, +z head), transforms between image and patient
//! space, and orientation labels for each image edge.

use nalgebra::{Matrix4, Point3, Vector3};
use serde::Serialize;

/// One image plane: where pixel (0,0) is, which way rows and columns run, and the
/// pixel spacing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImagePlane {
    /// Centre of the first transmitted pixel, mm.
    pub position: Point3<f64>,
    /// Direction of increasing column index (along a row), unit.
    pub row_dir: Vector3<f64>,
    /// Direction of increasing row index (down a column), unit.
    pub col_dir: Vector3<f64>,
    /// Spacing between rows (vertical) and between columns (horizontal), mm.
    pub spacing_mm: [f64; 2],
}

impl ImagePlane {
    /// From Image Position / Image Orientation / Pixel Spacing values. Rejects
    /// degenerate orientations (zero or parallel vectors); normalises the others.
    pub fn new(
        position: [f64; 3],
        orientation: [f64; 6],
        spacing_mm: [f64; 2],
    ) -> Option<ImagePlane> {
        let r = Vector3::new(orientation[0], orientation[1], orientation[2]);
        let c = Vector3::new(orientation[3], orientation[4], orientation[5]);
        if r.norm() < 1e-6 || c.norm() < 1e-6 || !position.iter().all(|v| v.is_finite()) {
            return None;
        }
        let (r, c) = (r.normalize(), c.normalize());
        if r.cross(&c).norm() < 1e-3 {
            return None;
        }
        Some(ImagePlane {
            position: Point3::new(position[0], position[1], position[2]),
            row_dir: r,
            col_dir: c,
            spacing_mm,
        })
    }

    /// Unit normal, row × column (the direction slices advance in a right-handed stack).
    pub fn normal(&self) -> Vector3<f64> {
        self.row_dir.cross(&self.col_dir).normalize()
    }

    /// Affine taking (column, row, 0, 1) to patient mm.
    pub fn patient_from_image(&self) -> Matrix4<f64> {
        let [row_spacing, col_spacing] = self.spacing_mm;
        let x = self.row_dir * col_spacing;
        let y = self.col_dir * row_spacing;
        let n = self.normal();
        let p = self.position;
        Matrix4::new(
            x.x, y.x, n.x, p.x, //
            x.y, y.y, n.y, p.y, //
            x.z, y.z, n.z, p.z, //
            0.0, 0.0, 0.0, 1.0,
        )
    }

    /// Patient position of a (fractional) pixel coordinate.
    pub fn patient_point(&self, column: f64, row: f64) -> Point3<f64> {
        let [row_spacing, col_spacing] = self.spacing_mm;
        self.position + self.row_dir * (column * col_spacing) + self.col_dir * (row * row_spacing)
    }

    /// Pixel coordinate (column, row) of a patient point projected on the plane.
    pub fn image_point(&self, p: &Point3<f64>) -> (f64, f64) {
        let [row_spacing, col_spacing] = self.spacing_mm;
        let d = p - self.position;
        (
            d.dot(&self.row_dir) / col_spacing,
            d.dot(&self.col_dir) / row_spacing,
        )
    }

    /// Distance of the plane along a direction (used to sort slices).
    pub fn distance_along(&self, normal: &Vector3<f64>) -> f64 {
        self.position.coords.dot(normal)
    }

    /// Orientation labels of the four edges.
    pub fn edge_labels(&self) -> EdgeLabels {
        EdgeLabels {
            left: direction_label(&-self.row_dir),
            right: direction_label(&self.row_dir),
            top: direction_label(&-self.col_dir),
            bottom: direction_label(&self.col_dir),
        }
    }
}

/// What lies at each edge of the displayed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EdgeLabels {
    pub left: String,
    pub right: String,
    pub top: String,
    pub bottom: String,
}

impl EdgeLabels {
    /// The edges of a projection image from its Patient Orientation (0020,0020):
    /// the first value is where the rows run (toward the right edge), the second
    /// where the columns run (toward the bottom); the left and top edges are their
    /// opposites ("L\\F": L right, R left, F bottom, H top).
    pub fn from_patient_orientation(o: &[String; 2]) -> EdgeLabels {
        EdgeLabels {
            left: opposite_label(&o[0]),
            right: o[0].clone(),
            top: opposite_label(&o[1]),
            bottom: o[1].clone(),
        }
    }

    /// The labels as the image is shown after `rotation` quarter turns clockwise,
    /// then the horizontal and vertical flips (the order the viewport applies them).
    pub fn turned(mut self, rotation: u8, flip_h: bool, flip_v: bool) -> EdgeLabels {
        for _ in 0..rotation % 4 {
            self = EdgeLabels {
                top: self.left,
                right: self.top,
                bottom: self.right,
                left: self.bottom,
            };
        }
        if flip_h {
            std::mem::swap(&mut self.left, &mut self.right);
        }
        if flip_v {
            std::mem::swap(&mut self.top, &mut self.bottom);
        }
        self
    }
}

/// The direction opposite a label, letter by letter ("LP" → "RA"); letters that
/// are not patient directions are kept.
pub fn opposite_label(label: &str) -> String {
    label
        .chars()
        .map(|c| match c {
            'L' => 'R',
            'R' => 'L',
            'A' => 'P',
            'P' => 'A',
            'H' => 'F',
            'F' => 'H',
            other => other,
        })
        .collect()
}

/// Label of a patient direction: letters of the axes it points along, strongest
/// first, leaving out components under ~10% (so an oblique plane reads e.g. "LA").
pub fn direction_label(d: &Vector3<f64>) -> String {
    let mut parts: Vec<(f64, char)> = vec![
        (d.x, if d.x > 0.0 { 'L' } else { 'R' }),
        (d.y, if d.y > 0.0 { 'P' } else { 'A' }),
        (d.z, if d.z > 0.0 { 'H' } else { 'F' }),
    ];
    parts.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    let norm = d.norm().max(1e-12);
    parts
        .into_iter()
        .filter(|(v, _)| v.abs() / norm > 0.1)
        .map(|(_, c)| c)
        .collect()
}

/// Where the plane of `slice` cuts the image `target` (of `columns` × `rows`
/// pixels): the reference line of a slice on another view, as two image points
/// (column, row; pixel indices, so pixel centres are whole numbers) on the
/// image's edges. None when the planes are parallel (or nearly: within about half
/// a degree) or the line misses the image.
pub fn reference_line(
    target: &ImagePlane,
    columns: u32,
    rows: u32,
    slice: &ImagePlane,
) -> Option<([f64; 2], [f64; 2])> {
    let n = slice.normal();
    // n · (X(c, r) − p) = 0 with X(c, r) = o + c·cs·row_dir + r·rs·col_dir:
    // a·c + b·r + k = 0.
    let a = n.dot(&target.row_dir) * target.spacing_mm[1];
    let b = n.dot(&target.col_dir) * target.spacing_mm[0];
    let k = n.dot(&(target.position - slice.position));
    let scale = (a * a + b * b).sqrt();
    if scale < 1e-2 * target.spacing_mm[0].min(target.spacing_mm[1]) {
        return None;
    }
    // The image rectangle's edges run from pixel centre −0.5 to size − 0.5.
    let (c0, c1) = (-0.5, columns as f64 - 0.5);
    let (r0, r1) = (-0.5, rows as f64 - 0.5);
    let eps = 1e-9;
    let mut hits: Vec<[f64; 2]> = Vec::new();
    let mut push = |p: [f64; 2]| {
        let inside = p[0] >= c0 - eps && p[0] <= c1 + eps && p[1] >= r0 - eps && p[1] <= r1 + eps;
        if inside
            && !hits
                .iter()
                .any(|h| (h[0] - p[0]).abs() + (h[1] - p[1]).abs() < eps)
        {
            hits.push(p);
        }
    };
    if b.abs() > 1e-12 {
        for c in [c0, c1] {
            push([c, -(a * c + k) / b]);
        }
    }
    if a.abs() > 1e-12 {
        for r in [r0, r1] {
            push([-(b * r + k) / a, r]);
        }
    }
    match hits.as_slice() {
        [p, q, ..] => Some((*p, *q)),
        _ => None,
    }
}

/// The classical plane of an orientation, for series listings.
pub fn plane_name(plane: &ImagePlane) -> &'static str {
    let n = plane.normal();
    let (ax, ay, az) = (n.x.abs(), n.y.abs(), n.z.abs());
    let m = ax.max(ay).max(az);
    if m < 0.8 {
        "oblique"
    } else if az == m {
        "axial"
    } else if ay == m {
        "coronal"
    } else {
        "sagittal"
    }
}

/// The slice whose position along the stack normal (mm) is nearest `target_mm`:
/// how a viewport follows another (scroll sync) or finds a patient point (locate).
pub fn nearest_slice(positions_mm: &[f64], target_mm: f64) -> Option<usize> {
    positions_mm
        .iter()
        .enumerate()
        .filter(|(_, z)| z.is_finite())
        .min_by(|a, b| (a.1 - target_mm).abs().total_cmp(&(b.1 - target_mm).abs()))
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_slice_along_the_normal() {
        let z = [-10.0, -5.0, 0.0, 5.0, 10.0];
        assert_eq!(nearest_slice(&z, 1.0), Some(2));
        assert_eq!(nearest_slice(&z, 3.0), Some(3));
        assert_eq!(nearest_slice(&z, -100.0), Some(0));
        assert_eq!(nearest_slice(&z, 100.0), Some(4));
        assert_eq!(nearest_slice(&[], 0.0), None);
    }

    fn plane(o: [f64; 6]) -> ImagePlane {
        ImagePlane::new([0.0, 0.0, 0.0], o, [1.0, 1.0]).expect("plane")
    }

    #[test]
    fn axial_labels() {
        let l = plane([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]).edge_labels();
        assert_eq!((l.left.as_str(), l.right.as_str()), ("R", "L"));
        assert_eq!((l.top.as_str(), l.bottom.as_str()), ("A", "P"));
    }

    #[test]
    fn sagittal_and_coronal_labels() {
        let s = plane([0.0, 1.0, 0.0, 0.0, 0.0, -1.0]);
        let l = s.edge_labels();
        assert_eq!(
            (
                l.left.as_str(),
                l.right.as_str(),
                l.top.as_str(),
                l.bottom.as_str()
            ),
            ("A", "P", "H", "F")
        );
        assert_eq!(plane_name(&s), "sagittal");
        let c = plane([1.0, 0.0, 0.0, 0.0, 0.0, -1.0]);
        let l = c.edge_labels();
        assert_eq!(
            (
                l.left.as_str(),
                l.right.as_str(),
                l.top.as_str(),
                l.bottom.as_str()
            ),
            ("R", "L", "H", "F")
        );
        assert_eq!(plane_name(&c), "coronal");
    }

    #[test]
    fn oblique_labels_name_both_axes() {
        let a = 30f64.to_radians();
        let p = plane([a.cos(), a.sin(), 0.0, -a.sin(), a.cos(), 0.0]);
        assert_eq!(p.edge_labels().right, "LP");
    }

    #[test]
    fn patient_from_image_uses_row_then_column_spacing() {
        // rows 0.5 mm apart, columns 0.8 mm apart
        let p = ImagePlane::new(
            [10.0, 20.0, 30.0],
            [1.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            [0.5, 0.8],
        )
        .expect("plane");
        let m = p.patient_from_image();
        let q = m * nalgebra::Vector4::new(10.0, 4.0, 0.0, 1.0);
        assert!(
            (q.x - 18.0).abs() < 1e-9 && (q.y - 22.0).abs() < 1e-9 && (q.z - 30.0).abs() < 1e-9
        );
        let pp = p.patient_point(10.0, 4.0);
        assert!((pp - Point3::new(q.x, q.y, q.z)).norm() < 1e-9);
    }

    #[test]
    fn patient_orientation_gives_the_opposite_edges() {
        let o = ["L".to_string(), "F".to_string()];
        let l = EdgeLabels::from_patient_orientation(&o);
        assert_eq!(
            (
                l.left.as_str(),
                l.right.as_str(),
                l.top.as_str(),
                l.bottom.as_str()
            ),
            ("R", "L", "H", "F")
        );
        assert_eq!(opposite_label("LP"), "RA");
        assert_eq!(opposite_label("FHA"), "HFP");
        let mg = EdgeLabels::from_patient_orientation(&["A".into(), "FR".into()]);
        assert_eq!((mg.left.as_str(), mg.top.as_str()), ("P", "HL"));
    }

    #[test]
    fn labels_turn_clockwise_and_flip() {
        let l = EdgeLabels::from_patient_orientation(&["L".into(), "F".into()]);
        // A quarter turn clockwise: what was on the left is on top.
        let r = l.clone().turned(1, false, false);
        assert_eq!(
            (
                r.top.as_str(),
                r.right.as_str(),
                r.bottom.as_str(),
                r.left.as_str()
            ),
            ("R", "H", "L", "F")
        );
        assert_eq!(l.clone().turned(4, false, false), l);
        let f = l.clone().turned(0, true, false);
        assert_eq!((f.left.as_str(), f.right.as_str()), ("L", "R"));
        let v = l.turned(2, false, true);
        assert_eq!((v.top.as_str(), v.bottom.as_str()), ("H", "F"));
    }

    #[test]
    fn degenerate_orientation_is_rejected() {
        assert!(ImagePlane::new([0.0; 3], [0.0; 6], [1.0, 1.0]).is_none());
        assert!(ImagePlane::new([0.0; 3], [1.0, 0.0, 0.0, 1.0, 0.0, 0.0], [1.0, 1.0]).is_none());
    }
}
