//! Configuration loading: any text must give a `Config` or a `ConfigError`, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = mcp_sts::config::Config::from_toml(text);
    }
});
