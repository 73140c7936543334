//! The gradient exchange of `train --gpus N` over NCCL (cudarc's bindings, through candle),
//! the engine torchrun's ranks use for the official code: one communicator per GPU of this
//! process (`ncclCommInitAll`), each rank's thread driving its own. A rank that fails aborts
//! every communicator (`ncclCommAbort`), which ends the other ranks' collectives instead of
//! leaving them waiting for it forever. Built with `--features nccl`; `ThreadGroup`
//! (device-to-device copies) is the exchange without it. Never run on a GPU yet: it
//! type-checks in CI.

use crate::collective::Collective;
use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{CudaStream, DevicePtr, DevicePtrMut};
use candle_core::cuda_backend::cudarc::nccl::{result, sys};
use candle_core::{
    CpuStorage, CudaStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// One rank's communicator: NCCL's handle and the stream its collectives run on.
struct RankComm {
    raw: sys::ncclComm_t,
    stream: Arc<CudaStream>,
    /// Held while this rank enqueues a collective: an abort that finds it free releases the
    /// handle with no call on its way in.
    calling: Mutex<()>,
    /// The handle was aborted (once only: by a failing rank, or when the group ends).
    released: AtomicBool,
}

// SAFETY: an NCCL communicator may be driven from any thread, one call at a time (`calling`),
// and `ncclCommAbort` may be called from another thread to end a call blocked in it (what it
// is for).
unsafe impl Send for RankComm {}
unsafe impl Sync for RankComm {}

impl RankComm {
    fn release(&self) {
        if !self.released.swap(true, Ordering::SeqCst) {
            // SAFETY: the handle came from ncclCommInitAll and is aborted once. An error
            // leaves nothing to do: the group is ending either way.
            let _ = unsafe { result::comm_abort(self.raw) };
        }
    }
}

/// Every rank's communicator, and why the group was aborted.
struct Comms {
    ranks: Vec<RankComm>,
    aborted: Mutex<Option<String>>,
}

impl Drop for Comms {
    fn drop(&mut self) {
        for rank in &self.ranks {
            rank.release();
        }
    }
}

pub struct NcclGroup {
    comms: Arc<Comms>,
    rank: usize,
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
        let ordinals: Vec<i32> = streams
            .iter()
            .map(|s| s.context().ordinal() as i32)
            .collect();
        let mut raw = vec![std::ptr::null_mut(); streams.len()];
        // SAFETY: `raw` has room for one handle per device of `ordinals`.
        unsafe { result::comm_init_all(raw.as_mut_ptr(), raw.len() as i32, ordinals.as_ptr()) }
            .map_err(|e| candle_core::Error::msg(format!("NCCL initialisation: {e:?}")))?;
        let ranks = raw
            .into_iter()
            .zip(streams)
            .map(|(raw, stream)| RankComm {
                raw,
                stream,
                calling: Mutex::new(()),
                released: AtomicBool::new(false),
            })
            .collect();
        let comms = Arc::new(Comms {
            ranks,
            aborted: Mutex::new(None),
        });
        Ok((0..devices.len())
            .map(|rank| NcclGroup {
                comms: comms.clone(),
                rank,
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
    comms: Arc<Comms>,
    rank: usize,
    kind: Kind,
}

impl Collect {
    /// Refuses once the group was aborted; the caller holds the rank's `calling` lock, so an
    /// abort after this check finds the lock taken and aborts beside the call.
    fn check_live(&self) -> Result<()> {
        let aborted = self.comms.aborted.lock().expect("abort reason").clone();
        match aborted {
            Some(why) => Err(candle_core::Error::msg(format!(
                "NCCL exchange aborted: {why}"
            ))),
            None => Ok(()),
        }
    }
}

impl Collect {
    /// Enqueues the collective of `count` elements per rank on this rank's stream.
    fn enqueue(
        &self,
        src: &impl DevicePtr<f32>,
        dst: &mut impl DevicePtrMut<f32>,
        count: usize,
    ) -> Result<()> {
        let comm = &self.comms.ranks[self.rank];
        let _calling = comm.calling.lock().expect("communicator");
        self.check_live()?;
        let stream = &comm.stream;
        // The buffers' stream bookkeeping (`_src_done`, `_dst_done`) ends after the enqueue.
        let (src_ptr, _src_done) = src.device_ptr(stream);
        let (dst_ptr, _dst_done) = dst.device_ptr_mut(stream);
        let on = stream.cu_stream() as sys::cudaStream_t;
        // SAFETY: both pointers are live device buffers of the counts given, on this rank's
        // stream; the handle is not released while `calling` is held and the group is live.
        let status = unsafe {
            match self.kind {
                Kind::Sum => result::all_reduce(
                    src_ptr as _,
                    dst_ptr as _,
                    count,
                    sys::ncclDataType_t::ncclFloat32,
                    sys::ncclRedOp_t::ncclSum,
                    comm.raw,
                    on,
                ),
                Kind::Gather => result::all_gather(
                    src_ptr as _,
                    dst_ptr as _,
                    count,
                    sys::ncclDataType_t::ncclFloat32,
                    comm.raw,
                    on,
                ),
            }
        };
        status
            .map(|_| ())
            .map_err(|e| candle_core::Error::msg(format!("NCCL: {e:?}")))
    }
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
        let world = self.comms.ranks.len();
        let (out_len, dims) = match self.kind {
            Kind::Sum => (end - start, l.shape().dims().to_vec()),
            Kind::Gather => {
                let mut dims = l.shape().dims().to_vec();
                dims[0] *= world;
                ((end - start) * world, dims)
            }
        };
        let mut dst = device.alloc_zeros::<f32>(out_len)?;
        self.enqueue(&src, &mut dst, end - start)?;
        Ok((CudaStorage::wrap_cuda_slice(dst, device), Shape::from(dims)))
    }
}

impl NcclGroup {
    fn collect(&self, t: &Tensor, kind: Kind) -> Result<Tensor> {
        let dtype = t.dtype();
        let op = Collect {
            comms: self.comms.clone(),
            rank: self.rank,
            kind,
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
        self.comms.ranks.len()
    }
    fn all_reduce_sum(&self, tensors: Vec<Tensor>) -> Result<Vec<Tensor>> {
        tensors.iter().map(|t| self.collect(t, Kind::Sum)).collect()
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor> {
        self.collect(tensor, Kind::Gather)
    }
    /// Every rank's communicator aborted: a rank blocked in a collective (or waiting on its
    /// stream for one) gets NCCL's error instead of waiting for the failed rank forever, and
    /// every later collective is refused with `why`.
    fn abort(&self, why: &str) {
        self.comms
            .aborted
            .lock()
            .expect("abort reason")
            .get_or_insert_with(|| format!("rank {}: {why}", self.rank));
        for comm in &self.comms.ranks {
            // Free: no call is on its way in, and later ones see the reason first. Taken: a
            // call may be blocked inside NCCL waiting for the failed rank; aborting beside it
            // is what ends it.
            let _free = comm.calling.try_lock();
            comm.release();
        }
    }
}
