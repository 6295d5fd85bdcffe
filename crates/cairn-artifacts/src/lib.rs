// The crate documentation is the README, so the wiring guide is written once.
#![doc = include_str!("../README.md")]

mod blob_store;
mod destination;
mod digest;
mod error;
mod file_stream;
mod gate;
mod parts;
mod path;
mod staging;

pub use blob_store::{BlobInfo, BlobRead, BlobStore, BlobStoreConfig, ByteRange, StagedBlob};
pub use destination::{Destination, S3Settings};
pub use digest::{BlobRef, Digest, HASH_ALGORITHM};
pub use error::{ArtifactError, Result, SourceError};
pub use gate::{CollectionLock, PinnedBlob};
pub use parts::{COMPLETING_STALE, Completion, StagedPart, UploadSession};
pub use path::{PathError, RelativePath, sanitize_artifact_path};
