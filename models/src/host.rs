//! Every download from a tensor to host memory that the training and evaluation steps make,
//! counted per thread: the test that a training step copies no parameter and no row of the
//! puzzle table to the host reads this counter (`bytes_read`), and a source scan
//! (`tests/host_downloads.rs`) keeps the step's modules from downloading any other way.

use candle_core::{Result, Tensor, WithDType};
use std::cell::Cell;

thread_local! {
    static BYTES_READ: Cell<u64> = const { Cell::new(0) };
}

fn count<T>(elements: usize) {
    let bytes = (elements * std::mem::size_of::<T>()) as u64;
    BYTES_READ.with(|b| b.set(b.get() + bytes));
}

/// Bytes downloaded by this thread so far.
pub fn bytes_read() -> u64 {
    BYTES_READ.with(|b| b.get())
}

pub fn vec1<T: WithDType>(t: &Tensor) -> Result<Vec<T>> {
    count::<T>(t.elem_count());
    t.to_vec1()
}

pub fn vec2<T: WithDType>(t: &Tensor) -> Result<Vec<Vec<T>>> {
    count::<T>(t.elem_count());
    t.to_vec2()
}

pub fn scalar<T: WithDType>(t: &Tensor) -> Result<T> {
    count::<T>(1);
    t.to_scalar()
}
