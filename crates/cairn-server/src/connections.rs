//! Accepting and serving connections within limits, so that slow or idle clients cannot hold
//! the server.
//!
//! Three timeouts and one cap:
//! - **idle timeout**: a connection must send a complete request head within this time of being
//!   opened or of its previous response finishing (hyper's header-read timer covers both, so
//!   one limit closes clients that send nothing, send part of a header, or park a kept-alive
//!   connection);
//! - **body timeout**: a request body that delivers no bytes for this long is cut off, so a
//!   trickling upload that still moves completes, and a stalled one does not hold its slot;
//! - **connection cap**: at most `max_connections` at once, never more than the descriptor limit
//!   leaves room for. When a new connection would go over the cap, the connection that has been
//!   idle longest (no request in flight, no response still streaming) is closed to make room; if
//!   every connection is busy, the new one is closed instead.
//!
//! The accept loop backs off (5 ms doubling to 1 s) when accepting fails for lack of
//! descriptors or memory, and logs that at most every ten seconds, rather than spinning.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::Request;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::early_errors::JsonEarlyErrors;

/// Descriptors kept back from the connection cap for the store, artifact files and logs.
const DESCRIPTOR_RESERVE: u64 = 64;

/// How connections are limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most connections served at once (lowered to fit the descriptor limit).
    pub max_connections: usize,
    /// Time to send a complete request head, from connect or from the previous response.
    pub idle_timeout: Duration,
    /// Longest pause allowed between two pieces of a request body.
    pub body_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(60),
        }
    }
}

/// The cap in effect: `wanted`, lowered so that every connection can have a descriptor. The
/// soft descriptor limit is first raised to the hard one, as servers commonly do.
pub fn effective_max_connections(wanted: usize) -> usize {
    let soft = raise_descriptor_limit();
    let room = soft.saturating_sub(DESCRIPTOR_RESERVE).max(1);
    wanted.min(usize::try_from(room).unwrap_or(usize::MAX)).max(1)
}

#[cfg(unix)]
fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open-file limit; assuming 1024");
            1024
        }
    }
}

#[cfg(not(unix))]
fn raise_descriptor_limit() -> u64 {
    u64::MAX
}

/// Serves `router` on `listener` until `shutdown` completes, then lets open requests finish for
/// at most `drain_timeout`. Returns once every connection has closed or the deadline passed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain_timeout: Duration,
) {
    let router = router.layer(RequestBodyTimeoutLayer::new(limits.body_timeout));
    let registry = Arc::new(Registry::default());
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.idle_timeout);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);

    let mut shutdown = std::pin::pin!(shutdown);
    let mut backoff = Backoff::default();
    let mut over_cap = RateLimitedLog::new("connection limit reached: every connection is busy; closing new ones");
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                backoff.reset();
                stream
            }
            // The peer gave up between connecting and our accept: nothing to do.
            Err(e) if is_peer_error(&e) => continue,
            Err(e) => {
                // Out of descriptors or memory. An idle connection gives one back; waiting lets
                // closing connections give back others.
                registry.evict_idle();
                backoff.wait(&e).await;
                continue;
            }
        };
        if registry.len() >= limits.max_connections && !registry.evict_idle() {
            over_cap.log();
            drop(stream);
            continue;
        }
        let connection = registry.open();
        tokio::spawn(serve_connection(
            stream,
            router.clone(),
            builder.clone(),
            connection,
            registry.clone(),
            closing_rx.clone(),
            limits.idle_timeout,
        ));
    }
    drop(listener);
    tracing::info!(open = registry.len(), "shutting down: no new connections, draining in-flight requests");
    let _ = closing_tx.send(true);
    if tokio::time::timeout(drain_timeout, registry.all_closed()).await.is_err() {
        tracing::warn!(timeout_secs = drain_timeout.as_secs(), "in-flight requests did not finish in time");
    }
}

