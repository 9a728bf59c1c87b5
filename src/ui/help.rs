//! The F1 help table, generated from the command list ([`Command::all`]) so it
//! cannot leave a command out: every command with its keys (or "toolbar"), then
//! the pointer gestures.

use super::command::{Command, LAYOUTS, Shortcut};
use crate::imaging::lut;

/// Pointer gestures (not commands: they carry the pointer's motion), for the help.
pub const GESTURES: &[(&str, &str)] = &[
    ("wheel", "previous / next image"),
    (
        "left or right drag",
        "window: sideways width, up-down level (\"reverse W/L drag\" swaps them)",
    ),
    ("middle drag", "pan"),
    ("ctrl + wheel / ctrl + drag", "zoom"),
    (
        "drag a thumbnail",
        "show that series in the viewport it is dropped on",
    ),
    ("drop files or a folder", "import into the cache and open"),
    (
        "shift + click",
        "show this point in the other viewports of its frame of reference",
    ),
    ("double click", "maximise / restore the viewport"),
    (
        "MPR: drag the crosshair",
        "its centre moves the point looked at, a line moves that plane, a line's round handle turns the other planes (oblique)",
    ),
];

/// What the help shows in the keys column of a command with no shortcut.
pub const TOOLBAR_ONLY: &str = "toolbar";

/// The help table, generated from [`Command::all`] so it cannot leave one out:
/// every command with its keys (commands sharing a tooltip on one line, their
/// keys joined; the window presets and the layouts on one line each; a command
/// without keys as "toolbar"), then the pointer gestures.
pub fn help_rows() -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = Vec::new();
    for c in Command::all() {
        let keys: Vec<String> = c.shortcuts().iter().map(Shortcut::text).collect();
        // The window presets share one line: their keys in a row, their names.
        if let Command::Preset(i) = c {
            if i == 0 {
                let n = lut::CT_PRESETS.len();
                rows.push((
                    format!("1 … {n}"),
                    format!(
                        "window presets: {}",
                        lut::CT_PRESETS
                            .iter()
                            .map(|p| p.0)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            continue;
        }
        if let Command::Layout(..) = c {
            if !rows.iter().any(|(_, w)| w.starts_with("layouts: ")) {
                rows.push((
                    TOOLBAR_ONLY.into(),
                    format!(
                        "layouts: {} (or any rows × columns)",
                        LAYOUTS
                            .iter()
                            .map(|&(r, c)| Command::Layout(r, c).label())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            continue;
        }
        let keys = if keys.is_empty() {
            TOOLBAR_ONLY.to_string()
        } else {
            keys.join(" or ")
        };
        let what = c.tooltip();
        match rows.iter_mut().find(|(_, w)| *w == what) {
            Some((k, _)) if *k != keys => {
                k.push_str(" / ");
                k.push_str(&keys);
            }
            Some(_) => {}
            None => rows.push((keys, what)),
        }
    }
    rows.extend(GESTURES.iter().map(|(k, w)| (k.to_string(), w.to_string())));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_lists_every_command_that_has_a_label() {
        let rows = help_rows();
        for c in Command::all() {
            let (label, tip) = (c.label(), c.tooltip());
            assert!(
                rows.iter().any(|(_, w)| *w == tip || w.contains(&label)),
                "help lacks {label:?} ({tip})"
            );
        }
        // Commands with no key are said to be on the toolbar, not left out.
        let sync = rows
            .iter()
            .find(|(_, w)| *w == Command::ToggleSyncView.tooltip())
            .expect("sync W/L");
        assert_eq!(sync.0, TOOLBAR_ONLY);
        assert!(
            rows.iter()
                .any(|(k, w)| k.contains("ctrl + E") && w.contains("export the image")),
            "export has its key in the help"
        );
    }

    #[test]
    fn help_lists_every_key_and_every_command_has_a_label() {
        let rows = help_rows();
        for c in Command::all() {
            assert!(!c.label().is_empty(), "{c:?} has no label");
            assert!(!c.tooltip().is_empty(), "{c:?} has no tooltip");
            if matches!(c, Command::Preset(_)) {
                assert!(rows.iter().any(|(_, w)| w.contains(&c.label())), "{c:?}");
                continue;
            }
            for s in c.shortcuts() {
                let t = s.text();
                assert!(
                    rows.iter()
                        .any(|(k, _)| k.split(" / ").any(|p| p.split(" or ").any(|x| x == t))),
                    "help lacks {t}"
                );
            }
        }
        for t in ["T", "M", "F1", "F11", "Escape", "ctrl + E", "W"] {
            assert!(
                rows.iter().any(|(k, _)| k.contains(t)),
                "help lacks {t}: {rows:?}"
            );
        }
    }
}
