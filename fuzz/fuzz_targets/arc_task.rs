//! An ARC task file in the public format, parsed with every grid validated.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "scratch.rs"]
mod scratch;

fuzz_target!(|data: &[u8]| {
    let path = scratch::scratch().join("0a1b2c3d.json");
    std::fs::write(&path, data).unwrap();
    let _ = datasets::arc::load_task_file(&path, "training");
});
