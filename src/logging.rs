//! The binary's log output: `RUST_LOG`-style filtering to stderr, with each
//! log statement rate-limited.
//!
//! A statement that fires in a loop (a library logging every failed send to
//! an address that cannot be reached, every 10 ms) would otherwise flood the
//! log and the disk and hide everything else. [`RateLimit`] lets each
//! statement (each callsite) through [`BURST`] times per [`WINDOW`]; the rest
//! of that window is counted, and the next line that gets through is
//! preceded by one saying how many were suppressed. Statements that fire
//! less often than that are never touched.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing::callsite::Identifier;
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Registry, reload};

/// Lines one log statement may print per [`WINDOW`].
pub const BURST: u32 = 20;

/// The window [`BURST`] counts over.
pub const WINDOW: Duration = Duration::from_secs(10);

/// The filter used when `RUST_LOG` is not set.
pub const DEFAULT_FILTER: &str = "huddle=info,warn,rtc=error,rtc_ice=error,webrtc=error";

/// A log level or filter that cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "log level {spec:?} is not error, warn, info, debug, trace, off or a tracing filter like huddle=debug,webrtc=info: {detail}"
)]
pub struct BadLogLevel {
    /// What was given.
    pub spec: String,
    /// Why the filter refused it.
    pub detail: String,
}

/// The filter for `spec`: a bare level applies to huddle (other crates log
/// warnings and worse, as in [`DEFAULT_FILTER`]); anything else is a full
/// `tracing` filter.
///
/// # Errors
/// [`BadLogLevel`] when `spec` is neither.
pub fn filter_for(spec: &str) -> Result<EnvFilter, BadLogLevel> {
    let spec = spec.trim();
    let directives = match spec.to_ascii_lowercase().as_str() {
        level @ ("error" | "warn" | "info" | "debug" | "trace") => {
            format!("huddle={level},warn,rtc=error,rtc_ice=error,webrtc=error")
        }
        "off" | "none" => "off".to_owned(),
        _ => spec.to_owned(),
    };
    let bad = |detail: String| BadLogLevel {
        spec: spec.to_owned(),
        detail,
    };
    // A bare word would be taken as a target name ("debgu" logging
    // everything of a crate that does not exist): only levels are bare.
    if !directives.contains('=') && directives != "off" && !directives.starts_with("huddle=") {
        return Err(bad(
            "not a level; a filter names its targets (target=level)".into(),
        ));
    }
    if directives.is_empty() {
        return Err(bad("empty".into()));
    }
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| bad(e.to_string()))
}

type Reload = reload::Handle<EnvFilter, Registry>;

/// The installed filter, to change at run time ([`set_level`]).
static FILTER: OnceLock<Reload> = OnceLock::new();

/// Installs the global subscriber: `level` (see [`filter_for`]), else
/// `RUST_LOG`, else [`DEFAULT_FILTER`]; formatted to stderr, rate-limited
/// per statement. A `level` that does not parse falls back the same way,
/// with a warning (the CLI checks it before).
pub fn init(level: Option<&str>) {
    let from_level = level.map(filter_for);
    let filter = match &from_level {
        Some(Ok(_)) | None => None,
        Some(Err(e)) => Some(e.to_string()),
    };
    let chosen = from_level
        .and_then(Result::ok)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| DEFAULT_FILTER.into());
    let (layer, handle) = reload::Layer::new(chosen);
    tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
        .with(RateLimit::default())
        .init();
    FILTER.set(handle).ok(); // init runs once per process
    if let Some(e) = filter {
        tracing::warn!("{e}; using RUST_LOG or the default");
    }
}

/// Changes what is logged from now on (seed `setLogLevel`): `spec` as for
/// [`filter_for`].
///
/// # Errors
/// [`BadLogLevel`] for a spec that does not parse, or when [`init`] was not
/// called in this process (logging belongs to the application then).
pub fn set_level(spec: &str) -> Result<(), BadLogLevel> {
    let filter = filter_for(spec)?;
    let handle = FILTER.get().ok_or_else(|| BadLogLevel {
        spec: spec.to_owned(),
        detail: "huddle's logging was not installed (logging::init) in this process".into(),
    })?;
    handle.reload(filter).map_err(|e| BadLogLevel {
        spec: spec.to_owned(),
        detail: e.to_string(),
    })
}