async fn serve_connection(
    stream: TcpStream,
    router: Router,
    builder: Arc<Builder<TokioExecutor>>,
    connection: Arc<Connection>,
    registry: Arc<Registry>,
    mut closing: watch::Receiver<bool>,
    idle_timeout: Duration,
) {
    // A request counts as in flight from the moment it reaches the router until its response
    // body is sent or dropped, so a streaming download is never taken for an idle connection.
    let counted = connection.clone();
    let peer = stream.peer_addr().ok();
    let service = tower::service_fn(move |mut request: Request<Incoming>| {
        counted.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(peer) = peer {
            request.extensions_mut().insert(crate::auth::principal::PeerAddr(peer));
        }
        let in_flight = InFlight::start(counted.clone());
        let (request, body_read) = crate::unread_body::watch(request.map(Body::new));
        let call = router.clone().oneshot(request);
        async move {
            let mut response = call.await?;
            body_read.mark(&mut response);
            Ok::<_, Infallible>(response.map(|body| Body::new(TrackedBody { inner: body, _in_flight: in_flight })))
        }
    });
    let io = TokioIo::new(JsonEarlyErrors::new(stream));
    let connection_future = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(service));
    let mut connection_future = std::pin::pin!(connection_future);
    let mut draining = false;
    // hyper's header-read timer starts only once it has seen enough bytes to tell HTTP/1 from
    // HTTP/2, so a client that sends nothing at all is timed here.
    let first_request_deadline = tokio::time::sleep(idle_timeout);
    let mut first_request_deadline = std::pin::pin!(first_request_deadline);
    let mut first_request_checked = false;
    loop {
        tokio::select! {
            () = &mut first_request_deadline, if !first_request_checked => {
                first_request_checked = true;
                if connection.requests.load(Ordering::Relaxed) == 0 {
                    tracing::debug!("closed a connection that sent no request in time");
                    break;
                }
            }
            result = connection_future.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            () = connection.evicted.notified() => {
                // Only an idle connection is evicted; dropping it closes the socket.
                if connection.in_flight.load(Ordering::Acquire) == 0 {
                    tracing::debug!("closed an idle connection to make room for a new one");
                    break;
                }
            }
            changed = closing.changed(), if !draining => {
                if changed.is_err() || *closing.borrow() {
                    draining = true;
                    connection_future.as_mut().graceful_shutdown();
                }
            }
        }
    }
    registry.close(connection.id);
}

/// One open connection, as the registry sees it.
#[derive(Debug)]
struct Connection {
    id: u64,
    /// Requests received so far.
    requests: AtomicU64,
    /// Requests being handled plus responses still streaming.
    in_flight: AtomicUsize,
    /// When the connection last became idle, on [`clock_ms`].
    idle_since_ms: AtomicU64,
    evicted: Notify,
}

/// The open connections, for the cap and for eviction.
#[derive(Debug, Default)]
struct Registry {
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Connection>>>,
    closed: Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn open(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(clock_ms()),
            evicted: Notify::new(),
        });
        self.open.lock().unwrap_or_else(|e| e.into_inner()).insert(connection.id, connection.clone());
        connection
    }

    fn close(&self, id: u64) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.remove(&id);
        if open.is_empty() {
            self.closed.notify_waiters();
        }
    }

    /// Asks the connection idle longest to close; false when none is idle.
    fn evict_idle(&self) -> bool {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = open
            .values()
            .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|c| c.idle_since_ms.load(Ordering::Relaxed));
        match oldest {
            Some(connection) => {
                // `notify_one` keeps the permit if the task is not waiting at this instant.
                connection.evicted.notify_one();
                true
            }
            None => false,
        }
    }

    async fn all_closed(&self) {
        loop {
            let notified = self.closed.notified();
            if self.len() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Milliseconds on a monotonic clock shared by every connection.
fn clock_ms() -> u64 {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    u64::try_from(ORIGIN.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Holds a connection busy while it lives.
struct InFlight(Arc<Connection>);

impl InFlight {
    fn start(connection: Arc<Connection>) -> Self {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(connection)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle_since_ms.store(clock_ms(), Ordering::Relaxed);
        }
    }
}

/// A response body that keeps its connection counted busy until it is sent or dropped.
struct TrackedBody {
    inner: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Accept errors that concern one peer only.
fn is_peer_error(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted)
}

/// Exponential back-off for failing accepts.
struct Backoff {
    delay: Duration,
    log: RateLimitedLog,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { delay: Self::FIRST, log: RateLimitedLog::new("cannot accept connections") }
    }
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);

    fn reset(&mut self) {
        self.delay = Self::FIRST;
    }

    async fn wait(&mut self, error: &io::Error) {
        self.log.log_error(error);
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(Self::MAX);
    }
}

/// A warning logged at most once every ten seconds, with the count of those held back.
struct RateLimitedLog {
    message: &'static str,
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    const EVERY: Duration = Duration::from_secs(10);

    fn new(message: &'static str) -> Self {
        RateLimitedLog { message, last: None, suppressed: 0 }
    }

    fn due(&mut self) -> Option<u64> {
        if self.last.is_some_and(|t| t.elapsed() < Self::EVERY) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.suppressed))
    }

    fn log(&mut self) {
        if let Some(suppressed) = self.due() {
            tracing::warn!(suppressed, "{}", self.message);
        }
    }

    fn log_error(&mut self, error: &io::Error) {
        if let Some(suppressed) = self.due() {
            tracing::warn!(error = %error, suppressed, "{}", self.message);
        }
    }
}
