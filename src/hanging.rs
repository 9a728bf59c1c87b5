//! Hanging protocols: which display set goes in which viewport, chosen from the
//! studies being opened (today's and its priors), by rules a reading room can
//! edit. Protocols are TOML files: the ones in the repository's
//! `hanging-protocols/` are built in, and files in the user's protocol folder
//! (`~/.config/lightbox/hanging-protocols`) are added, replacing a built-in one of
//! the same name.
//!
//! ```toml
//! name = "CT chest with prior"
//! priority = 50              # higher wins when several match
//! [match]                    # today's study; every key given must match
//! modality = "CT"            # one of the study's modalities
//! body_part = "CHEST"        # wildcards * and ? allowed, case-insensitive
//! description = "*CHEST*"
//! [layout]
//! rows = 1
//! columns = 2
//! [[viewport]]
//! study = "current"          # or "prior" (the newest older study), "prior-2", ...
//! modality = "CT"
//! series = "*axial*"         # the series description
//! window = "lung"            # a preset name, optional
//! ```
//!
//! A viewport takes the largest display set that fits its rule and is not shown
//! yet; a rule nothing fits leaves its viewport empty and says what it wanted.

use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The protocols shipped with Lightbox (`hanging-protocols/`).
const BUILT_IN: &[(&str, &str)] = &[
    (
        "ct-chest-prior.toml",
        include_str!("../hanging-protocols/ct-chest-prior.toml"),
    ),
    ("ct.toml", include_str!("../hanging-protocols/ct.toml")),
    (
        "projection-prior.toml",
        include_str!("../hanging-protocols/projection-prior.toml"),
    ),
    (
        "mr-brain.toml",
        include_str!("../hanging-protocols/mr-brain.toml"),
    ),
];

/// A hanging protocol.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Protocol {
    pub name: String,
    #[serde(default)]
    pub priority: i32,
    #[serde(default, rename = "match")]
    pub matches: Match,
    pub layout: Layout,
    #[serde(default, rename = "viewport")]
    pub viewports: Vec<ViewportRule>,
}

/// What today's study must be.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Match {
    pub modality: Option<String>,
    pub body_part: Option<String>,
    pub description: Option<String>,
    /// Only when a prior study is open too.
    #[serde(default)]
    pub prior: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    pub rows: usize,
    pub columns: usize,
}

/// What one viewport shows.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ViewportRule {
    /// "current", "prior", "prior-2", ... (default: current).
    pub study: Option<String>,
    pub modality: Option<String>,
    /// Wildcard on the series description.
    pub series: Option<String>,
    /// A W/L preset by name ("lung", "bone", ...).
    pub window: Option<String>,
}

/// A display set as the protocols see it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Candidate {
    pub study_uid: String,
    /// YYYYMMDD (empty when unknown: sorts oldest).
    pub study_date: String,
    pub study_description: String,
    pub modality: String,
    pub body_part: String,
    pub series_description: String,
    pub frames: usize,
}

/// The result: a display set (index into the candidates) or why none, per
/// viewport, and the windows asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Hanging {
    pub protocol: String,
    pub layout: (usize, usize),
    pub viewports: Vec<Result<usize, String>>,
    pub windows: Vec<Option<String>>,
}

/// `*` and `?` wildcard match, case-insensitive; `|` separates alternatives.
pub fn wildcard(pattern: &str, text: &str) -> bool {
    pattern.split('|').any(|p| wildcard_one(p, text))
}

fn wildcard_one(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    // Iterative matching with backtracking to the last star.
    let (mut i, mut j) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || p[i] == t[j]) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

fn opt_match(pattern: &Option<String>, text: &str) -> bool {
    pattern.as_deref().is_none_or(|p| wildcard(p, text))
}

