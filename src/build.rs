//! Build script (named in Cargo.toml as `build = "src/build.rs"`): tells
//! the tests whether the shared corpus is beside the checkout. When it is
//! not, it sets `cfg(no_corpus)`, and the corpus tests are marked ignored
//! with the reason, so the summary shows them as skipped instead of
//! counting them as passed. `RLEWATCH_REQUIRE_CORPUS` (set by CI) never
//! lets them be skipped. The library itself does not use the cfg.

use std::path::Path;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(no_corpus)");
    println!("cargo::rerun-if-env-changed=RLEWATCH_REQUIRE_CORPUS");
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bmpsuite");
    // A path that does not exist makes cargo run this again at every
    // build, so a corpus that appears later is noticed.
    println!("cargo::rerun-if-changed={}", corpus.display());
    if !corpus.is_dir() && std::env::var_os("RLEWATCH_REQUIRE_CORPUS").is_none() {
        println!("cargo::rustc-cfg=no_corpus");
    }
}
