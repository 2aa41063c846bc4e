//! Link options of the release binary on Linux/glibc x86_64 (docs/performance.md, "Binary
//! layout"); nothing for debug builds, tests or other targets.
//!
//! - `--symbol-ordering-file=link/symbol-order.txt`: the functions `mlmon serve` runs (listed
//!   by `scripts/link_order.py`, `make link-order`) are laid out first and together, so the
//!   64 KiB the kernel maps around each page fault of `.text` hold code that runs rather
//!   than code that never does. Names the build no longer has are skipped.
//! - `-z pack-relative-relocs` (DT_RELR): the 40 000 relative relocations of a PIE in 13 KB
//!   instead of 970 KB that the dynamic loader reads at every start. Needs glibc ≥ 2.36 where
//!   the binary runs; it is applied only when the build host's glibc is that recent.
//!
//! Both are linker options of LLD, the default linker of Rust ≥ 1.90 on
//! `x86_64-unknown-linux-gnu`; with another linker or an older toolchain nothing is added.
//! `MLMON_LINK_LAYOUT=0` turns both off.

use std::process::Command;

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=link/symbol-order.txt");
    println!("cargo::rerun-if-env-changed=MLMON_LINK_LAYOUT");
    println!("cargo::rerun-if-env-changed=RUSTFLAGS");
    println!("cargo::rerun-if-env-changed=CARGO_ENCODED_RUSTFLAGS");
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    if env("PROFILE") != "release"
        || env("MLMON_LINK_LAYOUT") == "0"
        || env("TARGET") != "x86_64-unknown-linux-gnu"
        || !default_linker_is_lld()
    {
        return;
    }
    // A linker chosen in the flags (e.g. -C linker=... or -C link-arg=-fuse-ld=bfd) may not
    // know these options.
    let flags = env("CARGO_ENCODED_RUSTFLAGS");
    if flags.contains("linker") || flags.contains("fuse-ld") {
        return;
    }
    let order = std::path::Path::new(&env("CARGO_MANIFEST_DIR")).join("link/symbol-order.txt");
    if order.is_file() {
        println!(
            "cargo::rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo::rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    if glibc_at_least(2, 36) {
        println!("cargo::rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Rust 1.90 made its bundled LLD the default linker of x86_64-unknown-linux-gnu.
fn default_linker_is_lld() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(release) = text.lines().find_map(|l| l.strip_prefix("release: ")) else {
        return false;
    };
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}

/// The build host's glibc, from `getconf GNU_LIBC_VERSION` ("glibc 2.36").
fn glibc_at_least(major: u32, minor: u32) -> bool {
    let Ok(out) = Command::new("getconf").arg("GNU_LIBC_VERSION").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(version) = text.split_whitespace().nth(1) else {
        return false;
    };
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (major, minor)
}
