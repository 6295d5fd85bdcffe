//! Progress for long subcommands (`audit verify`, `artifacts verify`, `gc`): a bar with rate and
//! time left on a terminal, nothing on a pipe or with `--json`, so scripts read one result. The
//! first Ctrl-C asks the work to stop at its next safe point and print what it did; a second one
//! exits at once.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use cairn_core::progress::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The exit code of a command stopped by Ctrl-C, as shells report SIGINT.
pub const INTERRUPTED: u8 = 130;

/// A progress bar on stderr, and the Ctrl-C flag.
pub struct TerminalProgress {
    bar: ProgressBar,
    cancelled: Arc<AtomicBool>,
    done: AtomicU64,
    total: AtomicU64,
}

impl TerminalProgress {
    /// Starts listening for Ctrl-C; the bar is drawn only when `quiet` is false and stderr is a
    /// terminal.
    pub fn start(quiet: bool) -> Arc<Self> {
        let target = if quiet || !std::io::stderr().is_terminal() {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let flag = cancelled.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                flag.store(true, Ordering::SeqCst);
                eprintln!("\nstopping at the next safe point (Ctrl-C again to quit at once)");
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(i32::from(INTERRUPTED));
                }
            }
        });
        Arc::new(TerminalProgress {
            bar: ProgressBar::with_draw_target(None, target),
            cancelled,
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
        })
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Whether Ctrl-C was pressed.
    pub fn was_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Units done in the current phase, and its total (0 when unknown), for a summary.
    pub fn counts(&self) -> (u64, u64) {
        (self.done.load(Ordering::SeqCst), self.total.load(Ordering::SeqCst))
    }
}

impl Progress for TerminalProgress {
    fn phase(&self, name: &str, total: Option<u64>) {
        self.done.store(0, Ordering::SeqCst);
        self.total.store(total.unwrap_or(0), Ordering::SeqCst);
        self.bar.reset();
        self.bar.set_position(0);
        let style = match total {
            Some(total) => {
                self.bar.set_length(total);
                ProgressStyle::with_template("{msg}: {wide_bar} {human_pos}/{human_len} {per_sec} eta {eta}")
            }
            None => {
                self.bar.unset_length();
                ProgressStyle::with_template("{spinner} {msg}: {human_pos} {per_sec} {elapsed}")
            }
        };
        if let Ok(style) = style {
            self.bar.set_style(style);
        }
        self.bar.set_message(name.to_owned());
        self.bar.enable_steady_tick(Duration::from_millis(200));
    }

    fn advance(&self, units: u64) {
        self.done.fetch_add(units, Ordering::SeqCst);
        self.bar.inc(units);
    }

    fn cancelled(&self) -> bool {
        self.was_cancelled()
    }
}
