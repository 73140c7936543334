//! A preset in TOML and `--set` overrides, resolved for a task and model, then turned into
//! an architecture for a small dataset shape. The input is the TOML text, then each override,
//! separated by NUL bytes; the first byte picks the task and model.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let mut parts = text.split('\0');
    let toml = parts.next().unwrap_or_default();
    let overrides: Vec<String> = parts.map(String::from).collect();
    let tasks = harness::config::TASKS;
    let models = harness::config::MODELS;
    let task = tasks[(pick & 0x0f) as usize % tasks.len()];
    let model = models[(pick >> 4) as usize % models.len()];
    if let Ok(preset) = harness::config::Preset::parse("fuzz", toml) {
        if let Ok(cfg) = preset.resolve(task, model, &overrides) {
            if let Ok(arch) = cfg.model_config(81, 11, 1) {
                let _ = cfg.total_steps(1000, 1.0);
                let _ = models::flops::step_flops(&arch, cfg.kind());
            }
        }
    }
});
