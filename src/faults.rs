//! Test-only fault injection (design §4.7, "Crash points"): with the `test-hooks` feature,
//! `RLEWATCH_TEST_CRASH_AT=STEP[:N]` makes the daemon SIGKILL itself the
//! Nth time (default: the first) any file reaches the named step of its
//! life (see [`STEPS`]), so the crash tests can stop it at exactly that
//! point. Without the feature [`reached`] is empty and the variable is
//! never read. `RLEWATCH_TEST_CORRUPT_TEMP` corrupts temporary archives
//! before verification ([`corrupt_temp`]). SIGUSR2 makes it SIGKILL itself
//! ([`arm`]).

/// The steps of a file's life, in order: claimed (renamed into the claim
/// folder), encoded (into a temporary file), synced (temporary file
/// fsynced), verified, published (renamed into place, folder fsynced),
/// recorded (ledger entry durable), filed (original moved, deleted or put
/// back).
pub const STEPS: &[&str] = &[
    "claimed",
    "encoded",
    "synced",
    "verified",
    "published",
    "recorded",
    "filed",
];

/// Points inside a claim (design §4.7), for the power-loss test of the
/// claim itself: `claim-linked` (the claim folder has the file's new name,
/// not yet fsynced), `claim-unlinked` (the inbox name is gone, neither
/// folder fsynced since): the claim must survive a kill and a cut there.
pub const CLAIM_STEPS: &[&str] = &["claim-linked", "claim-unlinked"];

/// Marks that a file reached `step`.
#[cfg(feature = "test-hooks")]
pub fn reached(step: &str) {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU32, Ordering};
    static AT: OnceLock<Option<(String, u32)>> = OnceLock::new();
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let at = AT.get_or_init(|| {
        let v = std::env::var("RLEWATCH_TEST_CRASH_AT").ok()?;
        let (name, n) = v.split_once(':').unwrap_or((&v, "1"));
        Some((name.to_string(), n.parse().unwrap_or(1)))
    });
    if let Some((name, n)) = at
        && name == step
        && COUNT.fetch_add(1, Ordering::SeqCst) + 1 == *n
    {
        die();
    }
}

/// SIGKILLs this process, wherever its other threads are: a claim, a
/// move and each fsync must survive a kill and then a power cut at any
/// moment (design §4.7, "Power loss").
#[cfg(feature = "test-hooks")]
fn die() {
    // SAFETY: kill on our own pid.
    unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
}

/// With the `test-hooks` feature: SIGUSR2 makes the daemon SIGKILL itself
/// ([`die`]), for tests that kill at random moments and then cut the
/// power.
#[cfg(feature = "test-hooks")]
pub fn arm() {
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([libc::SIGUSR2]) {
        let _ = std::thread::Builder::new()
            .name("test-kill".into())
            .spawn(move || {
                if signals.forever().next().is_some() {
                    die();
                }
            });
    }
}

/// No-op without `test-hooks`.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn arm() {}

/// With `RLEWATCH_TEST_LINK_CLAIMS` set (and the `test-hooks` feature):
/// claim by a hard link on a FUSE filesystem too (design §4.7), for the
/// power-loss filesystem, where this daemon is the only one.
#[cfg(feature = "test-hooks")]
pub fn link_claims_forced() -> bool {
    std::env::var_os("RLEWATCH_TEST_LINK_CLAIMS").is_some()
}

/// False without `test-hooks`.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn link_claims_forced() -> bool {
    false
}

/// With `RLEWATCH_TEST_CORRUPT_TEMP` set (and the `test-hooks` feature),
/// flips one bit of every temporary archive after it is fsynced, before
/// it is verified: verification must refuse it.
#[cfg(feature = "test-hooks")]
pub fn corrupt_temp(file: &std::fs::File) {
    use std::os::unix::fs::FileExt;
    if std::env::var_os("RLEWATCH_TEST_CORRUPT_TEMP").is_none() {
        return;
    }
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return;
    };
    let mut byte = [0u8];
    if len > 0 && file.read_exact_at(&mut byte, len - 1).is_ok() {
        byte[0] ^= 0x01;
        let _ = file.write_all_at(&byte, len - 1);
    }
}

/// No-op without `test-hooks`.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn corrupt_temp(_file: &std::fs::File) {}

/// Marks that a file reached `step` (no-op without `test-hooks`).
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn reached(_step: &str) {}
