/// Training allocates and frees activation-sized buffers thousands of times a step; the
/// system allocator hands large ones back to the kernel each time (page faults, zeroing),
/// mimalloc keeps them. The count of live bytes is what `harness plan --measure` reads.
#[global_allocator]
static ALLOCATOR: harness::heap::Counting<mimalloc::MiMalloc> =
    harness::heap::Counting(mimalloc::MiMalloc);

/// `mi_option_purge_delay` in `mimalloc.h` (v2 and v3): -1 never returns freed pages to the
/// kernel, which would zero them again on the next step's first touch.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // SAFETY: sets a process-wide allocator option, before any thread is started.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1);
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
