//! Command output on stdout. `println!` panics when the reader has gone away
//! (`mcp-sts keys rotate --now | head -2`); here the command ends quietly instead,
//! with the status a Unix tool killed by SIGPIPE has (141), and any other write
//! error is one line on stderr.

use std::io::Write;

/// Exit status of a command whose reader closed the pipe: 128 + SIGPIPE.
const BROKEN_PIPE_STATUS: i32 = 141;

/// Write one line of command output.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        failed(&error);
    }
}

/// Flush what is written; a closed reader ends the command as [`line`] does.
pub fn flush() {
    if let Err(error) = std::io::stdout().flush() {
        failed(&error);
    }
}

fn failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(BROKEN_PIPE_STATUS);
    }
    eprintln!("mcp-sts: cannot write output: {error}");
    std::process::exit(1)
}

/// `println!` for command output, through [`line`].
#[macro_export]
macro_rules! say {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
