//! The launched command's standard output and error: passed through to the terminal as they
//! come, kept in local files, and sent to the run's artifacts (`cairn/run/stdout.log`,
//! `cairn/run/stderr.log`) while the command runs, every [`UPLOAD_EVERY`] when they grew, and
//! once more at the end.
//!
//! Each upload sends the whole file again, replacing the previous one: MLflow's artifact API has
//! no append, and a file that is only complete at the end could not be followed in the UI.
//! The versions it replaces are unreferenced blobs that `cairn gc` collects. So that a long,
//! chatty command does not re-send its log quadratically, a log is re-sent only once the time
//! since its last upload would have sent that upload at [`RESEND_BUDGET`]: a log of a few
//! megabytes still follows every few seconds, one of a gigabyte about every hour, and re-sending
//! costs the budget plus the log's own growth rate, never more (see [`resend_due`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cli::tracking::Tracking;

/// How often a growing log is sent again.
pub const UPLOAD_EVERY: Duration = Duration::from_secs(5);
/// The upload rate that re-sending a growing log may use, in bytes per second of run time.
pub const RESEND_BUDGET: u64 = 256 * 1024;
/// Where the logs go among the run's artifacts.
pub const STDOUT_ARTIFACT: &str = "cairn/run/stdout.log";
pub const STDERR_ARTIFACT: &str = "cairn/run/stderr.log";

/// One captured stream: its local file and how many bytes it holds.
struct Stream {
    artifact: &'static str,
    file: PathBuf,
    written: Arc<AtomicU64>,
}

/// The two streams of one command and the task that uploads them.
pub struct Logs {
    streams: Arc<Vec<Stream>>,
    pumps: Vec<JoinHandle<anyhow::Result<()>>>,
    stop: watch::Sender<bool>,
    uploader: JoinHandle<()>,
    tracking: Tracking,
    artifact_uri: String,
    _dir: tempfile::TempDir,
}

impl Logs {
    /// Starts copying `stdout` and `stderr` to the terminal and to local files, and uploading.
    /// With `stdout_to_stderr` the command's output is shown on standard error, leaving standard
    /// output to the caller (`cairn reproduce --json`).
    pub fn start(
        tracking: Tracking,
        artifact_uri: String,
        stdout: impl AsyncRead + Unpin + Send + 'static,
        stderr: impl AsyncRead + Unpin + Send + 'static,
        stdout_to_stderr: bool,
    ) -> anyhow::Result<Logs> {
        let dir = tempfile::Builder::new().prefix("cairn-run-logs-").tempdir()?;
        let stream = |artifact: &'static str, name: &str| Stream {
            artifact,
            file: dir.path().join(name),
            written: Arc::new(AtomicU64::new(0)),
        };
        let streams = Arc::new(vec![stream(STDOUT_ARTIFACT, "stdout.log"), stream(STDERR_ARTIFACT, "stderr.log")]);
        let (file, written) = (streams[0].file.clone(), streams[0].written.clone());
        let first = if stdout_to_stderr {
            tokio::spawn(pump(
                stdout,
                Box::new(tokio::io::stderr()) as Box<dyn AsyncWrite + Unpin + Send>,
                file,
                written,
            ))
        } else {
            tokio::spawn(pump(stdout, Box::new(tokio::io::stdout()), file, written))
        };
        let pumps = vec![
            first,
            tokio::spawn(pump(stderr, tokio::io::stderr(), streams[1].file.clone(), streams[1].written.clone())),
        ];
        let (stop, stopped) = watch::channel(false);
        let uploader =
            tokio::spawn(upload_while_running(tracking.clone(), artifact_uri.clone(), streams.clone(), stopped));
        Ok(Logs { streams, pumps, stop, uploader, tracking, artifact_uri, _dir: dir })
    }

    /// Waits for both streams to end (the command and anything it started closed them), then
    /// uploads the complete logs.
    pub async fn finish(self) -> anyhow::Result<()> {
        for pump in self.pumps {
            pump.await.context("log copy task")??;
        }
        let _ = self.stop.send(true);
        let _ = self.uploader.await;
        for stream in self.streams.iter() {
            let data = tokio::fs::read(&stream.file).await.unwrap_or_default();
            self.tracking.upload_artifact(&self.artifact_uri, stream.artifact, data).await?;
        }
        Ok(())
    }
}

