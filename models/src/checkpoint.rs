//! State dicts under the official PyTorch names: read from an official `.pt` checkpoint
//! (PyTorch's zip-pickle format, through candle's pickle reader) or `.safetensors`, with the
//! `_orig_mod.` prefix that `torch.compile` adds stripped.

use candle_core::{Device, Result, Tensor};
use std::collections::HashMap;
use std::path::Path;

const COMPILE_PREFIX: &str = "_orig_mod.";

pub fn load_state_dict(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    let named = |e: candle_core::Error| candle_core::Error::msg(format!("{}: {e}", path.display()));
    let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
    let entries: Vec<(String, Tensor)> = if is_safetensors {
        candle_core::safetensors::load(path, device)
            .map_err(named)?
            .into_iter()
            .collect()
    } else {
        candle_core::pickle::read_all(path)
            .map_err(named)?
            .into_iter()
            .map(|(k, t)| t.to_device(device).map(|t| (k, t)))
            .collect::<Result<_>>()?
    };
    Ok(entries
        .into_iter()
        .map(|(name, t)| {
            (
                name.strip_prefix(COMPILE_PREFIX)
                    .map(String::from)
                    .unwrap_or(name),
                t,
            )
        })
        .collect())
}

/// Writes tensors as safetensors at `path` (callers that need atomicity write to a temporary
/// path and rename).
pub fn write(path: &Path, tensors: &[(String, Tensor)]) -> Result<()> {
    let map: HashMap<String, Tensor> = tensors.iter().cloned().collect();
    candle_core::safetensors::save(&map, path)
        .map_err(|e| candle_core::Error::msg(format!("{}: {e}", path.display())))
}
