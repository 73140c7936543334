/// Training allocates and frees activation-sized buffers thousands of times a step; the
/// system allocator hands large ones back to the kernel each time (page faults, zeroing),
/// mimalloc keeps them. The count of live bytes is what `harness plan --measure` reads.
#[global_allocator]
static ALLOCATOR: harness::run::heap::Counting<mimalloc::MiMalloc> =
    harness::run::heap::Counting(mimalloc::MiMalloc);

fn main() -> std::process::ExitCode {
    // SAFETY: sets a process-wide allocator option, before any thread is started.
    unsafe {
        libmimalloc_sys::mi_option_set(harness::run::heap::MI_OPTION_PURGE_DELAY, -1);
    }
    // candle's element-wise ops have a pool of their own, whose workers would spin beside the
    // batch shards' (`models::trainer::cpu_batch_shards`) and serialise them on its one lock:
    // the shards are the CPU's parallelism, so candle's ops run on the thread that calls them.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: before any thread is started.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    // Piping into `head` must end the program quietly, as it does for other Unix tools,
    // instead of a panic on the broken pipe.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    match harness::run(std::env::args_os()) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
