//! The order a stack is read in: the reading order by default (axial superior →
//! inferior, sagittal right → left, coronal anterior → posterior: see
//! [`crate::model::reading_normal`]), reversed on request for the active
//! viewport's stack — its slices, decoded frames, measurements and the viewports
//! on it follow, each staying on the image it showed.

use super::*;
use crate::model::GeometryIssue;

impl App {
    /// Reverse the order of the active viewport's stack (it and every viewport on
    /// it stay on the slice they show). Not while the stack is still loading or
    /// reformatted (MPR), which index it by position.
    pub(super) fn reverse_stack(&mut self) {
        let Some(set) = self.active_set() else {
            return;
        };
        let Some(ls) = self.session.sets.get(set) else {
            return;
        };
        if ls.derived.is_some() || self.session.mpr.contains_key(&set) {
            self.session.notice =
                Some("the stack order cannot change in MPR: leave MPR (M) first".into());
            return;
        }
        let loading = self
            .residency
            .slots
            .get(set)
            .is_some_and(|s| s.iter().any(|x| x.full().is_none() && x.error.is_none()));
        if loading {
            self.session.notice =
                Some("the stack order can change once the stack is loaded".into());
            return;
        }
        let n = ls.set.frames.len();
        let flip = |i: usize| n.saturating_sub(1).saturating_sub(i);
        let ls = &mut self.session.sets[set];
        ls.set.frames.reverse();
        if let Some(g) = ls.set.geometry.as_mut() {
            g.positions_mm.reverse();
            for p in &mut g.positions_mm {
                *p = -*p;
            }
            g.normal = g.normal.map(|x| -x);
            for issue in &mut g.issues {
                match issue {
                    GeometryIssue::Gap { after_slice, .. } => {
                        *after_slice = n.saturating_sub(2).saturating_sub(*after_slice)
                    }
                    GeometryIssue::Duplicate { slice } => *slice = n.saturating_sub(*slice),
                    _ => {}
                }
            }
        }
        if let Some(slots) = self.residency.slots.get_mut(set) {
            slots.reverse();
        }
        self.residency.expanded.retain(|k, _| k.0 != set);
        self.residency.overlay_textures.retain(|k, _| k.0 != set);
        self.residency.travel.clear();
        for m in &mut self.session.measurements {
            if m.set == set {
                m.index = flip(m.index);
            }
        }
        for v in &mut self.grid.viewports {
            if v.set == Some(set) {
                v.index = flip(v.index);
                v.pending = None;
                v.drawing = None;
            }
        }
        // Link offsets were taken along the old normal.
        self.grid.link = None;
        self.session.notice = Some(format!(
            "{}: slice order reversed (again for the reading order)",
            self.session.sets[set].label
        ));
    }
}
