//! The gradient exchange of `train --gpus N` over NCCL (cudarc's, through candle), the engine
//! torchrun's ranks use for the official code: one communicator per GPU of this process
//! (`ncclCommInitAll`), each rank's thread driving its own. Built with `--features nccl`;
//! `ThreadGroup` (device-to-device copies) is the exchange without it. Never run on a GPU
//! yet: it type-checks in CI.

use crate::collective::Collective;
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::nccl::safe::{Comm, ReduceOp};
use candle_core::{
    CpuStorage, CudaStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor,
};
use std::sync::{Arc, Mutex};

/// A communicator. SAFETY of the `Send`/`Sync`: NCCL allows a communicator to be driven from
/// any one thread at a time, and the mutex makes it one.
struct SharedComm(Comm);
unsafe impl Send for SharedComm {}
unsafe impl Sync for SharedComm {}

pub struct NcclGroup {
    comm: Arc<Mutex<SharedComm>>,
    rank: usize,
    world: usize,
}

impl NcclGroup {
    /// One rank per device (all CUDA), rank r on `devices[r]`.
    pub fn new(devices: &[Device]) -> Result<Vec<NcclGroup>> {
        let streams = devices
            .iter()
            .map(|d| match d {
                Device::Cuda(c) => Ok(c.cuda_stream()),
                other => Err(candle_core::Error::msg(format!(
                    "NCCL ranks need CUDA devices, not {other:?}"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        let world = streams.len();
        let comms = Comm::from_devices(streams)
            .map_err(|e| candle_core::Error::msg(format!("NCCL initialisation: {e:?}")))?;
        Ok(comms
            .into_iter()
            .enumerate()
            .map(|(rank, comm)| NcclGroup {
                comm: Arc::new(Mutex::new(SharedComm(comm))),
                rank,
                world,
            })
            .collect())
    }
}

enum Kind {
    Sum,
    Gather,
}

/// One collective on one rank's contiguous f32 tensor.
struct Collect {
    comm: Arc<Mutex<SharedComm>>,
    kind: Kind,
    world: usize,
}

impl CustomOp1 for Collect {
    fn name(&self) -> &'static str {
        "nccl"
    }

    fn cpu_fwd(&self, _: &CpuStorage, _: &Layout) -> Result<(CpuStorage, Shape)> {
        candle_core::bail!("NCCL exchanges CUDA tensors")
    }

    fn cuda_fwd(&self, s: &CudaStorage, l: &Layout) -> Result<(CudaStorage, Shape)> {
        let (start, end) = l
            .contiguous_offsets()
            .ok_or_else(|| candle_core::Error::msg("NCCL exchanges contiguous tensors"))?;
        let src = s.as_cuda_slice::<f32>()?.slice(start..end);
        let device = s.device().clone();
        let comm = self.comm.lock().expect("communicator");
        let nccl = |e| candle_core::Error::msg(format!("NCCL: {e:?}"));
        let (dst, shape) = match self.kind {
            Kind::Sum => {
                let mut dst = device.alloc_zeros::<f32>(end - start)?;
                comm.0
                    .all_reduce(&src, &mut dst, &ReduceOp::Sum)
                    .map_err(nccl)?;
                (dst, l.shape().clone())
            }
            Kind::Gather => {
                let mut dst = device.alloc_zeros::<f32>((end - start) * self.world)?;
                comm.0.all_gather(&src, &mut dst).map_err(nccl)?;
                let mut dims = l.shape().dims().to_vec();
                dims[0] *= self.world;
                (dst, Shape::from(dims))
            }
        };
        Ok((CudaStorage::wrap_cuda_slice(dst, device), shape))
    }
}

impl NcclGroup {
    fn collect(&self, t: &Tensor, kind: Kind) -> Result<Tensor> {
        let dtype = t.dtype();
        let op = Collect {
            comm: self.comm.clone(),
            kind,
            world: self.world,
        };
        t.to_dtype(DType::F32)?
            .contiguous()?
            .apply_op1_no_bwd(&op)?
            .to_dtype(dtype)
    }
}

impl Collective for NcclGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.world
    }
    fn all_reduce_sum(&self, tensors: Vec<Tensor>) -> Result<Vec<Tensor>> {
        tensors.iter().map(|t| self.collect(t, Kind::Sum)).collect()
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor> {
        self.collect(tensor, Kind::Gather)
    }
}