/// Parse one protocol file's text.
pub fn parse(name: &str, text: &str) -> Result<Protocol> {
    let p: Protocol = toml::from_str(text).map_err(|e| Error::Protocol {
        name: format!("hanging protocol {name}"),
        reason: e.to_string(),
    })?;
    let l = p.layout;
    if !(1..=6).contains(&l.rows) || !(1..=6).contains(&l.columns) {
        return Err(Error::Protocol {
            name: format!("hanging protocol {name}"),
            reason: format!("layout {}×{} (1 to 6 rows and columns)", l.rows, l.columns),
        });
    }
    if p.viewports.len() > l.rows * l.columns {
        return Err(Error::Protocol {
            name: format!("hanging protocol {name}"),
            reason: format!(
                "{} viewports for a {}×{} layout",
                p.viewports.len(),
                l.rows,
                l.columns
            ),
        });
    }
    for v in &p.viewports {
        if let Some(s) = &v.study {
            role(s).ok_or_else(|| Error::Protocol {
                name: format!("hanging protocol {name}"),
                reason: format!("study {s:?} (current, prior or prior-N)"),
            })?;
        }
    }
    Ok(p)
}

/// "current" → 0, "prior" → 1, "prior-N" → N.
fn role(s: &str) -> Option<usize> {
    match s {
        "current" => Some(0),
        "prior" => Some(1),
        _ => s.strip_prefix("prior-")?.parse().ok().filter(|&n| n >= 1),
    }
}

/// The built-in protocols, then the user's (a user file replaces a built-in one
/// of the same name). Files that do not parse are reported, not fatal.
pub fn load(user_dir: Option<&Path>) -> (Vec<Protocol>, Vec<String>) {
    let mut protocols = Vec::new();
    let mut problems = Vec::new();
    for (name, text) in BUILT_IN {
        match parse(name, text) {
            Ok(p) => protocols.push(p),
            Err(e) => problems.push(e.to_string()),
        }
    }
    if let Some(dir) = user_dir
        && let Ok(entries) = std::fs::read_dir(dir)
    {
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for f in files {
            let name = f.display().to_string();
            match std::fs::read_to_string(&f)
                .map_err(|e| Error::Usage(format!("{name}: {e}")))
                .and_then(|t| parse(&name, &t))
            {
                Ok(p) => {
                    protocols.retain(|q: &Protocol| q.name != p.name);
                    protocols.push(p);
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
    }
    (protocols, problems)
}

/// The user's protocol folder.
pub fn user_dir() -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))?;
    Some(base.join("lightbox").join("hanging-protocols"))
}

/// The studies in reading order: today's (the newest) first, then its priors,
/// newest first.
fn studies(sets: &[Candidate]) -> Vec<String> {
    let mut s: Vec<(&str, &str)> = sets
        .iter()
        .map(|c| (c.study_date.as_str(), c.study_uid.as_str()))
        .collect();
    s.sort_by(|a, b| b.cmp(a));
    s.dedup();
    s.into_iter().map(|(_, u)| u.to_string()).collect()
}

/// Does the protocol apply to today's study?
fn applies(p: &Protocol, sets: &[Candidate], current: &str) -> bool {
    let today: Vec<&Candidate> = sets.iter().filter(|c| c.study_uid == current).collect();
    let Some(first) = today.first() else {
        return false;
    };
    let m = &p.matches;
    let has_prior = sets.iter().any(|c| c.study_uid != current);
    (!m.prior || has_prior)
        && m.modality
            .as_deref()
            .is_none_or(|x| today.iter().any(|c| wildcard(x, &c.modality)))
        && m.body_part
            .as_deref()
            .is_none_or(|x| today.iter().any(|c| wildcard(x, &c.body_part)))
        && opt_match(&m.description, &first.study_description)
}

/// Hang `sets` by the best protocol that applies (highest priority, then the
/// one that fills most viewports), or None when none does. A protocol that would
/// leave more than half of its viewports empty is passed over.
pub fn hang(protocols: &[Protocol], sets: &[Candidate]) -> Option<Hanging> {
    let order = studies(sets);
    let current = order.first()?;
    let mut best: Option<((bool, i32, usize), Hanging)> = None;
    for p in protocols.iter().filter(|p| applies(p, sets, current)) {
        let h = assign(p, sets, &order);
        let filled = h.viewports.iter().filter(|v| v.is_ok()).count();
        if filled * 2 < h.viewports.len() || filled == 0 {
            continue;
        }
        // One that fills every viewport it has beats one that leaves some empty,
        // whatever their priorities; then priority, then how many it fills.
        let full = filled == h.viewports.len();
        let better = match &best {
            None => true,
            Some((key, _)) => (full, p.priority, filled) > *key,
        };
        if better {
            best = Some(((full, p.priority, filled), h));
        }
    }
    best.map(|b| b.1)
}

