//! What a retrieve fetches, decided without the network: for each series the node
//! lists, how many instances it holds and which of them the cache already has; the
//! instances still missing cut into [`Unit`]s of work for parallel associations;
//! and, afterwards, which listed instances are still not in the cache. The C-FIND
//! answers and the cache's contents come in as values (`query` asks the node), so
//! every decision here is unit-tested.

use std::collections::{BTreeMap, HashSet};

/// One instance the node lists.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Remote {
    pub(super) sop: String,
    pub(super) class: Option<String>,
    /// Instance Number, when the node gave it (the middle image is fetched first).
    pub(super) number: Option<i64>,
    /// Image Position and Orientation (Patient), when the node returned them
    /// (where the image will lie in its stack before it comes).
    pub(super) position: Option<[f64; 3]>,
    pub(super) orientation: Option<[f64; 6]>,
}

/// What the node holds of one series.
#[derive(Debug, PartialEq)]
pub(super) struct SeriesPlan {
    /// Instances the node has.
    pub(super) count: usize,
    /// Of them, already cached.
    pub(super) cached: usize,
    /// Its instances, when listed (not for a series nothing of which is cached and
    /// whose count the node gave: it is moved whole, sparing the node a query).
    pub(super) listed: Option<Vec<Remote>>,
}

impl SeriesPlan {
    /// A series moved whole: the node gave its count and nothing of it is cached.
    pub(super) fn whole(count: usize) -> SeriesPlan {
        SeriesPlan {
            count,
            cached: 0,
            listed: None,
        }
    }

    /// A series listed instance by instance; `have` is what the cache holds of it.
    pub(super) fn listed(list: Vec<Remote>, have: &HashSet<String>) -> SeriesPlan {
        SeriesPlan {
            count: list.len(),
            cached: list.iter().filter(|r| have.contains(&r.sop)).count(),
            listed: Some(list),
        }
    }
}

/// The instance count to move a series whole with, or `None` when the series has
/// to be listed instance by instance: something of it is cached (only the rest is
/// fetched), or the node gave no count (or 0, which some nodes send for unknown).
pub(super) fn moved_whole(count: Option<usize>, have: &HashSet<String>) -> Option<usize> {
    count.filter(|&c| c > 0 && have.is_empty())
}

/// Is a series the node lists one of those asked for (none asked: all are)?
pub(super) fn wanted(asked: &[String], series_uid: &str) -> bool {
    asked.is_empty() || asked.iter().any(|s| s == series_uid)
}

/// Why a plan cannot be carried out.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Shortfall {
    /// The node lists no series of the study (it does not have it).
    NoStudy,
    /// Series were asked for and the node has none of them.
    NoneOfTheSeries,
    /// This series was asked for and the node does not have it.
    NoSeries(String),
}

/// The study's series and what the node holds of each.
#[derive(Debug, Default)]
pub(super) struct Plan {
    pub(super) series: BTreeMap<String, SeriesPlan>,
}

impl Plan {
    /// Every listed instance, with where the node says it lies.
    pub(super) fn expected_instances(&self) -> Vec<crate::store::ExpectedInstance> {
        self.series
            .iter()
            .flat_map(|(series, p)| {
                p.listed
                    .iter()
                    .flatten()
                    .map(|r| crate::store::ExpectedInstance {
                        series_uid: series.clone(),
                        sop_uid: r.sop.clone(),
                        number: r.number,
                        position: r.position,
                        orientation: r.orientation,
                    })
            })
            .collect()
    }

    /// Instances the node lists.
    pub(super) fn expected(&self) -> usize {
        self.series.values().map(|p| p.count).sum()
    }

    /// Of them, already in the cache.
    pub(super) fn already_cached(&self) -> usize {
        self.series.values().map(|p| p.cached).sum()
    }

    /// Does the plan cover what was asked for?
    pub(super) fn check(&self, asked: &[String]) -> Result<(), Shortfall> {
        if self.series.is_empty() {
            return Err(if asked.is_empty() {
                Shortfall::NoStudy
            } else {
                Shortfall::NoneOfTheSeries
            });
        }
        match asked.iter().find(|s| !self.series.contains_key(*s)) {
            Some(s) => Err(Shortfall::NoSeries(s.clone())),
            None => Ok(()),
        }
    }

