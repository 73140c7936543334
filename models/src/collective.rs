//! What data-parallel ranks exchange in one optimiser step, as `torch.distributed` does for
//! the official code: the sum of the gradients (`all_reduce`) and every rank's puzzle-table
//! ids and row gradients (`all_gather`, for the distributed sign-SGD). `SingleRank` is one
//! process alone; `ThreadGroup` runs N ranks as threads of one process, each with its own copy
//! of the model, which is how the tests show that the rank count does not change an update.

use candle_core::{Device, Result, Tensor};
use std::sync::{Arc, Condvar, Mutex};

pub trait Collective: Send + Sync {
    fn rank(&self) -> usize;
    fn world(&self) -> usize;
    /// Each tensor summed over the ranks (same shapes on every rank), in rank order, so every
    /// rank gets the same bits.
    fn all_reduce_sum(&self, tensors: Vec<Tensor>) -> Result<Vec<Tensor>>;
    /// Every rank's tensor concatenated along axis 0, in rank order.
    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor>;
    /// Ends the group's exchanges, now and later, with `why`, on every rank: a rank that
    /// fails calls it, so no other rank waits for it forever.
    fn abort(&self, why: &str);
}

/// A guard that aborts a group's exchanges if its thread panics, so the other ranks get an
/// error instead of waiting forever.
pub struct AbortOnPanic<'a>(pub &'a dyn Collective);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.abort("panicked");
        }
    }
}

/// The rows of a global batch of `global` slots that `rank` of `world` holds: contiguous
/// blocks, the first `global % world` ranks one row longer.
pub fn rank_rows(global: usize, rank: usize, world: usize) -> std::ops::Range<usize> {
    let (base, extra) = (global / world, global % world);
    let start = rank * base + rank.min(extra);
    start..start + base + usize::from(rank < extra)
}

pub struct SingleRank;

impl Collective for SingleRank {
    fn rank(&self) -> usize {
        0
    }
    fn world(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, tensors: Vec<Tensor>) -> Result<Vec<Tensor>> {
        Ok(tensors)
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor> {
        Ok(tensor.clone())
    }
    /// Alone, no other rank waits.
    fn abort(&self, _why: &str) {}
}

/// One round of deposits; `result` holds the last completed round's, which no rank can
/// overwrite before every rank has read it (a rank deposits again only after reading).
struct Round {
    deposits: Vec<Vec<Tensor>>,
    arrived: usize,
    generation: u64,
    result: Arc<Vec<Vec<Tensor>>>,
    aborted: Option<String>,
}

struct Exchange {
    round: Mutex<Round>,
    turn: Condvar,
}

/// One rank of a group of threads.
pub struct ThreadGroup {
    rank: usize,
    world: usize,
    device: Device,
    exchange: Arc<Exchange>,
}

impl ThreadGroup {
    /// The `world` ranks of one group; rank r is the r-th, and computes on `devices[r]`.
    pub fn new(devices: Vec<Device>) -> Vec<ThreadGroup> {
        let world = devices.len();
        let exchange = Arc::new(Exchange {
            round: Mutex::new(Round {
                deposits: vec![Vec::new(); world],
                arrived: 0,
                generation: 0,
                result: Arc::new(Vec::new()),
                aborted: None,
            }),
            turn: Condvar::new(),
        });
        devices
            .into_iter()
            .enumerate()
            .map(|(rank, device)| ThreadGroup {
                rank,
                world,
                device,
                exchange: exchange.clone(),
            })
            .collect()
    }