/// How the open studies are to be hung: by the best protocol that applies, by a
/// protocol the reader chose by name, or one viewport per display set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Choice {
    #[default]
    Automatic,
    Protocol(String),
    OnePerSet,
}

/// The name of the default arrangement (no protocol), as the UI lists it.
pub const ONE_PER_SET: &str = "one viewport per series";

/// The grid that fits `n` viewports, up to 2×3: 1 → 1×1, 2 → 1×2, 3-4 → 2×2,
/// 5-6 → 2×3.
pub fn fitting_layout(n: usize) -> (usize, usize) {
    match n {
        0 | 1 => (1, 1),
        2 => (1, 2),
        3 | 4 => (2, 2),
        _ => (2, 3),
    }
}

/// The whole hanging of `sets`, never empty-handed: by `choice`. Automatic takes
/// the best protocol that applies ([`hang`]); the viewports its rules left empty
/// take the display sets not shown yet (in [`fallback_order`]), and if some are
/// still empty the layout shrinks to the one that fits what is shown (a lone CT
/// fills the screen). With no protocol that applies, or [`Choice::OnePerSet`],
/// one viewport per display set in the layout that fits. A protocol chosen by
/// name is applied whether or not its match rules hold, at its own layout.
pub fn arrange(protocols: &[Protocol], sets: &[Candidate], choice: &Choice) -> Hanging {
    let chosen = match choice {
        Choice::Automatic => hang(protocols, sets),
        Choice::Protocol(name) => protocols.iter().find(|p| &p.name == name).and_then(|p| {
            let order = studies(sets);
            (!order.is_empty()).then(|| assign(p, sets, &order))
        }),
        Choice::OnePerSet => None,
    };
    let order = fallback_order(sets);
    let Some(mut h) = chosen else {
        let layout = fitting_layout(sets.len());
        let n = (layout.0 * layout.1).min(order.len());
        return Hanging {
            protocol: ONE_PER_SET.into(),
            layout,
            viewports: order[..n].iter().map(|&i| Ok(i)).collect(),
            windows: vec![None; n],
        };
    };
    // Every viewport of the layout, the rules' first.
    let cells = h.layout.0 * h.layout.1;
    h.viewports.resize(cells, Err(String::new()));
    h.windows.resize(cells, None);
    for k in 0..cells {
        if h.viewports[k].is_ok() {
            continue;
        }
        let shown: Vec<usize> = h.viewports.iter().filter_map(|v| v.clone().ok()).collect();
        if let Some(&next) = order.iter().find(|i| !shown.contains(i)) {
            h.viewports[k] = Ok(next);
            h.windows[k] = None;
        }
    }
    let filled = h.viewports.iter().filter(|v| v.is_ok()).count();
    let fit = fitting_layout(filled);
    if *choice == Choice::Automatic && filled < cells && fit.0 * fit.1 < cells {
        // Fill the screen with what there is rather than show empty panes.
        let (v, w): (Vec<_>, Vec<_>) = h
            .viewports
            .into_iter()
            .zip(h.windows)
            .filter(|(v, _)| v.is_ok())
            .unzip();
        h.viewports = v;
        h.windows = w;
        h.layout = fit;
    }
    h
}

