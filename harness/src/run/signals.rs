//! Interruptions: SIGINT (Ctrl-C), SIGTERM and SIGUSR1 (Slurm's warning before a kill) set
//! one process-wide flag that every training loop, a compare's queue of runs and a sweep's
//! executor read between steps and runs.

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

static HANDLER: std::sync::Once = std::sync::Once::new();

/// Whether SIGINT, SIGTERM or SIGUSR1 arrived since the first run of this process started.
/// Never reset: a signal that lands between two runs of a compare or a sweep, or during an
/// evaluation, still stops everything that follows.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// SIGINT (Ctrl-C), SIGTERM and SIGUSR1 (what Slurm sends before a kill) ask the loop to
/// save and stop; a second one of the same signal kills at once. Installed once per process.
pub fn install_interrupt_handler() {
    HANDLER.call_once(install_signal_handlers);
}

#[cfg(unix)]
fn install_signal_handlers() {
    extern "C" fn on_signal(signal: libc::c_int) {
        INTERRUPTED.store(true, Ordering::SeqCst);
        // SAFETY: signal() is async-signal-safe; restoring the default makes a second
        // signal terminate the process.
        unsafe {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGUSR1] {
        // SAFETY: installs a handler that only stores an atomic and calls signal().
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

#[cfg(not(unix))]
fn install_signal_handlers() {}
