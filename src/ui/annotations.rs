//! Corner annotations, per modality: which lines each corner shows, as templates
//! with `{Placeholders}`. The built-in layout is `assets/annotations.toml`; the
//! user's `~/.config/lightbox/annotations.toml` (same format) is laid over it,
//! corner by corner.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::dicom::ImageHeader;

const BUILT_IN: &str = include_str!("../../assets/annotations.toml");

/// The four corners' line templates.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Corners {
    pub top_left: Option<Vec<String>>,
    pub top_right: Option<Vec<String>>,
    pub bottom_left: Option<Vec<String>>,
    pub bottom_right: Option<Vec<String>>,
}

impl Corners {
    /// `self`, with what it does not name taken from `under`.
    fn over(&self, under: &Corners) -> Corners {
        Corners {
            top_left: self.top_left.clone().or_else(|| under.top_left.clone()),
            top_right: self.top_right.clone().or_else(|| under.top_right.clone()),
            bottom_left: self
                .bottom_left
                .clone()
                .or_else(|| under.bottom_left.clone()),
            bottom_right: self
                .bottom_right
                .clone()
                .or_else(|| under.bottom_right.clone()),
        }
    }
}

/// Annotation layouts: `default` and one table per modality.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layouts {
    tables: BTreeMap<String, Corners>,
}

/// Placeholders the templates may use, besides the keywords of
/// [`crate::dicom::header::ANNOTATION_ATTRS`].
pub const PLACEHOLDERS: &[&str] = &[
    "PatientName",
    "PatientID",
    "PatientSex",
    "PatientBirthDate",
    "StudyDate",
    "StudyTime",
    "StudyDescription",
    "AccessionNumber",
    "ReferringPhysicianName",
    "Modality",
    "SeriesNumber",
    "SeriesDescription",
    "BodyPartExamined",
    "InstanceNumber",
    "Image",
    "Position",
    "Thickness",
    "Window",
    "Zoom",
    "Transform",
];

fn parse(text: &str) -> Result<BTreeMap<String, Corners>, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// Names used in templates that are not placeholders.
fn unknown(tables: &BTreeMap<String, Corners>) -> Vec<String> {
    let known = |k: &str| {
        PLACEHOLDERS.contains(&k)
            || crate::dicom::header::ANNOTATION_ATTRS
                .iter()
                .any(|(a, _)| *a == k)
    };
    let mut out = Vec::new();
    for c in tables.values() {
        for lines in [&c.top_left, &c.top_right, &c.bottom_left, &c.bottom_right]
            .into_iter()
            .flatten()
        {
            for l in lines {
                for name in names(l) {
                    if !known(name) && !out.iter().any(|o| o == name) {
                        out.push(name.to_string());
                    }
                }
            }
        }
    }
    out
}

/// The `{Name}`s of a template.
fn names(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(a) = rest.find('{') {
        let Some(b) = rest[a..].find('}') else { break };
        out.push(&rest[a + 1..a + b]);
        rest = &rest[a + b + 1..];
    }
    out
}

impl Layouts {
    /// The built-in layouts with the user's file over them; problems (an
    /// unreadable file, unknown placeholders) are returned, not fatal.
    pub fn load(user_file: Option<&Path>) -> (Layouts, Vec<String>) {
        let mut problems = Vec::new();
        let mut tables = parse(BUILT_IN).unwrap_or_else(|e| {
            problems.push(format!("built-in annotations: {e}"));
            BTreeMap::new()
        });
        if let Some(f) = user_file
            && f.exists()
        {
            match std::fs::read_to_string(f)
                .map_err(|e| e.to_string())
                .and_then(|t| parse(&t))
            {
                Ok(user) => {
                    for (k, c) in user {
                        let merged = match tables.get(&k) {
                            Some(under) => c.over(under),
                            None => c,
                        };
                        tables.insert(k, merged);
                    }
                }
                Err(e) => problems.push(format!("{}: {e}", f.display())),
            }
        }
        for u in unknown(&tables) {
            problems.push(format!("annotations: unknown placeholder {{{u}}}"));
        }
        (Layouts { tables }, problems)
    }

    /// The corners for a modality (its table over the default one).
    pub fn corners(&self, modality: &str) -> Corners {
        let default = self.tables.get("default").cloned().unwrap_or_default();
        match self.tables.get(&modality.to_uppercase()) {
            Some(c) => c.over(&default),
            None => default,
        }
    }
}

