//! Measures streamed put / get / verify throughput and peak memory on a local destination.
//!
//! ```text
//! cargo run --release -p cairn-artifacts --example throughput -- [SIZE_MB] [DESTINATION]
//! ```
//! SIZE_MB defaults to 1024; DESTINATION defaults to a fresh temporary directory (removed after).
//! The content is one random 1 MiB block repeated, handed over without copying, so the numbers
//! are the store's (hashing, disk writes, fsync), not the generator's.

use std::time::Instant;

use bytes::Bytes;
use cairn_artifacts::{BlobStore, BlobStoreConfig, S3Settings, SourceError};
use futures::{StreamExt, stream};

const MIB: u64 = 1024 * 1024;

/// A `/proc/self/status` field in MiB (`VmRSS`, `VmHWM`), or 0 where there is no procfs.
fn status_mib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

fn random_block() -> Bytes {
    let mut state =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1;
    let mut block = Vec::with_capacity(MIB as usize);
    while block.len() < MIB as usize {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        block.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(block)
}

fn rate(bytes: u64, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64();
    format!("{:.1} s, {:.0} MB/s", secs, bytes as f64 / MIB as f64 / secs)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size_mb: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1024);
    let scratch = tempfile::tempdir()?;
    let destination = args.next().unwrap_or_else(|| scratch.path().to_string_lossy().into_owned());
    let store = BlobStore::open_with(&destination, &S3Settings::from_env(), BlobStoreConfig::default())?;
    let total = size_mb * MIB;
    println!("destination {destination}, {size_mb} MiB, default config (8 MiB parts, fsync on)");
    println!("RSS at start: {} MiB", status_mib("VmRSS:"));

    let block = random_block();
    let body = stream::iter((0..size_mb).map(move |_| Ok::<_, SourceError>(block.clone())));
    let started = Instant::now();
    let blob = store.put_stream(body).await?;
    println!("put    {}  -> sha256 {}", rate(total, started), blob.digest);
    println!("RSS after put: {} MiB, peak so far {} MiB", status_mib("VmRSS:"), status_mib("VmHWM:"));

    let started = Instant::now();
    let mut read = store.get(&blob.digest, None).await?;
    let mut received = 0u64;
    while let Some(chunk) = read.stream.next().await {
        received += chunk?.len() as u64;
    }
    assert_eq!(received, total, "read back every byte");
    println!("get    {}", rate(total, started));

    let started = Instant::now();
    let intact = store.verify(&blob.digest).await?;
    println!("verify {}  -> {}", rate(total, started), if intact { "intact" } else { "CORRUPT" });
    println!("peak RSS (VmHWM): {} MiB", status_mib("VmHWM:"));
    Ok(())
}
