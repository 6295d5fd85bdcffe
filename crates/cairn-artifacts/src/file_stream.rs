//! Reading local blob files in large chunks.
//!
//! `object_store` streams a local file in 8 KiB reads, one blocking-pool task each, which caps a
//! download near 200 MB/s. Blobs are read sequentially and whole, so larger reads cost nothing in
//! memory that matters (one chunk per download in flight) and double the throughput.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

use crate::error::{ArtifactError, Result};

/// Bytes per read.
const CHUNK: u64 = 256 * 1024;

/// Streams `range` of an open file.
pub(crate) fn file_stream(file: File, range: Range<u64>) -> BoxStream<'static, Result<Bytes>> {
    let state = (Some(file), range.start, range.end, false);
    stream::try_unfold(state, |(file, position, end, positioned)| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        if position >= end {
            return Ok(None);
        }
        let len = (end - position).min(CHUNK) as usize;
        let (file, chunk) = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            if !positioned {
                file.seek(SeekFrom::Start(position))?;
            }
            let mut chunk = vec![0; len];
            file.read_exact(&mut chunk)?;
            Ok((file, chunk))
        })
        .await
        .map_err(|join| ArtifactError::Io(std::io::Error::other(join)))??;
        let next = (Some(file), position + len as u64, end, true);
        Ok(Some((Bytes::from(chunk), next)))
    })
    .boxed()
}
