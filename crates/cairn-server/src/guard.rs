//! Guards against requests a browser sends on another site's behalf.
//!
//! Any page the user opens can make their browser send "simple" requests (a POST with a
//! `text/plain` or form body, no preflight) to a server on localhost, and a page whose DNS name
//! is rebound to 127.0.0.1 can even read the answers. Two checks, run before any route, stop
//! both:
//!
//! - **Host allow-list.** A rebinding page reaches the server under the attacker's *name*, so a
//!   request whose `Host` is not a name the server answers to is refused ("Invalid Host header",
//!   403, as MLflow answers). Liveness routes are exempt: load balancers probe with any `Host`.
//! - **Cross-origin writes.** A state-changing request (POST, PUT, PATCH, DELETE) whose `Origin`
//!   is neither the server's own nor one of `--cors-allowed-origins` is refused ("Cross-origin
//!   request blocked", 403), and so is one that a browser marks `Sec-Fetch-Site: cross-site`.
//!   Command-line tools and the `mlflow` client send no `Origin` and pass.
//!
//! The third half of the defence lives where bodies are read: routes that read JSON require
//! `Content-Type: application/json` (`extract::JsonBytes`), which no simple request can carry.
//! For the allowed origins, `cors_layer` answers preflights and adds the CORS response headers.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowHeaders, AllowOrigin, CorsLayer};

use crate::error::{ApiError, ErrorCode};

/// MLflow's message for a refused `Host`, with the way out for a legitimate name.
pub const INVALID_HOST: &str = "Invalid Host header - possible DNS rebinding attack detected";
/// MLflow's message for a refused cross-origin write.
pub const CROSS_ORIGIN_BLOCKED: &str = "Cross-origin request blocked";

/// Routes answered whatever the `Host`: load balancers and orchestrators probe them by address.
const HOST_EXEMPT: [&str; 3] = ["/health", "/ready", "/version"];

/// What the guard lets through.
#[derive(Debug, Clone)]
pub struct WebGuard {
    hosts: Vec<Pattern>,
    /// Any IP literal as `Host`: set when the server listens on every interface, whose
    /// addresses it cannot list. A literal address is no rebinding risk: rebinding needs a name.
    any_ip_host: bool,
    origins: Vec<Pattern>,
}

impl WebGuard {
    /// The guard for a server bound to `bind_host`, answering to `allowed_hosts` (the loopback
    /// names and the bound address when empty) and accepting writes from `allowed_origins`.
    pub fn new(bind_host: &str, allowed_hosts: &[String], allowed_origins: &[String]) -> Self {
        let mut hosts: Vec<Pattern> = allowed_hosts.iter().map(|h| Pattern::new(strip_brackets(h))).collect();
        let mut any_ip_host = false;
        if hosts.is_empty() {
            hosts = ["localhost", "127.0.0.1", "::1"].into_iter().map(Pattern::new).collect();
            match strip_brackets(bind_host).parse::<IpAddr>() {
                Ok(ip) if ip.is_unspecified() => any_ip_host = true,
                _ => hosts.push(Pattern::new(strip_brackets(bind_host))),
            }
        }
        WebGuard { hosts, any_ip_host, origins: allowed_origins.iter().map(|o| Pattern::new(o)).collect() }
    }

    /// A guard for in-process tests and tools: loopback names only, no foreign origins.
    pub fn loopback() -> Self {
        WebGuard::new("127.0.0.1", &[], &[])
    }

    /// Whether `host` (a `Host` header value, port included or not) is one to answer.
    pub fn host_allowed(&self, host: &str) -> bool {
        let Some((name, _)) = split_authority(host) else { return false };
        if self.any_ip_host && name.parse::<IpAddr>().is_ok() {
            return true;
        }
        let with_port = host.to_ascii_lowercase();
        self.hosts.iter().any(|p| p.matches(&name) || p.matches(strip_brackets(&with_port)))
    }

