#![no_main]
use libfuzzer_sys::fuzz_target;

/// A scratch folder in memory for the archive and what it unpacks to.
fn scratch() -> std::path::PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        std::path::PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let d = base.join(format!("lightbox-fuzz-zip-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&d);
    d
}

fuzz_target!(|data: &[u8]| {
    let _ = lightbox::fuzzing::zip(data, &scratch());
});
