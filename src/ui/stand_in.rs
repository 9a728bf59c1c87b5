//! Stand-ins for the images of a study that a retrieve has listed but not yet
//! brought: each gets a header of its own (a copy of an image of its series
//! that is here, with its own SOP Instance UID, Instance Number and place), so
//! the stack has its whole length from the first image on and scrolling to an
//! image still to come shows "arriving" at the place it will fill.
//!
//! The place is where the node said the image lies (Image Position and
//! Orientation from the C-FIND answer or WADO-RS `/metadata`); failing that, it
//! is worked out from the Instance Number when the images already here lie on
//! one straight line in Instance Number order (a single axial stack, numbered
//! in order); failing that, the image gets no stand-in and the stack grows
//! when it comes. Stand-ins are never decoded; when the real image comes its
//! stand-in is marked arrived and no longer grouped (headers are only ever
//! appended: decoded frames are kept by header index).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use crate::dicom::{ImageHeader, StandIn};
use crate::store::ExpectedInstance;

/// Orientations within this (direction cosines) are the same.
const SAME_ORIENTATION: f64 = 1e-3;

/// Make, move or retire the stand-ins among `headers` for the instances
/// `expected` lists: an image that came retires its stand-in; one still to come
/// gets a stand-in (or its stand-in a better place). Only ever appends. The
/// number of stand-ins still waiting.
pub fn place(headers: &mut Vec<ImageHeader>, expected: &[ExpectedInstance]) -> usize {
    let real: HashSet<String> = headers
        .iter()
        .filter(|h| h.stand_in.is_none())
        .map(|h| h.sop_instance_uid.clone())
        .collect();
    let mut waiting: HashMap<String, usize> = HashMap::new();
    for (i, h) in headers.iter_mut().enumerate() {
        if h.stand_in == Some(StandIn::Waiting) {
            if real.contains(&h.sop_instance_uid) {
                h.stand_in = Some(StandIn::Arrived);
            } else {
                waiting.insert(h.sop_instance_uid.clone(), i);
            }
        }
    }
    let mut by_series: HashMap<&str, Vec<&ExpectedInstance>> = HashMap::new();
    for e in expected.iter().filter(|e| !real.contains(&e.sop_uid)) {
        by_series.entry(e.series_uid.as_str()).or_default().push(e);
    }
    let mut made: Vec<(Option<usize>, ImageHeader)> = Vec::new();
    for (series, missing) in by_series {
        let templates: Vec<&ImageHeader> = headers
            .iter()
            .filter(|h| h.stand_in.is_none() && h.series_uid == series)
            .filter(|h| h.pixel.as_ref().is_some_and(|p| p.number_of_frames <= 1))
            .filter(|h| {
                h.frames
                    .first()
                    .is_some_and(|f| f.image_position.is_some() && f.image_orientation.is_some())
            })
            .collect();
        let Some(first) = templates.first() else {
            continue;
        };
        let common = orientation(first).filter(|o| {
            templates
                .iter()
                .all(|t| orientation(t).is_some_and(|x| same(&x, o)))
        });
        for e in missing {
            let Some(o) = e.orientation.or(common) else {
                continue;
            };
            let stack: Vec<&ImageHeader> = templates
                .iter()
                .copied()
                .filter(|t| orientation(t).is_some_and(|x| same(&x, &o)))
                .collect();
            let Some(position) = e
                .position
                .or_else(|| e.number.and_then(|n| by_number(&stack, n)))
            else {
                continue;
            };
            let Some(template) = stack
                .iter()
                .min_by_key(|t| match (t.instance_number, e.number) {
                    (Some(a), Some(b)) => a.abs_diff(b),
                    _ => u64::MAX,
                })
            else {
                continue;
            };
            let mut h = (*template).clone();
            h.path = PathBuf::new();
            h.sop_instance_uid = e.sop_uid.clone();
            h.instance_number = e.number;
            h.overlays.clear();
            h.stand_in = Some(StandIn::Waiting);
            if let Some(f) = h.frames.first_mut() {
                f.image_position = Some(position);
                f.image_orientation = Some(o);
            }
            made.push((waiting.get(&e.sop_uid).copied(), h));
        }
    }
    // Appended in a stable order (the expected list's), whatever the map's.
    let order: HashMap<&str, usize> = expected
        .iter()
        .enumerate()
        .map(|(i, e)| (e.sop_uid.as_str(), i))
        .collect();
    made.sort_by_key(|(_, h)| order.get(h.sop_instance_uid.as_str()).copied());
    for (at, h) in made {
        match at {
            Some(i) => headers[i] = h,
            None => headers.push(h),
        }
    }
    headers
        .iter()
        .filter(|h| h.stand_in == Some(StandIn::Waiting))
        .count()
}

fn orientation(h: &ImageHeader) -> Option<[f64; 6]> {
    h.frames.first()?.image_orientation
}

fn same(a: &[f64; 6], b: &[f64; 6]) -> bool {
    a.iter()
        .zip(b)
        .all(|(x, y)| (x - y).abs() < SAME_ORIENTATION)
}

