//! A spinner with the elapsed time for work that takes seconds to minutes; indicatif draws
//! nothing when stderr is not a terminal, so logs and tests stay clean.

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

pub struct Spinner(ProgressBar);

impl Spinner {
    pub fn start(message: String) -> Self {
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(150));
        Spinner(bar)
    }

    pub fn set_message(&self, message: String) {
        self.0.set_message(message);
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
