//! The S3-protocol server the S3 tests run against.
//!
//! Contract (also in the crate README):
//! * `CAIRN_TEST_S3_ENDPOINT=http://host:port`: use a server that is already running. Credentials
//!   come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` if set, else `test`/`test` (moto
//!   accepts anything). With `CAIRN_TEST_S3_BUCKET` every test works under its own prefix of that
//!   existing bucket; without it each test creates its own bucket with an unsigned `PUT /bucket`,
//!   which moto accepts.
//! * otherwise `CAIRN_TEST_VENV=/path/to/venv`: a virtualenv with `moto[server]` installed; the
//!   tests start `$CAIRN_TEST_VENV/bin/python -m moto.server` on a free port, once per test binary,
//!   and it exits when the test binary does.
//! * with neither, every S3 test fails with a message saying so: they never pass vacuously.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cairn_artifacts::S3Settings;

/// A reachable S3-protocol server and how to talk to it.
#[derive(Debug)]
pub struct S3Server {
    /// `http://host:port`.
    pub endpoint: String,
    /// An existing bucket to use under per-test prefixes, or `None` to create buckets.
    pub shared_bucket: Option<String>,
    access_key: String,
    secret_key: String,
    /// Keeps the moto supervisor's stdin open; see [`start_moto`].
    _child: Option<Child>,
}

/// A fresh, empty place for one test: `s3://bucket/prefix`.
#[derive(Debug)]
pub struct S3Place {
    /// The destination string to open.
    pub destination: String,
    /// The bucket.
    pub bucket: String,
    /// The prefix inside the bucket (may be empty).
    pub prefix: String,
}

/// The server for this test binary, started on first use. Panics with instructions if none can be
/// had.
pub fn server() -> &'static S3Server {
    static SERVER: OnceLock<Result<S3Server, String>> = OnceLock::new();
    match SERVER.get_or_init(locate) {
        Ok(server) => server,
        Err(message) => panic!("S3 tests cannot run: {message}"),
    }
}

fn locate() -> Result<S3Server, String> {
    let access_key = std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "test".into());
    let secret_key = std::env::var("AWS_SECRET_ACCESS_KEY").unwrap_or_else(|_| "test".into());
    if let Ok(endpoint) = std::env::var("CAIRN_TEST_S3_ENDPOINT") {
        let shared_bucket = std::env::var("CAIRN_TEST_S3_BUCKET").ok().filter(|b| !b.is_empty());
        wait_until_listening(&endpoint, Duration::from_secs(10))?;
        return Ok(S3Server { endpoint, shared_bucket, access_key, secret_key, _child: None });
    }
    let Ok(venv) = std::env::var("CAIRN_TEST_VENV") else {
        return Err("set CAIRN_TEST_S3_ENDPOINT to a running S3-protocol server, or \
                    CAIRN_TEST_VENV to a virtualenv with `moto[server]` installed \
                    (python3 -m venv $DIR && $DIR/bin/pip install 'moto[server]')"
            .into());
    };
    let (endpoint, child) = start_moto(&venv)?;
    Ok(S3Server { endpoint, shared_bucket: None, access_key, secret_key, _child: Some(child) })
}

/// Starts moto under a tiny Python supervisor that terminates it when its stdin closes, which
/// happens when this test process exits however it exits, so no server outlives the tests.
fn start_moto(venv: &str) -> Result<(String, Child), String> {
    let python = format!("{venv}/bin/python");
    let port =
        TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| format!("no free port: {e}"))?.port();
    let supervisor = "import subprocess, sys\n\
        p = subprocess.Popen([sys.executable, '-m', 'moto.server', '-H', '127.0.0.1', '-p', sys.argv[1]],\n\
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n\
        sys.stdin.read()\n\
        p.terminate()\n";
    let child = Command::new(&python)
        .args(["-c", supervisor, &port.to_string()])
        .stdin(Stdio::piped())
        .spawn()
        .map_err(|e| format!("could not run {python}: {e} (is CAIRN_TEST_VENV a virtualenv?)"))?;
    let endpoint = format!("http://127.0.0.1:{port}");
    wait_until_listening(&endpoint, Duration::from_secs(60))
        .map_err(|e| format!("{e}; is `moto[server]` installed in {venv}?"))?;
    Ok((endpoint, child))
}

fn host_port(endpoint: &str) -> &str {
    endpoint.trim_start_matches("http://").trim_end_matches('/')
}

fn wait_until_listening(endpoint: &str, limit: Duration) -> Result<(), String> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if TcpStream::connect(host_port(endpoint)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!("no S3 server listening at {endpoint} after {limit:?}"))
}

impl S3Server {
    /// S3 settings pointing at this server.
    pub fn settings(&self) -> S3Settings {
        S3Settings::from_vars([
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", self.access_key.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_key.as_str()),
            ("AWS_REGION", "us-east-1"),
        ])
    }

    /// The access key id and secret the tests use.
    pub fn credentials(&self) -> (&str, &str) {
        (&self.access_key, &self.secret_key)
    }

    /// A fresh place for one test: a new bucket, or a new prefix in the shared bucket.
    pub fn fresh_place(&self, test: &str) -> S3Place {
        let unique = &uuid::Uuid::new_v4().simple().to_string()[..12];
        match &self.shared_bucket {
            Some(bucket) => {
                let prefix = format!("cairn-tests/{test}-{unique}");
                S3Place { destination: format!("s3://{bucket}/{prefix}"), bucket: bucket.clone(), prefix }
            }
            None => {
                let bucket = format!("cairn-{}-{unique}", test.replace('_', "-"));
                let (status, body) = self.raw_request("PUT", &format!("/{bucket}"));
                assert_eq!(status, 200, "creating bucket {bucket} failed: {body}");
                S3Place { destination: format!("s3://{bucket}/artifacts"), bucket, prefix: "artifacts".into() }
            }
        }
    }

    /// Incomplete multipart uploads in a bucket this binary created (unsigned request, which only
    /// a permissive server such as moto answers). `None` when using a shared bucket.
    pub fn pending_multipart_uploads(&self, place: &S3Place) -> Option<usize> {
        if self.shared_bucket.is_some() {
            return None;
        }
        let (status, body) = self.raw_request("GET", &format!("/{}?uploads", place.bucket));
        assert_eq!(status, 200, "listing multipart uploads failed: {body}");
        Some(body.matches("<UploadId>").count())
    }

    /// One HTTP/1.1 request with an empty body; returns the status and the body.
    fn raw_request(&self, method: &str, target: &str) -> (u16, String) {
        let host = host_port(&self.endpoint);
        let mut conn = TcpStream::connect(host).expect("connect to S3 server");
        conn.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(conn, "{method} {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .expect("send request");
        let mut response = String::new();
        conn.read_to_string(&mut response).expect("read response");
        let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        (status, response)
    }
}
