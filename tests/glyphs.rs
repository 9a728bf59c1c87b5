//! Every non-ASCII character the viewer's source writes on screen has a glyph in
//! the bundled fonts (egui panics in debug builds, and draws boxes in release
//! builds, for a missing one).

use eframe::egui;

#[test]
fn the_bundled_fonts_draw_every_symbol_the_viewer_uses() {
    let mut chars = std::collections::BTreeSet::new();
    for f in std::fs::read_dir("src/ui").expect("src/ui") {
        let p = f.expect("entry").path();
        if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p).expect("read");
            // Only what is inside string literals reaches the screen; comments
            // are skipped line by line.
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                chars.extend(line.chars().filter(|c| !c.is_ascii()));
            }
        }
    }
    assert!(chars.contains(&'°'), "the scan sees the degree sign");
    let text: String = chars.iter().collect();
    let ctx = egui::Context::default();
    let mut out = ctx.run_ui(egui::RawInput::default(), |ui| {
        for font in [
            egui::FontId::proportional(13.0),
            egui::FontId::monospace(12.0),
        ] {
            ui.fonts_mut(|f| {
                for c in &chars {
                    assert!(
                        f.has_glyph(&font, *c),
                        "no glyph for {c:?} in {font:?} ({text})"
                    );
                }
            });
        }
    });
    // Nothing is drawn: the font atlas update is dropped on purpose.
    out.textures_delta.clear();
}
