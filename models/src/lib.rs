//! TRM, HRM and the official ablation variants on one shared candle backend (CPU by default, CUDA with the `cuda` feature),
//! under the official parameter names so official checkpoints load unchanged.

pub mod act;
pub mod attention;
pub mod checkpoint;
pub mod collective;
pub mod config;
pub mod flops;
pub mod frame;
pub mod host;
pub mod hrm;
pub mod init;
pub mod kernels;
pub mod layers;
pub mod loss;
pub mod memory;
pub mod model;
#[cfg(feature = "nccl")]
pub mod nccl;
pub mod optim;
pub mod params;
pub mod parity;
pub mod trainer;
pub mod transformer;
pub mod trm;
pub mod trm_hier6;
pub mod trm_singlez;
