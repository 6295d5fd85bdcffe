//! Failed sign-ins, counted per user name and per client address: after [`MAX_FAILURES`] for a
//! name, or [`MAX_ADDRESS_FAILURES`] from an address, in a [`WINDOW`], further attempts for that
//! name or from that address are refused until the window ends, right password or not, so a
//! password cannot be guessed at argon2's pace from many connections. An address gets more
//! room than a name because many people may share one (a NAT, a proxy).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed for one user name in one window.
pub const MAX_FAILURES: u32 = 10;
/// Failures allowed from one address in one window.
pub const MAX_ADDRESS_FAILURES: u32 = 50;
/// How long failures are remembered.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Most keys remembered; an attacker cycling through names cannot grow memory past this.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Default)]
pub struct FailedLogins {
    counts: Mutex<HashMap<String, (u32, Instant)>>,
}

/// The counters a failure counts in, with the limit of each.
fn keys(username: Option<&str>, address: Option<IpAddr>) -> Vec<(String, u32)> {
    let mut keys = Vec::with_capacity(2);
    if let Some(u) = username {
        keys.push((format!("user:{u}"), MAX_FAILURES));
    }
    if let Some(a) = address {
        keys.push((format!("addr:{a}"), MAX_ADDRESS_FAILURES));
    }
    keys
}

impl FailedLogins {
    /// Seconds until attempts for this name or from this address are accepted again, if they
    /// are refused now.
    pub fn blocked(&self, username: Option<&str>, address: Option<IpAddr>) -> Option<u64> {
        let counts = self.counts.lock().expect("limiter lock");
        keys(username, address)
            .iter()
            .filter_map(|(k, limit)| counts.get(k).map(|c| (c, limit)))
            .filter(|((n, since), limit)| n >= limit && since.elapsed() < WINDOW)
            .map(|(c, _)| c)
            .map(|(_, since)| WINDOW.saturating_sub(since.elapsed()).as_secs().max(1))
            .max()
    }

    /// Counts one failure.
    pub fn record(&self, username: Option<&str>, address: Option<IpAddr>) {
        let mut counts = self.counts.lock().expect("limiter lock");
        if counts.len() >= MAX_KEYS {
            counts.retain(|_, (_, since)| since.elapsed() < WINDOW);
        }
        for (key, _) in keys(username, address) {
            let entry = counts.entry(key).or_insert((0, Instant::now()));
            if entry.1.elapsed() >= WINDOW {
                *entry = (0, Instant::now());
            }
            entry.0 += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_a_name_and_an_address_after_too_many_failures() {
        let limiter = FailedLogins::default();
        let addr: IpAddr = "10.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.blocked(Some("alice"), Some(addr)).is_none());
            limiter.record(Some("alice"), Some(addr));
        }
        assert!(limiter.blocked(Some("alice"), None).is_some(), "the name is blocked from anywhere");
        assert!(limiter.blocked(Some("bob"), Some(addr)).is_none(), "the address has more room");
        for i in MAX_FAILURES..MAX_ADDRESS_FAILURES {
            limiter.record(Some(&format!("u{i}")), Some(addr));
        }
        assert!(limiter.blocked(Some("bob"), Some(addr)).is_some(), "the address is blocked for any name");
        assert!(limiter.blocked(Some("bob"), Some("10.0.0.2".parse().unwrap())).is_none());
    }
}