/// "4000.0000" → "4000", "2.50" → "2.5"; text that is not one number as is.
fn compact_number(v: &str) -> String {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() => {
            let s = format!("{x:.2}");
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        _ => v.replace('\\', " "),
    }
}

/// What the viewport knows beyond the header.
#[derive(Debug, Clone, Default)]
pub struct Live {
    pub image: String,
    pub position: String,
    pub thickness: String,
    pub window: String,
    pub zoom: String,
    pub transform: String,
}

/// A placeholder's value for an image ("" when it has none).
pub fn value(name: &str, h: &ImageHeader, live: &Live) -> String {
    let s = |v: &Option<String>| v.clone().unwrap_or_default();
    let with_unit = |k: &str, unit: &str, prefix: &str| {
        h.annotation_attrs
            .iter()
            .find(|(a, _)| *a == k)
            .map(|(_, v)| format!("{prefix}{}{unit}", compact_number(v)))
            .unwrap_or_default()
    };
    match name {
        "PatientName" => s(&h.patient_name).replace('^', " ").trim().to_string(),
        "PatientID" => s(&h.patient_id),
        "PatientSex" => s(&h.patient_sex),
        "PatientBirthDate" => h
            .patient_birth_date
            .as_deref()
            .map(super::panels::show_date)
            .unwrap_or_default(),
        // Patient's Age, else from the birth and study dates ("56 y").
        "PatientAge" => super::panels::age_of(h, h.study_date.as_deref().unwrap_or_default())
            .unwrap_or_default(),
        "StudyDate" => h
            .study_date
            .as_deref()
            .map(super::panels::show_date)
            .unwrap_or_default(),
        "StudyTime" => s(&h.study_time),
        "StudyDescription" => s(&h.study_description),
        "AccessionNumber" => s(&h.accession_number),
        "ReferringPhysicianName" => s(&h.referring_physician).replace('^', " "),
        "Modality" => s(&h.modality),
        "SeriesNumber" => h.series_number.map(|n| n.to_string()).unwrap_or_default(),
        "SeriesDescription" => s(&h.series_description),
        "BodyPartExamined" => s(&h.body_part),
        "InstanceNumber" => h.instance_number.map(|n| n.to_string()).unwrap_or_default(),
        "Image" => live.image.clone(),
        "Position" => live.position.clone(),
        "Thickness" => live.thickness.clone(),
        "Window" => live.window.clone(),
        "Zoom" => live.zoom.clone(),
        "Transform" => live.transform.clone(),
        "KVP" => with_unit("KVP", " kV", ""),
        "Exposure" => with_unit("Exposure", " mAs", ""),
        "XRayTubeCurrent" => with_unit("XRayTubeCurrent", " mA", ""),
        "RepetitionTime" => with_unit("RepetitionTime", " ms", "TR "),
        "EchoTime" => with_unit("EchoTime", " ms", "TE "),
        "FlipAngle" => with_unit("FlipAngle", "°", "FA "),
        "MagneticFieldStrength" => with_unit("MagneticFieldStrength", " T", ""),
        other => with_unit(other, "", ""),
    }
}

/// Fill a corner's templates: placeholders replaced, runs of spaces left by
/// empty values closed up, lines whose placeholders are all empty left out.
pub fn fill(lines: &[String], h: &ImageHeader, live: &Live) -> String {
    let mut out = Vec::new();
    for template in lines {
        let mut line = String::new();
        let mut any = names(template).is_empty();
        let mut rest = template.as_str();
        while let Some(a) = rest.find('{') {
            let Some(b) = rest[a..].find('}') else { break };
            line.push_str(&rest[..a]);
            let v = value(&rest[a + 1..a + b], h, live);
            any |= !v.is_empty();
            line.push_str(&v);
            rest = &rest[a + b + 1..];
        }
        line.push_str(rest);
        if !any {
            continue;
        }
        // Close up the gaps empty values leave.
        let mut closed = String::new();
        let mut spaces = 0;
        for c in line.trim().chars() {
            if c == ' ' {
                spaces += 1;
                if spaces <= 2 {
                    closed.push(c);
                }
            } else {
                spaces = 0;
                closed.push(c);
            }
        }
        out.push(closed);
    }
    out.join("\n")
}