fn assign(p: &Protocol, sets: &[Candidate], order: &[String]) -> Hanging {
    let mut used = vec![false; sets.len()];
    let mut viewports = Vec::new();
    for rule in &p.viewports {
        let k = rule.study.as_deref().and_then(role).unwrap_or(0);
        let Some(study) = order.get(k) else {
            viewports.push(Err(format!(
                "no {}",
                rule.study.as_deref().unwrap_or("current study")
            )));
            continue;
        };
        let pick = sets
            .iter()
            .enumerate()
            .filter(|(i, c)| {
                !used[*i]
                    && &c.study_uid == study
                    && opt_match(&rule.modality, &c.modality)
                    && opt_match(&rule.series, &c.series_description)
            })
            .max_by_key(|(i, c)| (c.frames, std::cmp::Reverse(*i)))
            .map(|(i, _)| i);
        match pick {
            Some(i) => {
                used[i] = true;
                viewports.push(Ok(i));
            }
            None => viewports.push(Err(format!(
                "no {}{}{}",
                rule.modality.as_deref().unwrap_or(""),
                rule.series
                    .as_deref()
                    .map(|s| format!(" {s}"))
                    .unwrap_or_default(),
                if k == 0 {
                    String::new()
                } else {
                    format!(" in {}", rule.study.as_deref().unwrap_or(""))
                }
            ))),
        }
    }
    Hanging {
        protocol: p.name.clone(),
        layout: (p.layout.rows, p.layout.columns),
        windows: p.viewports.iter().map(|v| v.window.clone()).collect(),
        viewports,
    }
}

/// What prior selection knows of a study (from the cache's index or a PACS answer).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StudyFacts {
    pub study_uid: String,
    pub patient_id: String,
    /// YYYYMMDD; empty when unknown (sorts oldest).
    pub date: String,
    /// Modalities in the study; empty when the source did not say.
    pub modalities: Vec<String>,
}

/// The relevant priors of `current` among `candidates`, newest first, at most
/// `max`: the same patient (by a non-empty Patient ID), an earlier Study Date, and a
/// modality in common (a candidate whose modalities are unknown, as from a PACS that
/// does not return Modalities in Study, is given the benefit of the doubt).
pub fn relevant_priors<'a>(
    current: &StudyFacts,
    candidates: impl IntoIterator<Item = &'a StudyFacts>,
    max: usize,
) -> Vec<String> {
    if current.patient_id.trim().is_empty() {
        return Vec::new();
    }
    let mut priors: Vec<&StudyFacts> = candidates
        .into_iter()
        .filter(|s| {
            s.study_uid != current.study_uid
                && s.patient_id == current.patient_id
                && s.date < current.date
                && (s.modalities.is_empty()
                    || s.modalities.iter().any(|m| current.modalities.contains(m)))
        })
        .collect();
    priors.sort_by(|a, b| b.date.cmp(&a.date));
    priors
        .into_iter()
        .take(max)
        .map(|s| s.study_uid.clone())
        .collect()
}

