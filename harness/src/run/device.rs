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
        // The machine's cores; the threads each run used are in its record's provenance.
        Device::Cpu => format!(
            "cpu ({} cores)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        other => format!("{other:?}"),
    }
}

/// What produced a record's arithmetic. The same seed on another processor, instruction
/// set or thread count rounds differently, and over hundreds of steps its per-seed numbers
/// drift apart; the seed-level statistics are what carry over.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// The CPU's model name, or the GPU.
    pub processor: String,
    /// The instruction set the CPU kernels dispatch to, or `CUDA`.
    pub kernel_path: String,
    /// Worker threads of the run (rayon's pool on the CPU).
    pub threads: usize,
    /// `arch.forward_dtype`: float32 or bfloat16.
    pub forward_dtype: String,
}

impl Provenance {
    pub fn of(device: &Device, forward_dtype: &str) -> Provenance {
        let (processor, kernel_path) = match device {
            Device::Cpu => (cpu_model(), models::kernels::simd_path().to_string()),
            other => (format!("{other:?}"), "CUDA".to_string()),
        };
        Provenance {
            processor,
            kernel_path,
            threads: rayon_threads(),
            forward_dtype: forward_dtype.to_string(),
        }
    }

    /// For records written before provenance was recorded.
    pub fn unrecorded() -> Provenance {
        Provenance {
            processor: "not recorded".into(),
            kernel_path: "not recorded".into(),
            threads: 0,
            forward_dtype: "not recorded".into(),
        }
    }

    /// One line: `Intel Xeon ... (AVX-512, 2 threads, float32)`.
    pub fn line(&self) -> String {
        format!(
            "{} ({}, {} threads, {})",
            self.processor, self.kernel_path, self.threads, self.forward_dtype
        )
    }
}

/// The CPU's model name from `/proc/cpuinfo` (Linux), else the architecture.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| format!("{} CPU (model not readable)", std::env::consts::ARCH))
}

/// The threads candle's CPU kernels and GEMMs run on (rayon's global pool).
fn rayon_threads() -> usize {
    rayon::current_num_threads()
}
