//! Builds the web UI from `web/` into `OUT_DIR` and writes the table that embeds it.
//!
//! Steps: check that node and npm exist (or fail with one line saying what to install); run
//! `npm ci` when `web/node_modules` is missing or was installed from another lockfile; run
//! `npm run build` into `OUT_DIR/dist`; compress every text file with gzip and brotli; write
//! `OUT_DIR/assets.rs`, a static table of `include_bytes!` entries that `lib.rs` includes.
//! Cargo reruns this only when the web sources, the manifests or this script change.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The stamp that records which lockfile `web/node_modules` was installed from.
const LOCK_STAMP: &str = ".cairn-lockfile";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest_dir.join("../../web").canonicalize().unwrap_or_else(|e| fail(&format!("web/ not found: {e}")));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    for path in ["src", "public", "index.html", "build.mjs", "package.json", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", web.join(path).display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    require_tool("node");
    require_tool("npm");
    install_dependencies(&web);

    let dist = out.join("dist");
    if dist.exists() {
        fs::remove_dir_all(&dist).unwrap_or_else(|e| fail(&format!("cannot clear {}: {e}", dist.display())));
    }
    run(Command::new("npm").args(["run", "--silent", "build", "--"]).arg(&dist).current_dir(&web), "npm run build");

    let mut files = Vec::new();
    collect(&dist, &dist, &mut files);
    files.sort();
    let table = embed(&dist, &files);
    fs::write(out.join("assets.rs"), table).unwrap_or_else(|e| fail(&format!("cannot write assets.rs: {e}")));
}

/// Stops the build with one line saying what is missing and how to get it.
fn require_tool(tool: &str) {
    let found = Command::new(tool).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        fail(&format!(
            "`{tool}` is needed to build the web UI; install Node.js and npm (Debian: `apt-get install nodejs npm`)"
        ));
    }
}

/// `npm ci` unless `node_modules` was already installed from exactly this lockfile. `npm ci`
/// removes `node_modules` first, so the stamp is written after it succeeds.
fn install_dependencies(web: &Path) {
    let lock = fs::read(web.join("package-lock.json")).unwrap_or_else(|e| fail(&format!("web/package-lock.json: {e}")));
    let stamp = web.join("node_modules").join(LOCK_STAMP);
    if fs::read(&stamp).is_ok_and(|installed| installed == lock) {
        return;
    }
    run(Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--loglevel=error"]).current_dir(web), "npm ci");
    fs::write(&stamp, &lock).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", stamp.display())));
}

fn run(command: &mut Command, what: &str) {
    match command.status() {
        Ok(status) if status.success() => {}
        Ok(status) => fail(&format!("`{what}` in web/ failed ({status}); its output is above")),
        Err(e) => fail(&format!("cannot start `{what}`: {e}")),
    }
}

fn fail(message: &str) -> ! {
    // A panic would bury the message under a backtrace hint; cargo prints stderr of a failed
    // build script, so one line there is what the user reads.
    eprintln!("error: {message}");
    std::process::exit(1);
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display())));
    for entry in entries {
        let path = entry.unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", dir.display()))).path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let rel = path.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/");
            out.push(rel);
        }
    }
}

/// The Rust source of the asset table, compressing each compressible file on the way.
fn embed(dist: &Path, files: &[String]) -> String {
    let mut src = String::from("/// Every file of the built UI, sorted by path.\npub static ASSETS: &[Asset] = &[\n");
    for rel in files {
        let path = dist.join(rel);
        let content_type = content_type(rel);
        let compressible = is_text(content_type);
        let (gzip, brotli) = if compressible {
            let bytes = fs::read(&path).unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", path.display())));
            let gz = path.with_file_name(format!("{}.gz", file_name(&path)));
            let br = path.with_file_name(format!("{}.br", file_name(&path)));
            fs::write(&gz, gzip(&bytes)).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", gz.display())));
            fs::write(&br, brotli(&bytes)).unwrap_or_else(|e| fail(&format!("cannot write {}: {e}", br.display())));
            (
                format!("Some(include_bytes!({:?}))", gz.display().to_string()),
                format!("Some(include_bytes!({:?}))", br.display().to_string()),
            )
        } else {
            ("None".to_owned(), "None".to_owned())
        };
        writeln!(
            src,
            "    Asset {{ path: {rel:?}, content_type: {content_type:?}, hashed: {hashed}, identity: include_bytes!({full:?}), gzip: {gzip}, brotli: {brotli} }},",
            hashed = is_content_hashed(rel),
            full = path.display().to_string(),
        )
        .expect("writing to a String");
    }
    src.push_str("];\n");
    src
}

fn file_name(path: &Path) -> String {
    path.file_name().expect("a file").to_string_lossy().into_owned()
}

/// esbuild names its outputs `name-HASH.ext` (see web/build.mjs), with an 8-character hash of
/// letters and digits; only `index.html` keeps its name.
fn is_content_hashed(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let stem = name.split('.').next().unwrap_or(name);
    stem.rsplit_once('-').is_some_and(|(_, hash)| hash.len() == 8 && hash.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn content_type(rel: &str) -> &'static str {
    match rel.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "txt" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

fn is_text(content_type: &str) -> bool {
    content_type.starts_with("text/") || content_type == "application/json" || content_type == "image/svg+xml"
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).expect("writing to a Vec");
    encoder.finish().expect("writing to a Vec")
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    // Quality 11 and a 4 MiB window (lgwin 22), brotli's defaults for static content.
    let params = brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 22, ..Default::default() };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("compressing into a Vec");
    out
}