/// Where display sets go when no protocol applies: today's largest set first (the
/// newest study), then the largest set of each older study of the same modality
/// (its priors, newest first), then everything else, newest study and largest set
/// first. Returns indices into `sets`.
pub fn fallback_order(sets: &[Candidate]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..sets.len()).collect();
    order.sort_by(|&a, &b| {
        let (sa, sb) = (&sets[a], &sets[b]);
        sb.study_date
            .cmp(&sa.study_date)
            .then(sb.frames.cmp(&sa.frames))
    });
    let Some(&first) = order.first() else {
        return order;
    };
    let modality = &sets[first].modality;
    let mut picks = vec![first];
    let mut seen = vec![&sets[first].study_uid];
    for &i in &order {
        let s = &sets[i];
        if &s.modality == modality && !seen.contains(&&s.study_uid) {
            seen.push(&s.study_uid);
            picks.push(i);
        }
    }
    for &i in &order {
        if !picks.contains(&i) {
            picks.push(i);
        }
    }
    picks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(uid: &str, pid: &str, date: &str, mods: &[&str]) -> StudyFacts {
        StudyFacts {
            study_uid: uid.into(),
            patient_id: pid.into(),
            date: date.into(),
            modalities: mods.iter().map(|m| m.to_string()).collect(),
        }
    }

    #[test]
    fn relevant_priors_same_patient_older_shared_modality_newest_two() {
        let today = facts("t", "P1", "20240301", &["CT", "SR"]);
        let all = [
            today.clone(),
            facts("a", "P1", "20230101", &["CT"]),
            facts("b", "P1", "20220101", &["CT"]),
            facts("c", "P1", "20240101", &["CT"]),
            facts("mr", "P1", "20231201", &["MR"]),
            facts("other", "P2", "20230601", &["CT"]),
            facts("later", "P1", "20250101", &["CT"]),
            facts("unknown", "P1", "20210101", &[]),
        ];
        assert_eq!(relevant_priors(&today, &all, 2), vec!["c", "a"]);
        assert_eq!(
            relevant_priors(&today, &all, 10),
            vec!["c", "a", "b", "unknown"]
        );
        let anonymous = facts("t", " ", "20240301", &["CT"]);
        assert!(relevant_priors(&anonymous, &all, 2).is_empty());
    }

    fn cand(study: &str, date: &str, modality: &str, frames: usize) -> Candidate {
        Candidate {
            study_uid: study.into(),
            study_date: date.into(),
            modality: modality.into(),
            frames,
            ..Default::default()
        }
    }

    fn protocols() -> Vec<Protocol> {
        load(None).0
    }

    #[test]
    fn a_lone_ct_fills_the_screen() {
        let sets = [cand("today", "20240101", "CT", 100)];
        let h = arrange(&protocols(), &sets, &Choice::Automatic);
        assert_eq!(h.layout, (1, 1));
        assert_eq!(h.viewports, vec![Ok(0)]);
        assert_eq!(h.protocol, "CT");
    }

    #[test]
    fn a_ct_with_its_scout_and_prior_hangs_beside_the_prior() {
        let mut sets = vec![
            cand("today", "20260105", "CT", 100),
            cand("today", "20260105", "CT", 1),
            cand("prior", "20240105", "CT", 50),
        ];
        for s in &mut sets {
            s.body_part = "CHEST".into();
        }
        let h = arrange(&protocols(), &sets, &Choice::Automatic);
        assert_eq!(h.protocol, "CT chest with prior");
        assert_eq!(h.layout, (1, 2));
        assert_eq!(h.viewports, vec![Ok(0), Ok(2)]);
    }

    #[test]
    fn without_a_protocol_each_set_has_a_viewport_in_the_layout_that_fits() {
        for (n, layout) in [
            (1, (1, 1)),
            (2, (1, 2)),
            (3, (2, 2)),
            (4, (2, 2)),
            (6, (2, 3)),
        ] {
            let sets: Vec<Candidate> = (0..n)
                .map(|k| cand("us", "20240101", "US", 10 + k))
                .collect();
            let h = arrange(&protocols(), &sets, &Choice::Automatic);
            assert_eq!(h.protocol, ONE_PER_SET);
            assert_eq!(h.layout, layout, "{n} sets");
            assert_eq!(h.viewports.len(), n);
        }
        let none = arrange(&protocols(), &[], &Choice::Automatic);
        assert_eq!((none.layout, none.viewports.len()), ((1, 1), 0));
    }

    #[test]
    fn a_protocol_chosen_by_name_keeps_its_layout_and_fills_what_it_can() {
        let sets = [
            cand("today", "20240101", "CT", 100),
            cand("today", "20240101", "CT", 10),
        ];
        let h = arrange(&protocols(), &sets, &Choice::Protocol("MR brain".into()));
        assert_eq!(h.protocol, "MR brain");
        assert_eq!(h.layout, (2, 2));
        assert_eq!(&h.viewports[..2], &[Ok(0), Ok(1)]);
        assert!(h.viewports[2].is_err() && h.viewports[3].is_err());
        let h = arrange(&protocols(), &sets, &Choice::OnePerSet);
        assert_eq!((h.layout, h.viewports.len()), ((1, 2), 2));
    }

    #[test]
    fn fallback_puts_today_then_same_modality_priors_then_the_rest() {
        let sets = [
            cand("prior", "20230101", "CT", 100),
            cand("today", "20240101", "CT", 10),
            cand("today", "20240101", "CT", 300),
            cand("today", "20240101", "SR", 1),
            cand("old", "20200101", "CT", 50),
            cand("prior", "20230101", "CT", 200),
        ];
        assert_eq!(fallback_order(&sets), vec![2, 5, 4, 1, 3, 0]);
        assert!(fallback_order(&[]).is_empty());
    }
}
