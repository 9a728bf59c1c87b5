//! The `lightbox` command line: see `lightbox --help`.

fn main() -> std::process::ExitCode {
    lightbox::cli::main()
}
