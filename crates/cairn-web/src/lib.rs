//! Cairn's web UI, embedded.
//!
//! The build script builds `web/` with npm and esbuild and compiles every output file into the
//! binary, with gzip and brotli variants of the text files made at build time, so serving an
//! asset never compresses or touches the disk. This crate knows nothing of HTTP: the server's
//! `ui` module turns an [`Asset`] into a response.

/// One file of the built UI.
#[derive(Debug)]
pub struct Asset {
    /// Path relative to the UI's root, without a leading slash (`index.html`, `assets/main-ABCD1234.js`).
    pub path: &'static str,
    /// The `Content-Type` to serve it with.
    pub content_type: &'static str,
    /// Whether the file name carries a hash of its content, so it may be cached forever.
    pub hashed: bool,
    /// The file as built.
    pub identity: &'static [u8],
    /// The file gzip-compressed, for text files.
    pub gzip: Option<&'static [u8]>,
    /// The file brotli-compressed, for text files.
    pub brotli: Option<&'static [u8]>,
}

/// A content coding the UI is stored in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl Asset {
    /// The bytes in `encoding`, if this asset has that variant (`Identity` always exists).
    pub fn variant(&self, encoding: Encoding) -> Option<&'static [u8]> {
        match encoding {
            Encoding::Identity => Some(self.identity),
            Encoding::Gzip => self.gzip,
            Encoding::Brotli => self.brotli,
        }
    }
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The asset at `path` (relative, no leading slash), if the UI has such a file.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS.binary_search_by(|a| a.path.cmp(path)).ok().map(|i| &ASSETS[i])
}

/// The app's entry page, served for every route of the app itself.
pub fn index() -> &'static Asset {
    get("index.html").expect("the web build always writes index.html")
}

/// Every embedded file.
pub fn assets() -> &'static [Asset] {
    ASSETS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_embeds_an_index_page_that_loads_hashed_scripts_and_styles() {
        assert!(!index().hashed, "index.html must be revalidated, so it is not content-hashed");
        let page = std::str::from_utf8(index().identity).expect("index.html is UTF-8");
        let scripts: Vec<&Asset> = assets().iter().filter(|a| a.path.ends_with(".js")).collect();
        assert!(!scripts.is_empty(), "the build produced no JavaScript");
        for script in &scripts {
            assert!(script.hashed, "{} is not content-hashed", script.path);
        }
        let main =
            scripts.iter().find(|a| page.contains(&format!("/{}", a.path))).expect("index.html loads a built script");
        assert!(main.content_type.starts_with("text/javascript"));
        assert!(page.contains(".css"), "index.html links the stylesheet");
        // No inline script: the server's Content-Security-Policy forbids it.
        assert!(!page.contains("<script>"), "inline script in index.html");
    }

    #[test]
    fn compressed_variants_decode_to_the_same_bytes_and_are_smaller() {
        for asset in assets().iter().filter(|a| a.gzip.is_some()) {
            let gz = asset.gzip.unwrap();
            let br = asset.brotli.expect("text files have both variants");
            let mut unzipped = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(gz), &mut unzipped).expect("valid gzip");
            assert_eq!(unzipped, asset.identity, "{} gzip variant", asset.path);
            let mut unbrotli = Vec::new();
            brotli::BrotliDecompress(&mut &br[..], &mut unbrotli).expect("valid brotli");
            assert_eq!(unbrotli, asset.identity, "{} brotli variant", asset.path);
            if asset.identity.len() > 1024 {
                assert!(gz.len() < asset.identity.len() && br.len() < asset.identity.len(), "{}", asset.path);
            }
        }
    }

    #[test]
    fn lookups_find_exact_paths_only() {
        assert!(get("index.html").is_some());
        assert!(get("/index.html").is_none());
        assert!(get("missing.js").is_none());
        assert!(get("").is_none());
    }
}
