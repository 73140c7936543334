//! `.npy` headers and bodies, read into every element type the loaders use.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = datasets::npy::decode::<u8>(data.to_vec());
    let _ = datasets::npy::decode::<i32>(data.to_vec());
    if let Ok(a) = datasets::npy::decode::<i64>(data.to_vec()) {
        assert_eq!(a.shape.iter().product::<usize>(), a.data.len());
    }
});
