//! Lets printing subcommands end quietly when their reader goes away (`gs_livo eval ... | head`).
//!
//! Rust ignores SIGPIPE, so a write to a closed pipe fails and `println!` panics on it. A command
//! line tool is expected to stop silently instead, as the shell's own tools do: the default
//! action of SIGPIPE ends the process without a message.

/// Restores SIGPIPE's default action (Unix only). Not for the long-running node, whose sockets
/// must report a closed peer as an error, not end the process.
pub fn end_quietly_on_closed_pipe() {
    #[cfg(unix)]
    {
        // <signal.h>: SIGPIPE is 13 on Linux and the BSDs; SIG_DFL is 0.
        const SIGPIPE: i32 = 13;
        const SIG_DFL: usize = 0;
        extern "C" {
            fn signal(signum: i32, handler: usize) -> usize;
        }
        // SAFETY: setting a signal's disposition to its default; called before other threads start.
        unsafe {
            signal(SIGPIPE, SIG_DFL);
        }
    }
}
