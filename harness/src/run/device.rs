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

/// The memory a training step may take: a GPU's free memory, or the memory the kernel
/// reports available to new processes on a Linux CPU (none elsewhere), for `train` to plan its
/// micro-batches, or to refuse a step that cannot fit before the system kills the process.
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
    match device {
        Device::Cpu => available_host_memory(),
        _ => None,
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes.
fn available_host_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
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

#[cfg(test)]
mod tests {
    /// On Linux a CPU run plans against the memory the kernel says is available, so a step
    /// too large for the machine is split or refused instead of killed by the system.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_cpu_step_is_planned_against_the_available_memory() {
        let total: u64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap();
        let free = super::free_memory(&candle_core::Device::Cpu).expect("a budget on Linux");
        assert!(free > 0 && free <= total * 1024, "{free} of {total} KiB");
    }
}