/// What [`Budget::take`] decided for one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Print it.
    Print,
    /// Print it, after saying that this many were suppressed before it.
    PrintAfterSuppressed(u64),
    /// Suppress it.
    Suppress,
}

/// One statement's allowance: [`BURST`] lines per [`WINDOW`].
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    window_start: Instant,
    printed: u32,
    suppressed: u64,
}

impl Budget {
    /// A fresh allowance starting at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            printed: 0,
            suppressed: 0,
        }
    }

    /// Takes one line at `now`.
    pub fn take(&mut self, now: Instant) -> Verdict {
        if now.saturating_duration_since(self.window_start) >= WINDOW {
            self.window_start = now;
            self.printed = 0;
        }
        if self.printed >= BURST {
            self.suppressed += 1;
            return Verdict::Suppress;
        }
        self.printed += 1;
        match std::mem::take(&mut self.suppressed) {
            0 => Verdict::Print,
            n => Verdict::PrintAfterSuppressed(n),
        }
    }
}

/// A layer that rate-limits every log statement (see the module docs).
#[derive(Default)]
pub struct RateLimit {
    budgets: Mutex<HashMap<Identifier, Budget>>,
}

impl<S: Subscriber> Layer<S> for RateLimit {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        let now = Instant::now();
        let metadata = event.metadata();
        let verdict = self
            .budgets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(metadata.callsite())
            .or_insert_with(|| Budget::new(now))
            .take(now);
        match verdict {
            Verdict::Print => true,
            Verdict::PrintAfterSuppressed(n) => {
                // Straight to stderr: logging from inside the subscriber
                // would come back here.
                writeln!(
                    std::io::stderr(),
                    "(log: {n} more lines from {} at {}:{} were suppressed, at most {BURST} per {WINDOW:?})",
                    metadata.target(),
                    metadata.file().unwrap_or("?"),
                    metadata.line().unwrap_or(0),
                )
                .ok(); // stderr gone: nothing to tell
                true
            }
            Verdict::Suppress => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_filters_parse_and_nonsense_is_refused() {
        for good in ["debug", "WARN", "off", "huddle=trace,webrtc=info", " info "] {
            assert!(filter_for(good).is_ok(), "{good:?}");
        }
        for bad in ["", "loud", "huddle=loud", "a=b=c"] {
            let e = filter_for(bad).expect_err(bad);
            assert!(e.to_string().contains("log level"), "{e}");
        }
    }

    #[test]
    fn a_burst_prints_then_the_rest_of_the_window_is_counted() {
        let t0 = Instant::now();
        let mut budget = Budget::new(t0);
        for _ in 0..BURST {
            assert_eq!(budget.take(t0), Verdict::Print);
        }
        for _ in 0..7 {
            assert_eq!(budget.take(t0 + Duration::from_secs(1)), Verdict::Suppress);
        }
        // A new window: the first line says what was suppressed.
        assert_eq!(budget.take(t0 + WINDOW), Verdict::PrintAfterSuppressed(7));
        assert_eq!(budget.take(t0 + WINDOW), Verdict::Print);
    }

    #[test]
    fn statements_have_their_own_budgets() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};

        /// Counts the events that reach it.
        struct Count(Arc<AtomicUsize>);
        impl<S: Subscriber> Layer<S> for Count {
            fn on_event(&self, _: &Event<'_>, _: Context<'_, S>) {
                self.0.fetch_add(1, Ordering::Relaxed);
            }
        }
        let seen = Arc::new(AtomicUsize::new(0));
        let subscriber = tracing_subscriber::registry()
            .with(Count(Arc::clone(&seen)))
            .with(RateLimit::default());
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..100 {
                tracing::error!("flooding");
            }
            tracing::error!("another statement");
        });
        assert_eq!(seen.load(Ordering::Relaxed), BURST as usize + 1);
    }
}
