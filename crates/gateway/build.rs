//! Embeds the npm `socket.io-client` browser bundle for the console's "try it" pane.
//!
//! The bundle comes from `console/package-lock.json` (installed with `npm ci` into
//! `console/node_modules` when npm is there and it is missing). Without npm the
//! gateway still builds: the console then says that Socket.IO dialects cannot be
//! tried from the browser, and the build prints a warning saying how to fix it.

use std::path::Path;
use std::process::Command;

const BUNDLE: &str = "console/node_modules/socket.io-client/dist/socket.io.min.js";

fn main() {
    println!("cargo:rerun-if-changed=console/package-lock.json");
    println!("cargo:rerun-if-changed={BUNDLE}");
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let target = Path::new(&out).join("socket.io.min.js");
    if !Path::new(BUNDLE).exists() {
        let installed = Command::new("npm")
            .args([
                "ci",
                "--prefix",
                "console",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !installed {
            println!("cargo:warning=the console's socket.io-client bundle is missing (no npm?): run `npm ci --prefix crates/gateway/console` and rebuild to try Socket.IO dialects from /console");
        }
    }
    let text = std::fs::read_to_string(BUNDLE).unwrap_or_else(|_| {
        "window.CHAT_CONSOLE_NO_SOCKET_IO = 'this build has no socket.io-client bundle: run npm ci --prefix crates/gateway/console and rebuild';\n".to_string()
    });
    std::fs::write(&target, text).expect("OUT_DIR is writable");
}
