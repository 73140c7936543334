//! The device runs use: the first CUDA GPU when built with `--features cuda`, else the CPU.

use anyhow::Result;
use candle_core::Device;

pub fn default_device() -> Result<Device> {
    #[cfg(feature = "cuda")]
    {
        return Ok(Device::new_cuda(0)?);
    }
    #[allow(unreachable_code)]
    Ok(Device::Cpu)
}

/// The devices of `n` data-parallel ranks: GPUs 0..n with `--features cuda`, else n CPU
/// ranks (a simulation that computes the same update on this machine's cores).
pub fn rank_devices(n: usize) -> Result<Vec<Device>> {
    #[cfg(feature = "cuda")]
    {
        return (0..n)
            .map(|i| Device::new_cuda(i).map_err(|e| anyhow::anyhow!("GPU {i} of {n}: {e}")))
            .collect();
    }
    #[allow(unreachable_code)]
    Ok(vec![Device::Cpu; n])
}

/// The free memory of a GPU (none for the CPU), for `train` to plan its micro-batches.
pub fn free_memory(device: &Device) -> Option<u64> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        return d
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _)| free as u64);
    }
    let _ = device;
    None
}

/// A short description for results files.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!(
            "cpu ({} threads)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        other => format!("{other:?}"),
    }
}