/// Copies one stream to the terminal and to its file, counting bytes.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut echo: impl AsyncWrite + Unpin,
    file: PathBuf,
    written: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let mut out = tokio::fs::File::create(&file).await.with_context(|| format!("creating {}", file.display()))?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        // The terminal may be gone (a closed pipe); the log file still gets everything.
        let _ = echo.write_all(&buf[..n]).await;
        let _ = echo.flush().await;
        out.write_all(&buf[..n]).await?;
        out.flush().await?;
        written.fetch_add(n as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Sends each log again whenever it grew, until told to stop. A failed upload is retried at the
/// next tick: the final upload is the one that must succeed.
async fn upload_while_running(
    tracking: Tracking,
    artifact_uri: String,
    streams: Arc<Vec<Stream>>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut sent = vec![0u64; streams.len()];
    let mut last_upload = vec![Instant::now(); streams.len()];
    loop {
        tokio::select! {
            _ = tokio::time::sleep(UPLOAD_EVERY) => {}
            _ = stopped.changed() => return,
        }
        for (i, stream) in streams.iter().enumerate() {
            let now = stream.written.load(Ordering::Relaxed);
            if now == sent[i] || !resend_due(sent[i], last_upload[i].elapsed()) {
                continue;
            }
            let Ok(data) = tokio::fs::read(&stream.file).await else { continue };
            let len = data.len() as u64;
            match tracking.upload_artifact(&artifact_uri, stream.artifact, data).await {
                Ok(()) => {
                    sent[i] = len;
                    last_upload[i] = Instant::now();
                }
                Err(e) => tracing::warn!(error = format!("{e:#}"), artifact = stream.artifact, "log upload failed"),
            }
        }
    }
}

/// Whether a log whose last upload was `last_sent` bytes, `elapsed` ago, may be sent again: when
/// at least [`UPLOAD_EVERY`] has passed and sending `last_sent` bytes at [`RESEND_BUDGET`] would
/// have taken no longer than `elapsed`. The interval grows with the log, so the uploads of a log
/// growing at any steady rate form a geometric series: all of them together send a bounded
/// multiple of its final size, where a fixed interval sends the square of it.
pub fn resend_due(last_sent: u64, elapsed: Duration) -> bool {
    let at_budget = Duration::from_secs_f64(last_sent as f64 / RESEND_BUDGET as f64);
    elapsed >= UPLOAD_EVERY.max(at_budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_logs_follow_at_the_base_interval() {
        assert!(!resend_due(10_000, Duration::from_secs(4)));
        assert!(resend_due(10_000, UPLOAD_EVERY));
        assert!(resend_due(RESEND_BUDGET * 5, UPLOAD_EVERY));
    }

    #[test]
    fn large_logs_wait_in_proportion_to_their_size() {
        let gigabyte = 1 << 30;
        assert!(!resend_due(gigabyte, Duration::from_secs(60)));
        assert!(resend_due(gigabyte, Duration::from_secs(gigabyte / RESEND_BUDGET)));
    }

    /// Simulates the uploader's ticks for a command printing a steady 1 MB/s for an hour and
    /// counts what it sends: a bounded multiple of the log, not its square.
    #[test]
    fn an_hour_of_steady_output_is_resent_a_bounded_number_of_times() {
        let (rate, hour) = (1_000_000u64, 3_600u64);
        let (mut sent_bytes, mut uploads, mut last, mut last_size) = (0u64, 0u32, 0u64, 0u64);
        let mut t = UPLOAD_EVERY.as_secs();
        while t <= hour {
            let size = rate * t;
            if resend_due(last_size, Duration::from_secs(t - last)) {
                sent_bytes += size;
                uploads += 1;
                last = t;
                last_size = size;
            }
            t += UPLOAD_EVERY.as_secs();
        }
        let final_size = rate * hour;
        assert!(sent_bytes < 8 * final_size, "re-sent {sent_bytes} bytes for a {final_size}-byte log");
        // Followed all along: uploads keep coming, and the newest one is never far behind.
        assert!(uploads >= 5, "the log must still be followed: {uploads} uploads in an hour");
        assert!(last_size * 5 > final_size, "the newest upload holds {last_size} of {final_size} bytes");
        // A fixed 5-second interval would have sent about 360 times the final size.
    }
}