    /// Whether `origin` is one of `--cors-allowed-origins`.
    pub fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.to_ascii_lowercase();
        self.origins.iter().any(|p| p.matches(&origin))
    }

    /// The CORS layer for the allowed origins, or `None` when there are none (the UI is same-origin
    /// and needs no CORS headers).
    pub fn cors_layer(self: &Arc<Self>) -> Option<CorsLayer> {
        if self.origins.is_empty() {
            return None;
        }
        let methods = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS];
        let base = CorsLayer::new()
            .allow_methods(methods)
            .allow_headers(AllowHeaders::mirror_request())
            .max_age(Duration::from_secs(600));
        Some(if self.origins.iter().any(Pattern::is_wildcard) {
            // A wildcard origin with credentials is a CORS violation; browsers then send none, so
            // authenticated routes still refuse these requests.
            base.allow_origin(AllowOrigin::any())
        } else {
            let guard = self.clone();
            base.allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
                origin.to_str().is_ok_and(|o| guard.origin_allowed(o))
            }))
            .allow_credentials(true)
        })
    }

    /// The reason to refuse a request with these parts, if there is one.
    fn refusal(&self, method: &Method, path: &str, headers: &HeaderMap) -> Option<&'static str> {
        // A request without `Host` comes from no browser (HTTP/1.1 browsers always send it, and
        // HTTP/2 ones send `:authority`, which hyper exposes as the URI's authority).
        if let Some(host) = header_str(headers, header::HOST)
            && !HOST_EXEMPT.contains(&path)
            && !self.host_allowed(host)
        {
            return Some(INVALID_HOST);
        }
        // A preflight from an allowed origin is answered by the CORS layer before this runs; any
        // other is refused plainly rather than left to a 405.
        let preflight = *method == Method::OPTIONS && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        let state_changing =
            preflight || matches!(*method, Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
        if !state_changing {
            return None;
        }
        match header_str(headers, header::ORIGIN) {
            Some(origin) if !self.same_origin(origin, headers) && !self.origin_allowed(origin) => {
                Some(CROSS_ORIGIN_BLOCKED)
            }
            Some(_) => None,
            None => {
                let cross_site = header_str(headers, HeaderName::from_static("sec-fetch-site"))
                    .is_some_and(|s| s.eq_ignore_ascii_case("cross-site"));
                cross_site.then_some(CROSS_ORIGIN_BLOCKED)
            }
        }
    }

    /// Whether `origin` names this server: the authority the request was sent to (`Host`, or the
    /// `X-Forwarded-Host` a reverse proxy sets, which no cross-site page can add to a request
    /// without a preflight that this server never approves).
    fn same_origin(&self, origin: &str, headers: &HeaderMap) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else { return false };
        let Some(origin_authority) = normalize_authority(scheme, authority) else { return false };
        let forwarded = header_str(headers, HeaderName::from_static("x-forwarded-host"))
            .map(|h| h.split(',').next().unwrap_or_default().trim());
        [header_str(headers, header::HOST), forwarded]
            .into_iter()
            .flatten()
            .filter_map(|own| normalize_authority(scheme, own))
            .any(|own| own == origin_authority)
    }
}

/// The middleware: refuses what [`WebGuard`] refuses, before routing.
pub async fn check(State(guard): State<Arc<WebGuard>>, request: Request, next: Next) -> Response {
    match guard.refusal(request.method(), request.uri().path(), request.headers()) {
        Some(reason) => {
            tracing::warn!(
                reason,
                host = header_str(request.headers(), header::HOST).unwrap_or("-"),
                origin = header_str(request.headers(), header::ORIGIN).unwrap_or("-"),
                "refused a browser request"
            );
            ApiError::new(StatusCode::FORBIDDEN, ErrorCode::PermissionDenied, reason).into_response()
        }
        None => next.run(request).await,
    }
}

fn header_str(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host)
}

/// `host[:port]` or `[v6][:port]` split into the lower-cased host name (brackets removed) and
/// the port, if any. `None` when the authority is malformed.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let authority = authority.trim().to_ascii_lowercase();
    if authority.is_empty() || authority.contains(['/', '@', ' ']) {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (name, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((name.to_owned(), port));
    }
    match authority.rsplit_once(':') {
        Some((name, port)) => Some((name.to_owned(), Some(port.parse().ok()?))),
        None => Some((authority, None)),
    }
}

/// An authority with the scheme's default port made explicit, for comparing origins.
fn normalize_authority(scheme: &str, authority: &str) -> Option<(String, u16)> {
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (name, port) = split_authority(authority)?;
    Some((name, port.unwrap_or(default_port)))
}

/// A host or origin pattern: literal text, case-insensitive, where `*` matches any run of
/// characters (`*.example.com`, `https://*.example.com`, `*`).
#[derive(Debug, Clone)]
struct Pattern(String);

impl Pattern {
    fn new(text: &str) -> Self {
        Pattern(text.trim().to_ascii_lowercase())
    }

    fn is_wildcard(&self) -> bool {
        self.0 == "*"
    }

    fn matches(&self, text: &str) -> bool {
        glob(self.0.as_bytes(), text.as_bytes())
    }
}