    /// Split the missing instances into work for `parallel` associations: whole
    /// series where nothing of them is cached and nothing was listed, else lists of
    /// instances in pieces of about (instances to fetch) / `parallel`. With
    /// `middle_first`, each listed series whose middle image (by Instance Number)
    /// is missing gets a unit of that one image, and those units come first: a
    /// viewer opening the study while it arrives shows the slice it opens at.
    pub(super) fn units(
        &self,
        cached: &HashSet<String>,
        parallel: usize,
        middle_first: bool,
    ) -> Vec<Unit> {
        let total: usize = self.series.values().map(|p| p.count - p.cached).sum();
        let piece = total.div_ceil(parallel.max(1)).max(1);
        let mut firsts = Vec::new();
        let mut units = Vec::new();
        for (series, p) in &self.series {
            let Some(list) = &p.listed else {
                units.push(Unit {
                    series_uid: series.clone(),
                    sops: Vec::new(),
                    classes: Vec::new(),
                    lead: 0,
                    first: false,
                });
                continue;
            };
            let mut todo: Vec<&Remote> = list.iter().filter(|r| !cached.contains(&r.sop)).collect();
            if todo.is_empty() {
                continue;
            }
            let classes = |l: &[&Remote]| {
                let mut c: Vec<String> = l.iter().filter_map(|r| r.class.clone()).collect();
                c.sort();
                c.dedup();
                c
            };
            // Nothing of it cached: moved whole, as an unlisted series would be
            // (after its middle image, which then comes twice and is stored once;
            // cheaper for the node than a UID list of all the others).
            let fresh = todo.len() == list.len();
            let mid =
                middle(list).filter(|m| middle_first && list.len() > 1 && !cached.contains(&m.sop));
            if let Some(mid) = mid {
                firsts.push(Unit {
                    series_uid: series.clone(),
                    sops: vec![mid.sop.clone()],
                    classes: classes(&[mid]),
                    lead: 0,
                    first: true,
                });
                todo.retain(|r| r.sop != mid.sop);
            }
            if fresh && (mid.is_some() || todo.len() <= piece) {
                let all: Vec<&Remote> = list.iter().collect();
                units.push(Unit {
                    series_uid: series.clone(),
                    sops: Vec::new(),
                    classes: classes(&all),
                    lead: 0,
                    first: false,
                });
            } else {
                for chunk in todo.chunks(piece) {
                    units.push(Unit {
                        series_uid: series.clone(),
                        sops: chunk.iter().map(|r| r.sop.clone()).collect(),
                        classes: classes(chunk),
                        lead: 0,
                        first: false,
                    });
                }
            }
        }
        firsts.extend(units);
        firsts
    }
}

/// The middle image of a series by Instance Number (then UID; images without a
/// number after those with one): the slice a viewer opens a stack at.
pub(super) fn middle(list: &[Remote]) -> Option<&Remote> {
    let mut sorted: Vec<&Remote> = list.iter().collect();
    sorted.sort_by(|a, b| {
        (a.number.is_none(), a.number, &a.sop).cmp(&(b.number.is_none(), b.number, &b.sop))
    });
    sorted.get(sorted.len() / 2).copied()
}

/// The instances of `list` that are not in `cached`.
pub(super) fn not_cached(list: &[Remote], cached: &HashSet<String>) -> Vec<String> {
    list.iter()
        .filter(|r| !cached.contains(&r.sop))
        .map(|r| r.sop.clone())
        .collect()
}

