//! Any bytes as a PNM (`common/format.rs`, shared with the other
//! per-format targets).
#![no_main]

#[path = "common/format.rs"]
mod format;

use libfuzzer_sys::fuzz_target;
use rlewatch::formats::Format;

fuzz_target!(|data: &[u8]| format::run(data, Format::Pnm));
