fn main() -> std::process::ExitCode {
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