/// A piece of work for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unit {
    pub(super) series_uid: String,
    /// Empty: the whole series.
    pub(super) sops: Vec<String>,
    /// The storage SOP classes of the instances (C-GET proposes them), when known.
    pub(super) classes: Vec<String>,
    /// C-GET: 0 proposes the uncompressed syntaxes first; k > 0 puts the k-th
    /// compressed syntax first (see `ops::open`).
    pub(super) lead: usize,
    /// A series' middle image, fetched before everything else.
    pub(super) first: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
    const SC: &str = "1.2.840.10008.5.1.4.1.1.7";

    fn remote(sop: &str, class: &str) -> Remote {
        Remote {
            sop: sop.into(),
            class: Some(class.into()),
            number: sop.rsplit('.').next().and_then(|n| n.parse().ok()),
            position: None,
            orientation: None,
        }
    }

    fn list(prefix: &str, n: usize) -> Vec<Remote> {
        (1..=n)
            .map(|i| remote(&format!("{prefix}.{i}"), CT))
            .collect()
    }

    fn set(items: &[&str]) -> HashSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn plan(series: Vec<(&str, SeriesPlan)>) -> Plan {
        Plan {
            series: series
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        }
    }

    #[test]
    fn a_series_with_nothing_cached_and_a_count_is_moved_whole() {
        assert_eq!(moved_whole(Some(12), &HashSet::new()), Some(12));
        // Something cached: listed, to fetch only the rest.
        assert_eq!(moved_whole(Some(12), &set(&["1.1"])), None);
        // No count, or 0 (unknown to some nodes): listed.
        assert_eq!(moved_whole(None, &HashSet::new()), None);
        assert_eq!(moved_whole(Some(0), &HashSet::new()), None);
    }

    #[test]
    fn a_listed_series_counts_what_is_cached_of_it() {
        let p = SeriesPlan::listed(list("1", 5), &set(&["1.2", "1.4", "9.9"]));
        assert_eq!((p.count, p.cached), (5, 2));
        assert_eq!(p.listed.as_ref().map(Vec::len), Some(5));
    }

    #[test]
    fn series_asked_for_are_selected() {
        assert!(wanted(&[], "1.2.3"));
        let asked = vec!["1.2.3".to_string()];
        assert!(wanted(&asked, "1.2.3"));
        assert!(!wanted(&asked, "1.2.4"));
    }

    #[test]
    fn totals_add_up_over_series() {
        let p = plan(vec![
            ("A", SeriesPlan::whole(10)),
            ("B", SeriesPlan::listed(list("B", 4), &set(&["B.1"]))),
        ]);
        assert_eq!((p.expected(), p.already_cached()), (14, 1));
    }

    #[test]
    fn a_plan_that_misses_what_was_asked_for_says_what() {
        let empty = Plan::default();
        assert_eq!(empty.check(&[]), Err(Shortfall::NoStudy));
        assert_eq!(
            empty.check(&["A".to_string()]),
            Err(Shortfall::NoneOfTheSeries)
        );
        let p = plan(vec![("A", SeriesPlan::whole(3))]);
        assert_eq!(p.check(&[]), Ok(()));
        assert_eq!(p.check(&["A".to_string()]), Ok(()));
        assert_eq!(
            p.check(&["A".to_string(), "B".to_string()]),
            Err(Shortfall::NoSeries("B".into()))
        );
    }

    #[test]
    fn unlisted_series_are_one_whole_unit_each() {
        let p = plan(vec![
            ("A", SeriesPlan::whole(300)),
            ("B", SeriesPlan::whole(2)),
        ]);
        let units = p.units(&HashSet::new(), 4, false);
        assert_eq!(units.len(), 2);
        assert!(units.iter().all(|u| u.sops.is_empty() && u.lead == 0));
        assert_eq!(units[0].series_uid, "A");
        assert_eq!(units[1].series_uid, "B");
    }

    #[test]
    fn a_partly_cached_series_fetches_only_the_rest_in_pieces() {
        let l = list("A", 10);
        let cached = set(&["A.1", "A.2"]);
        let p = plan(vec![("A", SeriesPlan::listed(l, &cached))]);
        // 8 to fetch over 3 associations: pieces of 3.
        let units = p.units(&cached, 3, false);
        let sizes: Vec<usize> = units.iter().map(|u| u.sops.len()).collect();
        assert_eq!(sizes, [3, 3, 2]);
        let all: Vec<&String> = units.iter().flat_map(|u| &u.sops).collect();
        assert_eq!(all.len(), 8);
        assert!(all.iter().all(|s| !cached.contains(*s)));
        assert!(units.iter().all(|u| u.classes == [CT]));
    }

    #[test]
    fn a_listed_series_with_nothing_cached_that_fits_one_piece_is_moved_whole() {
        let mut l = list("A", 3);
        l.push(remote("A.9", SC));
        l.push(remote("A.10", CT));
        let p = plan(vec![("A", SeriesPlan::listed(l, &HashSet::new()))]);
        let units = p.units(&HashSet::new(), 1, false);
        assert_eq!(units.len(), 1);
        assert!(units[0].sops.is_empty(), "whole series, no UID list");
        // Its classes, sorted and once each, for the C-GET contexts.
        assert_eq!(units[0].classes, [CT, SC]);
    }

    #[test]
    fn a_fully_cached_series_gives_no_work() {
        let l = list("A", 4);
        let cached = set(&["A.1", "A.2", "A.3", "A.4"]);
        let p = plan(vec![
            ("A", SeriesPlan::listed(l, &cached)),
            ("B", SeriesPlan::whole(5)),
        ]);
        let units = p.units(&cached, 2, false);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].series_uid, "B");
    }

    #[test]
    fn parallel_zero_is_taken_as_one() {
        let p = plan(vec![(
            "A",
            SeriesPlan::listed(list("A", 4), &set(&["A.1"])),
        )]);
        let units = p.units(&set(&["A.1"]), 0, false);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].sops.len(), 3);
    }

    #[test]
    fn the_middle_image_of_each_series_comes_first() {
        // Listed out of order: the middle is by Instance Number, not by answer order.
        let mut a = list("A", 9);
        a.reverse();
        let p = plan(vec![
            ("A", SeriesPlan::listed(a, &HashSet::new())),
            ("B", SeriesPlan::listed(list("B", 4), &HashSet::new())),
        ]);
        let units = p.units(&HashSet::new(), 2, true);
        assert_eq!(units[0].sops, ["A.5"]);
        assert_eq!(units[1].sops, ["B.3"]);
        assert!(units[0].first && units[1].first && units[2..].iter().all(|u| !u.first));
        // Then each series whole (nothing of them cached).
        assert_eq!(units.len(), 4);
        assert!(units[2..].iter().all(|u| u.sops.is_empty()));
        assert_eq!(
            (units[2].series_uid.as_str(), units[3].series_uid.as_str()),
            ("A", "B")
        );
        // Partly cached: the middle, then only the rest, without it.
        let cached = set(&["A.1"]);
        let q = plan(vec![("A", SeriesPlan::listed(list("A", 9), &cached))]);
        let partly = q.units(&cached, 2, true);
        assert_eq!(partly[0].sops, ["A.5"]);
        let rest: Vec<&String> = partly[1..].iter().flat_map(|u| &u.sops).collect();
        assert_eq!(rest.len(), 7);
        assert!(!rest.contains(&&"A.5".to_string()) && !rest.contains(&&"A.1".to_string()));
        // Without middle_first: no single image ahead of the rest.
        let units = p.units(&HashSet::new(), 2, false);
        assert!(units.iter().all(|u| u.sops.len() != 1));
    }

    #[test]
    fn a_cached_middle_image_is_not_fetched_first() {
        let cached = set(&["A.3"]);
        let p = plan(vec![("A", SeriesPlan::listed(list("A", 5), &cached))]);
        let units = p.units(&cached, 1, true);
        assert_eq!(units.len(), 1);
        assert_eq!(units[0].sops.len(), 4);
        // Images without a number sort after those with one.
        let mut l = list("C", 2);
        l.push(Remote {
            sop: "C.x".into(),
            class: None,
            number: None,
            position: None,
            orientation: None,
        });
        assert_eq!(middle(&l).map(|r| r.sop.as_str()), Some("C.2"));
    }

    #[test]
    fn what_is_listed_and_not_cached_is_named() {
        let l = list("A", 3);
        assert_eq!(not_cached(&l, &set(&["A.2"])), ["A.1", "A.3"]);
        assert!(not_cached(&l, &set(&["A.1", "A.2", "A.3"])).is_empty());
    }
}
