//! A test hook: crash the process at a named point, to prove that every stage survives `kill -9`.
//!
//! `CASSETTE_FAULT_KILL_AT=<point>:<n>` makes the `n`th pass through [`point`]`(<point>)` call
//! `std::process::abort()`: no destructor runs, nothing is flushed, the flock is dropped by the
//! kernel, exactly as after `kill -9`. The fault-injection tests set it; when it is unset a pass
//! costs one load of an initialized `OnceLock`. The points are listed in ARCHITECTURE.md.
//!
//! `CASSETTE_FAULT_PAUSE_AT=<point>:<ms>` makes every pass through that point sleep `ms`
//! milliseconds: a test that watches a job run (the dashboard's) slows it down with it, since a
//! small backup is over before a page can poll it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the point to crash at.
pub const FAULT_ENV: &str = "CASSETTE_FAULT_KILL_AT";

struct Armed {
    point: String,
    nth: u64,
    passes: AtomicU64,
}

fn armed() -> Option<&'static Armed> {
    static ARMED: OnceLock<Option<Armed>> = OnceLock::new();
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(FAULT_ENV).ok()?;
            let (point, nth) = match spec.rsplit_once(':') {
                Some((p, n)) => (p.to_owned(), n.parse().ok()?),
                None => (spec, 1),
            };
            Some(Armed { point, nth, passes: AtomicU64::new(0) })
        })
        .as_ref()
}

/// The environment variable naming a point to pause at, and for how long.
pub const PAUSE_ENV: &str = "CASSETTE_FAULT_PAUSE_AT";

fn pause() -> Option<&'static (String, std::time::Duration)> {
    static PAUSE: OnceLock<Option<(String, std::time::Duration)>> = OnceLock::new();
    PAUSE
        .get_or_init(|| {
            let spec = std::env::var(PAUSE_ENV).ok()?;
            let (point, ms) = spec.rsplit_once(':')?;
            Some((point.to_owned(), std::time::Duration::from_millis(ms.parse().ok()?)))
        })
        .as_ref()
}

/// Marks a crash point: aborts the process if [`FAULT_ENV`] names it and this is its `n`th pass
/// (and sleeps there if [`PAUSE_ENV`] names it).
pub fn point(name: &str) {
    if let Some((point, pause)) = pause()
        && point == name
    {
        std::thread::sleep(*pause);
    }
    if let Some(a) = armed()
        && a.point == name
        && a.passes.fetch_add(1, Ordering::SeqCst) + 1 == a.nth
    {
        eprintln!("cassette: {FAULT_ENV}={name}:{}: aborting here (test hook)", a.nth);
        std::process::abort();
    }
}