/// Where image number `n` lies, from the images of one orientation already
/// here: on the line through the lowest and highest numbered of them, when
/// every one of them lies on it (one stack numbered in order), and not on top
/// of one of them.
fn by_number(stack: &[&ImageHeader], n: i64) -> Option<[f64; 3]> {
    let numbered: Vec<(i64, [f64; 3])> = stack
        .iter()
        .filter_map(|h| Some((h.instance_number?, h.frames.first()?.image_position?)))
        .collect();
    let lo = numbered.iter().min_by_key(|x| x.0)?;
    let hi = numbered.iter().max_by_key(|x| x.0)?;
    if lo.0 == hi.0 {
        return None;
    }
    let step = |k: usize| (hi.1[k] - lo.1[k]) / (hi.0 - lo.0) as f64;
    let d = [step(0), step(1), step(2)];
    let len = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
    if len < 1e-6 {
        return None;
    }
    let at = |m: i64| {
        let t = (m - lo.0) as f64;
        [lo.1[0] + t * d[0], lo.1[1] + t * d[1], lo.1[2] + t * d[2]]
    };
    let dist = |a: [f64; 3], b: [f64; 3]| {
        ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
    };
    // Off the line by more than a tenth of the spacing: not one ordered stack.
    if numbered
        .iter()
        .any(|&(m, p)| dist(at(m), p) > (0.1 * len).max(1e-3))
    {
        return None;
    }
    let p = at(n);
    if numbered.iter().any(|&(_, q)| dist(p, q) < 0.1 * len) {
        return None;
    }
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{CtSpec, write_ct};

    /// A synthetic CT's headers, by Instance Number.
    fn ct(slices: usize) -> Vec<ImageHeader> {
        let dir = tempfile::tempdir().expect("tempdir");
        write_ct(
            dir.path(),
            &CtSpec {
                slices,
                size: 16,
                ..Default::default()
            },
        )
        .expect("CT");
        let files = crate::scan::list_files(dir.path()).expect("list");
        let mut h = crate::scan::scan_files(&files).headers;
        h.sort_by_key(|h| h.instance_number);
        h
    }

    fn expected(h: &ImageHeader, with_place: bool) -> ExpectedInstance {
        ExpectedInstance {
            series_uid: h.series_uid.clone(),
            sop_uid: h.sop_instance_uid.clone(),
            number: h.instance_number,
            position: h.frames[0].image_position.filter(|_| with_place),
            orientation: h.frames[0].image_orientation.filter(|_| with_place),
        }
    }

    fn position(h: &[ImageHeader], sop: &str) -> Option<[f64; 3]> {
        h.iter()
            .find(|x| x.sop_instance_uid == sop && x.stand_in == Some(StandIn::Waiting))?
            .frames[0]
            .image_position
    }

    fn close(a: [f64; 3], b: [f64; 3]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6)
    }

    #[test]
    fn images_still_to_come_stand_where_the_node_says_and_retire_when_they_come() {
        let all = ct(9);
        let expect: Vec<ExpectedInstance> = all.iter().map(|h| expected(h, true)).collect();
        // Only the middle image is here.
        let mut headers = vec![all[4].clone()];
        assert_eq!(place(&mut headers, &expect), 8);
        for h in &all {
            if h.sop_instance_uid != all[4].sop_instance_uid {
                let p = position(&headers, &h.sop_instance_uid).expect("a stand-in");
                assert!(close(p, h.frames[0].image_position.expect("pos")));
            }
        }
        // One stack of nine, sorted by position as the real one will be.
        let patients = crate::model::build(&headers);
        let sets = &patients[0].studies[0].series[0].display_sets;
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].frames.len(), 9);
        // Two more come: their stand-ins retire, nothing moves.
        let before = headers.len();
        headers.push(all[0].clone());
        headers.push(all[8].clone());
        assert_eq!(place(&mut headers, &expect), 6);
        assert_eq!(headers.len(), before + 2, "only the real ones appended");
        let patients = crate::model::build(&headers);
        let set = &patients[0].studies[0].series[0].display_sets[0];
        assert_eq!(set.frames.len(), 9, "no image twice");
        let real = set
            .frames
            .iter()
            .filter(|f| headers[f.instance].stand_in.is_none())
            .count();
        assert_eq!(real, 3);
    }

    #[test]
    fn without_the_nodes_word_the_place_follows_the_instance_numbers_of_a_straight_stack() {
        let all = ct(9);
        let expect: Vec<ExpectedInstance> = all.iter().map(|h| expected(h, false)).collect();
        // One image is not enough to know which way the numbers run.
        let mut headers = vec![all[4].clone()];
        assert_eq!(place(&mut headers, &expect), 0);
        // Two are: the others fall where they really are.
        headers.push(all[5].clone());
        assert_eq!(place(&mut headers, &expect), 7);
        for h in &all[..4] {
            let p = position(&headers, &h.sop_instance_uid).expect("a stand-in");
            assert!(
                close(p, h.frames[0].image_position.expect("pos")),
                "{p:?} vs {:?}",
                h.frames[0].image_position
            );
        }
        // An image off the line (not one ordered stack): no guessing.
        let mut odd = all[6].clone();
        if let Some(p) = odd.frames[0].image_position.as_mut() {
            p[0] += 30.0;
        }
        let mut bent = vec![all[4].clone(), all[5].clone(), odd];
        assert_eq!(place(&mut bent, &expect), 0);
    }
}
