//! Content digests: the identity of a blob.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest as _, Sha256};

use crate::error::ArtifactError;

/// The hash algorithm every blob is addressed by. It is part of each blob's storage key
/// (`blobs/sha256/...`) and of every [`BlobRef`], so a later algorithm can live beside it.
pub const HASH_ALGORITHM: &str = "sha256";

/// A SHA-256 digest. Displays (and parses) as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Parses 64 hex characters. Uppercase is accepted and normalised; anything else is refused,
    /// which also guarantees a digest can never smuggle a path separator into a storage key.
    pub fn parse(text: &str) -> Result<Self, ArtifactError> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| ArtifactError::InvalidDigest(text.to_owned()))?;
        Ok(Digest(bytes))
    }

    /// The digest of `data`, computed in one go (for small inputs and tests).
    pub fn of(data: &[u8]) -> Self {
        let mut hasher = Hasher::new();
        hasher.update(data);
        hasher.finish()
    }

    /// The lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = ArtifactError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Digest::parse(text)
    }
}

/// An incremental hasher that also counts bytes, so a streamed upload learns its digest and size
/// in the same pass.
#[derive(Clone, Default)]
pub(crate) struct Hasher {
    sha: Sha256,
    size: u64,
}

impl Hasher {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn update(&mut self, chunk: &[u8]) {
        self.sha.update(chunk);
        self.size += chunk.len() as u64;
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    pub(crate) fn finish(self) -> Digest {
        Digest(self.sha.finalize().into())
    }
}

/// What a stored blob is: how it was hashed, its digest and its length in bytes. This is what a
/// run manifest records for each artifact path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// Always [`HASH_ALGORITHM`]; recorded so manifests stay readable if another is added.
    pub algorithm: &'static str,
    /// The digest of the content.
    pub digest: Digest,
    /// The content's length in bytes.
    pub size: u64,
}

impl BlobRef {
    /// A reference to content with this digest and size, hashed with [`HASH_ALGORITHM`].
    pub fn new(digest: Digest, size: u64) -> Self {
        BlobRef { algorithm: HASH_ALGORITHM, digest, size }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(Digest::of(b"").to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(Digest::of(b"abc").to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn incremental_equals_one_shot() {
        let mut hasher = Hasher::new();
        hasher.update(b"a");
        hasher.update(b"bc");
        assert_eq!(hasher.size(), 3);
        assert_eq!(hasher.finish(), Digest::of(b"abc"));
    }

    #[test]
    fn parse_round_trips_and_normalises_case() {
        let digest = Digest::of(b"abc");
        assert_eq!(Digest::parse(&digest.to_hex()).unwrap(), digest);
        assert_eq!(Digest::parse(&digest.to_hex().to_uppercase()).unwrap(), digest);
    }

    #[test]
    fn parse_rejects_anything_but_64_hex_characters() {
        let good = Digest::of(b"abc").to_hex();
        for bad in ["", "abc", &good[..63], &format!("{good}0"), &format!("../{}", &good[3..])] {
            assert!(matches!(Digest::parse(bad), Err(ArtifactError::InvalidDigest(_))), "accepted {bad:?}");
        }
        let non_hex = format!("g{}", &good[1..]);
        assert!(Digest::parse(&non_hex).is_err());
    }
}