/// `*`-only glob matching, iterative so a hostile pattern cannot recurse deeply.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn default_hosts_are_loopback_names_and_the_bound_address() {
        let guard = WebGuard::new("127.0.0.1", &[], &[]);
        for ok in ["localhost:5000", "127.0.0.1:5000", "[::1]:5000", "LOCALHOST", "127.0.0.1"] {
            assert!(guard.host_allowed(ok), "{ok}");
        }
        for bad in ["attacker.example", "attacker.example:5000", "localhost.attacker.example", "", "a b", "[::1"] {
            assert!(!guard.host_allowed(bad), "{bad}");
        }
        let lan = WebGuard::new("10.1.2.3", &[], &[]);
        assert!(lan.host_allowed("10.1.2.3:5000") && !lan.host_allowed("10.1.2.4:5000"));
        let everywhere = WebGuard::new("0.0.0.0", &[], &[]);
        assert!(everywhere.host_allowed("192.168.0.7:5000") && everywhere.host_allowed("[fe80::1]:5000"));
        assert!(!everywhere.host_allowed("rebind.attacker.example:5000"), "names still need listing");
    }

    #[test]
    fn listed_hosts_replace_the_defaults_and_take_wildcards_and_ports() {
        let guard = WebGuard::new("0.0.0.0", &["*.corp.example".into(), "cairn:8080".into()], &[]);
        assert!(guard.host_allowed("ml.corp.example") && guard.host_allowed("ml.corp.example:443"));
        assert!(guard.host_allowed("cairn:8080") && !guard.host_allowed("cairn:9090"));
        assert!(!guard.host_allowed("localhost:5000") && !guard.host_allowed("10.0.0.1"));
        assert!(WebGuard::new("127.0.0.1", &["*".into()], &[]).host_allowed("anything.example"));
    }

    #[test]
    fn foreign_origins_cannot_change_state() {
        let guard = WebGuard::loopback();
        let refused =
            |method: Method, pairs: &[(&'static str, &str)]| guard.refusal(&method, "/api/x", &headers(pairs));
        let evil = [("host", "127.0.0.1:5000"), ("origin", "https://evil.example")];
        assert_eq!(refused(Method::POST, &evil), Some(CROSS_ORIGIN_BLOCKED));
        assert_eq!(refused(Method::DELETE, &evil), Some(CROSS_ORIGIN_BLOCKED));
        assert_eq!(refused(Method::GET, &evil), None, "reads are left to CORS in the browser");
        let preflight =
            [("host", "127.0.0.1:5000"), ("origin", "https://evil.example"), ("access-control-request-method", "POST")];
        assert_eq!(refused(Method::OPTIONS, &preflight), Some(CROSS_ORIGIN_BLOCKED));
        assert_eq!(
            refused(Method::POST, &[("host", "127.0.0.1:5000"), ("origin", "null")]),
            Some(CROSS_ORIGIN_BLOCKED)
        );
        assert_eq!(refused(Method::POST, &[("host", "127.0.0.1:5000"), ("origin", "http://127.0.0.1:5000")]), None);
        assert_eq!(
            refused(Method::POST, &[("host", "127.0.0.1:5000"), ("origin", "http://127.0.0.1:5001")]),
            Some(CROSS_ORIGIN_BLOCKED),
            "another port is another origin"
        );
        assert_eq!(refused(Method::POST, &[("host", "localhost"), ("origin", "http://localhost:80")]), None);
        assert_eq!(refused(Method::POST, &[("host", "127.0.0.1:5000")]), None, "no Origin: not a browser");
        assert_eq!(
            refused(Method::POST, &[("host", "127.0.0.1:5000"), ("sec-fetch-site", "cross-site")]),
            Some(CROSS_ORIGIN_BLOCKED)
        );
        let proxied = [
            ("host", "127.0.0.1:5000"),
            ("x-forwarded-host", "ml.corp.example"),
            ("origin", "https://ml.corp.example"),
        ];
        assert_eq!(guard.refusal(&Method::POST, "/api/x", &headers(&proxied)), None);
    }

    #[test]
    fn allowed_origins_may_write_and_foreign_hosts_are_refused_first() {
        let guard = WebGuard::new("127.0.0.1", &[], &["https://*.corp.example".into(), "http://tool:3000".into()]);
        let post = |origin: &str| {
            guard.refusal(&Method::POST, "/api/x", &headers(&[("host", "localhost:5000"), ("origin", origin)]))
        };
        assert_eq!(post("https://nb.corp.example"), None);
        assert_eq!(post("http://tool:3000"), None);
        assert_eq!(post("http://tool:3001"), Some(CROSS_ORIGIN_BLOCKED));
        assert_eq!(guard.refusal(&Method::GET, "/api/x", &headers(&[("host", "evil.example")])), Some(INVALID_HOST));
        assert_eq!(guard.refusal(&Method::GET, "/health", &headers(&[("host", "evil.example")])), None);
    }

    #[test]
    fn glob_matches_like_fnmatch_stars() {
        assert!(glob(b"*", b"") && glob(b"a*c", b"abbbc") && glob(b"*.x.y", b"a.b.x.y"));
        assert!(!glob(b"a*c", b"abd") && !glob(b"*.x.y", b"x.y"));
        assert!(glob(b"**a**", b"bab"));
    }
}