    /// Deposits this rank's tensors and returns every rank's, in rank order, once all
    /// have deposited.
    fn exchange(&self, tensors: Vec<Tensor>) -> Result<Vec<Vec<Tensor>>> {
        let failed = |why: &String| candle_core::Error::msg(format!("the ranks stopped: {why}"));
        // Each GPU rank queues work on its own stream: its tensors must be computed before
        // another rank copies them, and its copies done before it hands them on.
        self.device.synchronize()?;
        let mut round = self.exchange.round.lock().expect("exchange");
        if let Some(why) = &round.aborted {
            return Err(failed(why));
        }
        round.deposits[self.rank] = tensors;
        round.arrived += 1;
        let generation = round.generation;
        if round.arrived == self.world {
            let deposits = std::mem::replace(&mut round.deposits, vec![Vec::new(); self.world]);
            round.result = Arc::new(deposits);
            round.arrived = 0;
            round.generation += 1;
            self.exchange.turn.notify_all();
        } else {
            while round.generation == generation && round.aborted.is_none() {
                round = self.exchange.turn.wait(round).expect("exchange");
            }
            if let (true, Some(why)) = (round.generation == generation, &round.aborted) {
                return Err(failed(why));
            }
        }
        let all = round.result.clone();
        drop(round);
        let copies = all
            .iter()
            .map(|ts| ts.iter().map(|t| t.to_device(&self.device)).collect())
            .collect::<Result<Vec<Vec<Tensor>>>>()?;
        self.device.synchronize()?;
        Ok(copies)
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }
    fn world(&self) -> usize {
        self.world
    }
    fn all_reduce_sum(&self, tensors: Vec<Tensor>) -> Result<Vec<Tensor>> {
        let n = tensors.len();
        let all = self.exchange(tensors)?;
        (0..n)
            .map(|i| {
                let mut sum = all[0][i].clone();
                for rank in &all[1..] {
                    sum = (sum + &rank[i])?;
                }
                Ok(sum)
            })
            .collect()
    }
    fn all_gather(&self, tensor: &Tensor) -> Result<Tensor> {
        let all = self.exchange(vec![tensor.clone()])?;
        Tensor::cat(&all.iter().map(|ts| &ts[0]).collect::<Vec<_>>(), 0)
    }
    /// Wakes every rank waiting in an exchange with `why`; later exchanges fail with it too.
    fn abort(&self, why: &str) {
        let mut round = self.exchange.round.lock().expect("exchange");
        round
            .aborted
            .get_or_insert_with(|| format!("rank {}: {why}", self.rank));
        self.exchange.turn.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_rows_cover_the_batch_once() {
        for (global, world) in [(8, 1), (8, 4), (10, 4), (3, 3)] {
            let rows: Vec<usize> = (0..world)
                .flat_map(|r| rank_rows(global, r, world))
                .collect();
            assert_eq!(rows, (0..global).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_panicking_rank_ends_the_others_waits() {
        let ranks = ThreadGroup::new(vec![Device::Cpu; 2]);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| {
                ranks[0].all_reduce_sum(vec![Tensor::new(&[1f32], &Device::Cpu).unwrap()])
            });
            let panicking = s.spawn(|| {
                let _guard = AbortOnPanic(&ranks[1]);
                panic!("a bug in rank 1");
            });
            assert!(panicking.join().is_err());
            let err = waiting.join().unwrap().unwrap_err();
            assert!(err.to_string().contains("rank 1: panicked"), "{err}");
        });
    }

    #[test]
    fn a_failed_rank_ends_the_others_waits() {
        let ranks = ThreadGroup::new(vec![Device::Cpu; 2]);
        std::thread::scope(|s| {
            let waiting = s.spawn(|| {
                ranks[0].all_reduce_sum(vec![Tensor::new(&[1f32], &Device::Cpu).unwrap()])
            });
            ranks[1].abort("out of memory");
            let err = waiting.join().unwrap().unwrap_err();
            assert!(err.to_string().contains("rank 1: out of memory"), "{err}");
        });
    }

    #[test]
    fn a_thread_group_sums_and_gathers_in_rank_order() {
        let ranks = ThreadGroup::new(vec![Device::Cpu; 3]);
        let results: Vec<(Vec<f32>, Vec<f32>)> = std::thread::scope(|s| {
            let handles: Vec<_> = ranks
                .iter()
                .map(|g| {
                    s.spawn(move || {
                        let mine = Tensor::new(&[g.rank() as f32, 1.0], &Device::Cpu).unwrap();
                        let sum = g.all_reduce_sum(vec![mine.clone()]).unwrap();
                        let gathered = g.all_gather(&mine.narrow(0, 0, 1).unwrap()).unwrap();
                        (
                            sum[0].to_vec1::<f32>().unwrap(),
                            gathered.to_vec1::<f32>().unwrap(),
                        )
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (sum, gathered) in results {
            assert_eq!(sum, vec![3.0, 3.0]);
            assert_eq!(gathered, vec![0.0, 1.0, 2.0]);
        }
    }
}
