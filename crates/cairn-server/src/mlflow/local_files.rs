//! The artifact routes' view of `file://` locations inside the local default artifact root
//! (`crate::local_folder` decides what may be read): directory entries in the shape of
//! `artifacts::directory_entries`, and files sent as attachments. Outside that root both answer
//! nothing, and the routes serve only the files the server holds.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::stream;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

use cairn_artifacts::RelativePath;

use crate::AppState;
use crate::error::{ApiError, ApiResult};
use crate::local_folder::{Refused, Resolved};
use crate::mlflow::download::as_attachment;

/// Bytes read from disk per chunk of a response.
const CHUNK: usize = 64 * 1024;

fn refused(e: Refused) -> ApiError {
    match e {
        Refused::Escapes(_) => ApiError::from(cairn_core::Error::invalid(e.to_string())),
        Refused::Io(_) => ApiError::from(cairn_core::Error::internal(e)),
    }
}

async fn resolve(state: &AppState, location: &str, path: &RelativePath) -> ApiResult<Option<std::path::PathBuf>> {
    let Some(folder) = state.local_folder.clone() else { return Ok(None) };
    let (location, path) = (location.to_owned(), path.clone());
    let resolved = tokio::task::spawn_blocking(move || folder.resolve(&location, &path))
        .await
        .map_err(cairn_core::Error::internal)?
        .map_err(refused)?;
    Ok(match resolved {
        Resolved::Found(real) => Some(real),
        Resolved::Outside | Resolved::Missing => None,
    })
}

/// The entries of directory `dir` of `location` on disk, as `{path, is_dir, file_size}` with
/// paths relative to `dir`; empty when the location is not read.
pub(super) async fn entries(state: &AppState, location: &str, dir: &RelativePath) -> ApiResult<Vec<Value>> {
    let (Some(folder), Some(real)) = (state.local_folder.clone(), resolve(state, location, dir).await?) else {
        return Ok(Vec::new());
    };
    let listed = tokio::task::spawn_blocking(move || folder.list(&real))
        .await
        .map_err(cairn_core::Error::internal)?
        .map_err(refused)?;
    Ok(listed
        .into_iter()
        .map(|e| {
            if e.is_dir {
                json!({ "path": e.name, "is_dir": true })
            } else {
                json!({ "path": e.name, "is_dir": false, "file_size": e.size })
            }
        })
        .collect())
}

/// `entries` added to `held` (the server's own files), sorted and without duplicates.
pub(super) async fn merged(
    state: &AppState,
    location: &str,
    dir: &RelativePath,
    mut held: Vec<Value>,
) -> ApiResult<Vec<Value>> {
    let on_disk = entries(state, location, dir).await?;
    if on_disk.is_empty() {
        return Ok(held);
    }
    held.extend(on_disk);
    held.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    held.dedup_by(|a, b| a["path"] == b["path"]);
    Ok(held)
}

/// File `path` of `location` on disk as an attachment, if the location is read and the file
/// exists.
pub(super) async fn attachment(state: &AppState, location: &str, path: &RelativePath) -> ApiResult<Option<Response>> {
    let Some(real) = resolve(state, location, path).await? else { return Ok(None) };
    let file = tokio::fs::File::open(&real).await.map_err(cairn_core::Error::internal)?;
    let meta = file.metadata().await.map_err(cairn_core::Error::internal)?;
    if !meta.is_file() {
        return Ok(None);
    }
    // Read chunk by chunk, so a large file is never held in memory.
    let body = stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    if let Ok(length) = HeaderValue::from_str(&meta.len().to_string()) {
        response.headers_mut().insert(header::CONTENT_LENGTH, length);
    }
    as_attachment(&mut response, path.as_str());
    Ok(Some(response))
}
