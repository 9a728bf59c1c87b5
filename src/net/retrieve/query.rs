//! Asking the node what there is to fetch: a SERIES level C-FIND for the study's
//! series and their instance counts, and an IMAGE level C-FIND for the series that
//! [`plan`](super::plan) says must be listed instance by instance.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;

use dicom_dictionary_std::tags;

use super::Request;
use super::plan::{self, Plan, Remote, SeriesPlan, Shortfall};
use crate::error::{NetFailure, Result};
use crate::net::dimse::Link;
use crate::net::failure;
use crate::net::find::{self, Level, Query};
use crate::net::scu::{self, Peer, sop};

/// The study's series and what the node holds of each; `cached_in` gives what the
/// cache holds of a series.
pub(super) fn plan(
    peer: &Peer,
    req: &Request,
    cancel: &AtomicBool,
    cached_in: &dyn Fn(&str) -> Result<HashSet<String>>,
) -> Result<Plan> {
    let ts = crate::net::uncompressed();
    let mut assoc = scu::associate(peer, &[(sop::STUDY_ROOT_FIND.to_string(), ts)], &[])?;
    let result = (|| {
        let mut q = Query::new(Level::Series);
        q.keys.study_uid = Some(req.study_uid.clone());
        let series = find::find_on(peer, &mut assoc, &q, cancel, &mut |_| {})?;
        let mut out = Plan::default();
        for m in &series.matches {
            let Some(uid) = m.get(tags::SERIES_INSTANCE_UID) else {
                continue;
            };
            if !plan::wanted(&req.series, &uid) {
                continue;
            }
            let have = cached_in(&uid)?;
            let count = m.count(tags::NUMBER_OF_SERIES_RELATED_INSTANCES);
            // Listed when the middle image is to come first.
            let count = count.filter(|_| !req.middle_first);
            let p = match plan::moved_whole(count, &have) {
                Some(count) => SeriesPlan::whole(count),
                None => {
                    let list = images_on(peer, &mut assoc, &req.study_uid, &uid, cancel)?;
                    SeriesPlan::listed(list, &have)
                }
            };
            out.series.insert(uid, p);
        }
        Ok(out)
    })();
    match &result {
        Ok(_) => scu::release(assoc),
        Err(_) => assoc.abort_now(),
    }
    let out = result?;
    let study = &req.study_uid;
    let why = match out.check(&req.series) {
        Ok(()) => return Ok(out),
        Err(Shortfall::NoStudy) => format!("no study {study} on this node"),
        Err(Shortfall::NoneOfTheSeries) => {
            format!("study {study} has none of the series asked for")
        }
        Err(Shortfall::NoSeries(s)) => format!("study {study} has no series {s}"),
    };
    Err(failure(peer.label(), NetFailure::Operation(why)))
}

/// A series' instances (IMAGE level C-FIND on an open association).
fn images_on(
    peer: &Peer,
    assoc: &mut scu::Association,
    study: &str,
    series: &str,
    cancel: &AtomicBool,
) -> Result<Vec<Remote>> {
    let mut q = Query::new(Level::Image);
    q.keys.study_uid = Some(study.to_string());
    q.keys.series_uid = Some(series.to_string());
    let images = find::find_on(peer, assoc, &q, cancel, &mut |_| {})?;
    Ok(images
        .matches
        .iter()
        .filter_map(|m| {
            m.get(tags::SOP_INSTANCE_UID).map(|sop| Remote {
                sop,
                class: m.get(tags::SOP_CLASS_UID),
                number: m
                    .get(tags::INSTANCE_NUMBER)
                    .and_then(|n| n.trim().parse().ok()),
                position: crate::dicom::attr::floats_n(&m.attrs, tags::IMAGE_POSITION_PATIENT),
                orientation: crate::dicom::attr::floats_n(
                    &m.attrs,
                    tags::IMAGE_ORIENTATION_PATIENT,
                ),
            })
        })
        .collect())
}

/// A series' instances, on an association of its own.
pub(super) fn list_images(
    peer: &Peer,
    study: &str,
    series: &str,
    cancel: &AtomicBool,
) -> Result<Vec<Remote>> {
    let ts = crate::net::uncompressed();
    let mut assoc = scu::associate(peer, &[(sop::STUDY_ROOT_FIND.to_string(), ts)], &[])?;
    let r = images_on(peer, &mut assoc, study, series, cancel);
    scu::release(assoc);
    r
}
