//! Throttling of sign-in, reset and invitation attempts.
//!
//! - Per account (keyed by the canonical email as typed, so an unknown email is throttled exactly
//!   like a known one): after `max_failures` failures, each further attempt waits an
//!   exponentially growing back-off. Failures decay (half their weight every `decay_secs`), so a
//!   slow trickle does not keep an account locked forever. An attempt is counted when it starts,
//!   under the entry's lock, so 50 parallel failures count as 50 and only the allowed number
//!   reach the hash.
//! - Lanes: a client holding a device cookie from an earlier successful sign-in of the account
//!   has a lane of its own (OWASP's device cookies), so strangers guessing cannot lock the owner
//!   out; a completed reset or accepted invitation clears every lane.
//! - Per client address: a generous fixed window (many people share one office address).

use std::sync::Arc;

use dashmap::DashMap;

use crate::directory::{Directory, DirectoryError, LaneRow, WindowRow};

/// Limits, from configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Consecutive failures of one account before back-off starts.
    pub max_failures: u32,
    /// First back-off, doubled at each further failure, capped at `max_backoff_secs`.
    pub backoff_secs: i64,
    pub max_backoff_secs: i64,
    /// Failures allowed per client address per window.
    pub ip_max_failures: u32,
    pub ip_window_secs: i64,
    /// A failure loses half its weight every this many seconds, so old failures stop counting.
    pub decay_secs: i64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_failures: 5,
            backoff_secs: 30,
            max_backoff_secs: 15 * 60,
            ip_max_failures: 100,
            ip_window_secs: 600,
            decay_secs: 900,
        }
    }
}

/// The failures of one lane of an account: strangers share one, each known device has its own.
#[derive(Debug, Default, Clone, Copy)]
struct Lane {
    /// Failures, each losing half its weight every `decay_secs`.
    failures: f64,
    last: i64,
    locked_until: i64,
}

impl Lane {
    fn decayed(&self, now: i64, half_life: i64) -> f64 {
        let age = (now - self.last).max(0) as f64;
        self.failures * 0.5f64.powf(age / half_life.max(1) as f64)
    }

    /// One more attempt at `now`: refused while locked, otherwise counted as a failure (which
    /// may lock the lane for the next ones).
    fn attempt(&mut self, limits: &Limits, now: i64) -> Result<(), Throttled> {
        if now < self.locked_until {
            return Err(Throttled((self.locked_until - now).max(1) as u64));
        }
        self.failures = self.decayed(now, limits.decay_secs) + 1.0;
        self.last = now;
        // Failures of the last minutes weigh almost 1 each: count them whole, so the limit is
        // reached after exactly `max_failures` quick attempts.
        let over = self.failures.round() - f64::from(limits.max_failures);
        if over >= 0.0 {
            let doublings = (over as u32).min(20);
            let wait = limits
                .backoff_secs
                .saturating_mul(1 << doublings)
                .min(limits.max_backoff_secs);
            self.locked_until = now + wait;
        }
        Ok(())
    }
}

/// Devices remembered per account; the oldest lane goes first.
const MAX_DEVICES: usize = 16;

#[derive(Debug, Default, Clone)]
struct Account {
    strangers: Lane,
    devices: Vec<(String, Lane)>,
}

impl Account {
    fn lane(&mut self, device: Option<&str>) -> &mut Lane {
        let Some(device) = device else {
            return &mut self.strangers;
        };
        let i = match self.devices.iter().position(|(d, _)| d == device) {
            Some(i) => i,
            None => {
                if self.devices.len() >= MAX_DEVICES
                    && let Some(oldest) = self
                        .devices
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, l))| l.last)
                        .map(|(i, _)| i)
                {
                    self.devices.swap_remove(oldest);
                }
                self.devices.push((device.to_owned(), Lane::default()));
                self.devices.len() - 1
            }
        };
        &mut self.devices[i].1
    }

    fn last(&self) -> i64 {
        self.devices
            .iter()
            .map(|(_, l)| l.last.max(l.locked_until))
            .fold(
                self.strangers.last.max(self.strangers.locked_until),
                i64::max,
            )
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    start: i64,
    count: u32,
}

impl Window {
    fn wait(&self, limits: &Limits, now: i64) -> Option<u64> {
        let end = self.start + limits.ip_window_secs;
        (now < end && self.count >= limits.ip_max_failures).then(|| (end - now).max(1) as u64)
    }

    /// The window after one more attempt at `now`.
    fn attempt(w: Option<Self>, limits: &Limits, now: i64) -> Self {
        match w {
            Some(w) if now < w.start + limits.ip_window_secs => Self {
                count: w.count + 1,
                ..w
            },
            _ => Self {
                start: now,
                count: 1,
            },
        }
    }
}

/// One kind of attempt (sign-in, reset request, token redemption), throttled per key and per
/// address, in this process's memory (a single node).
#[derive(Debug, Clone)]
pub struct MemoryThrottle {
    limits: Limits,
    accounts: Arc<DashMap<String, Account>>,
    addresses: Arc<DashMap<String, Window>>,
}

/// Refused: retry after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled(pub u64);

const MAX_ENTRIES: usize = 200_000;

/// The key an address is counted under: itself for IPv4, its /64 for IPv6 (one subscriber
/// usually holds a whole /64, so counting single addresses would give them 2^64 budgets).
fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => ip.to_owned(),
    }
}

impl MemoryThrottle {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            accounts: Arc::new(DashMap::new()),
            addresses: Arc::new(DashMap::new()),
        }
    }

    /// Seconds the address must wait, if its window is used up.
    pub fn address_wait(&self, ip: &str, now: i64) -> Option<u64> {
        self.addresses
            .get(&address_key(ip))?
            .wait(&self.limits, now)
    }

    /// Starts an attempt on `account` from a client that proved itself on an earlier sign-in
    /// (`device`) or not (`None`, a stranger): refused while that lane or the address is
    /// throttled, otherwise counted as a failure until [`Throttle::succeeded`] says otherwise.
    pub fn begin(
        &self,
        account: &str,
        device: Option<&str>,
        ip: &str,
        now: i64,
    ) -> Result<(), Throttled> {
        if let Some(wait) = self.address_wait(ip, now) {
            return Err(Throttled(wait));
        }
        self.prune(now);
        self.accounts
            .entry(account.to_owned())
            .or_default()
            .lane(device)
            .attempt(&self.limits, now)?;
        let mut w = self.addresses.entry(address_key(ip)).or_insert(Window {
            start: now,
            count: 0,
        });
        *w = Window::attempt(Some(*w), &self.limits, now);
        Ok(())
    }

    /// The attempt succeeded: that lane's failures are forgotten and the address's count gets
    /// its attempt back.
    pub fn succeeded(&self, account: &str, device: Option<&str>, ip: &str) {
        if let Some(mut e) = self.accounts.get_mut(account) {
            *e.lane(device) = Lane::default();
        }
        if let Some(mut w) = self.addresses.get_mut(&address_key(ip)) {
            w.count = w.count.saturating_sub(1);
        }
    }

    /// Forgets every failure and lock of an account (its owner proved themself another way:
    /// a completed password reset or an accepted invitation).
    pub fn clear(&self, account: &str) {
        self.accounts.remove(account);
    }

    /// Failures recorded for an account's strangers' lane, as they weigh now.
    pub fn failures(&self, account: &str, now: i64) -> f64 {
        self.accounts
            .get(account)
            .map_or(0.0, |e| e.strangers.decayed(now, self.limits.decay_secs))
    }

    fn prune(&self, now: i64) {
        if self.accounts.len() > MAX_ENTRIES {
            let keep = self
                .limits
                .max_backoff_secs
                .max(self.limits.ip_window_secs)
                .max(self.limits.decay_secs * 4);
            self.accounts.retain(|_, e| now - e.last() < keep);
        }
        if self.addresses.len() > MAX_ENTRIES {
            let w = self.limits.ip_window_secs;
            self.addresses.retain(|_, e| now < e.start + w);
        }
    }
}

/// Why an attempt may not go ahead.
#[derive(Debug)]
pub enum Refused {
    /// Throttled: retry after this many seconds.
    Wait(u64),
    /// The shared counters cannot be read: refuse rather than let guesses through uncounted.
    Unavailable(DirectoryError),
}

impl From<Throttled> for Refused {
    fn from(t: Throttled) -> Self {
        Self::Wait(t.0)
    }
}

impl From<DirectoryError> for Refused {
    fn from(e: DirectoryError) -> Self {
        Self::Unavailable(e)
    }
}

/// A throttle whose counters live in this process (a single node) or in the directory, shared
/// by every node of a deployment.
#[derive(Debug, Clone)]
pub enum Throttle {
    Memory(MemoryThrottle),
    Shared {
        directory: Directory,
        /// Which throttle (`login`, `forgot`, `token`): its rows are its own.
        kind: &'static str,
        limits: Limits,
    },
}

/// The strangers' lane of an account in the shared store.
const STRANGERS: &str = "";

impl Throttle {
    /// Seconds the address must wait, if its window is used up.
    pub async fn address_wait(&self, ip: &str, now: i64) -> Result<Option<u64>, Refused> {
        match self {
            Self::Memory(m) => Ok(m.address_wait(ip, now)),
            Self::Shared {
                directory,
                kind,
                limits,
            } => Ok(directory
                .throttle_window(kind, &address_key(ip))
                .await?
                .and_then(|w| window_of(w).wait(limits, now))),
        }
    }

    /// As [`MemoryThrottle::begin`], on whichever store this throttle uses.
    pub async fn begin(
        &self,
        account: &str,
        device: Option<&str>,
        ip: &str,
        now: i64,
    ) -> Result<(), Refused> {
        let (directory, kind, limits) = match self {
            Self::Memory(m) => return Ok(m.begin(account, device, ip, now)?),
            Self::Shared {
                directory,
                kind,
                limits,
            } => (directory, kind, limits),
        };
        if let Some(wait) = self.address_wait(ip, now).await? {
            return Err(Refused::Wait(wait));
        }
        directory
            .update_throttle_lane(kind, account, device.unwrap_or(STRANGERS), |row| {
                let mut lane = Lane {
                    failures: row.failures,
                    last: row.last_at,
                    locked_until: row.locked_until,
                };
                let outcome = lane.attempt(limits, now);
                *row = LaneRow {
                    failures: lane.failures,
                    last_at: lane.last,
                    locked_until: lane.locked_until,
                };
                outcome
            })
            .await??;
        directory
            .update_throttle_window(kind, &address_key(ip), |w| {
                let w = Window::attempt(w.map(window_of), limits, now);
                WindowRow {
                    start: w.start,
                    attempts: i64::from(w.count),
                }
            })
            .await?;
        Ok(())
    }

    /// As [`MemoryThrottle::succeeded`].
    pub async fn succeeded(&self, account: &str, device: Option<&str>, ip: &str) {
        match self {
            Self::Memory(m) => m.succeeded(account, device, ip),
            Self::Shared {
                directory, kind, ..
            } => {
                let lane = device.unwrap_or(STRANGERS);
                let cleared = directory
                    .clear_throttle_lanes(kind, account, Some(lane))
                    .await;
                let given_back = directory
                    .update_throttle_window(kind, &address_key(ip), |w| {
                        let w = w.unwrap_or_default();
                        WindowRow {
                            attempts: (w.attempts - 1).max(0),
                            ..w
                        }
                    })
                    .await;
                if let Err(e) = cleared.and(given_back) {
                    tracing::warn!(error = %e, "throttle: success not recorded");
                }
            }
        }
    }

    /// As [`MemoryThrottle::clear`].
    pub async fn clear(&self, account: &str) {
        match self {
            Self::Memory(m) => m.clear(account),
            Self::Shared {
                directory, kind, ..
            } => {
                if let Err(e) = directory.clear_throttle_lanes(kind, account, None).await {
                    tracing::warn!(error = %e, "throttle: account not cleared");
                }
            }
        }
    }
}

fn window_of(w: WindowRow) -> Window {
    Window {
        start: w.start,
        count: u32::try_from(w.attempts.max(0)).unwrap_or(u32::MAX),
    }
}

/// The throttles of the server.
#[derive(Debug, Clone)]
pub struct Throttles {
    pub login: Throttle,
    pub forgot: Throttle,
    pub token: Throttle,
}

impl Throttles {
    /// Counters in this process: a single node.
    pub fn new(limits: Limits) -> Self {
        let [login, forgot, token] = Self::limits(limits);
        Self {
            login: Throttle::Memory(MemoryThrottle::new(login)),
            forgot: Throttle::Memory(MemoryThrottle::new(forgot)),
            token: Throttle::Memory(MemoryThrottle::new(token)),
        }
    }

    /// Counters in the directory, shared by every node of a deployment.
    pub fn shared(directory: &Directory, limits: Limits) -> Self {
        let [login, forgot, token] = Self::limits(limits);
        let shared = |kind, limits| Throttle::Shared {
            directory: directory.clone(),
            kind,
            limits,
        };
        Self {
            login: shared("login", login),
            forgot: shared("forgot", forgot),
            token: shared("token", token),
        }
    }

    fn limits(limits: Limits) -> [Limits; 3] {
        [
            limits,
            // Reset mails: a few per account, then back off; never affects sign-in.
            Limits {
                max_failures: 3,
                backoff_secs: 60,
                ..limits
            },
            limits,
        ]
    }
}

/// A token bucket per caller (an operator key): `per_minute` calls, a minute's worth at once.
/// Kept by each node in memory; a caller reaching several nodes gets that many buckets.
#[derive(Debug, Clone)]
pub struct Buckets {
    per_minute: u32,
    /// Caller → (tokens left, when last filled).
    entries: Arc<DashMap<String, (f64, i64)>>,
}

impl Buckets {
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute: per_minute.max(1),
            entries: Arc::default(),
        }
    }

    /// Takes a token for `caller`, or says how many seconds until one is there.
    pub fn take(&self, caller: &str, now: i64) -> Result<(), u64> {
        let capacity = f64::from(self.per_minute);
        let per_sec = capacity / 60.0;
        if self.entries.len() > 100_000 {
            // Full buckets carry no information: forget them.
            self.entries
                .retain(|_, (tokens, at)| *tokens + (now - *at).max(0) as f64 * per_sec < capacity);
        }
        let mut e = self
            .entries
            .entry(caller.to_owned())
            .or_insert((capacity, now));
        let (tokens, at) = *e;
        let filled = (tokens + (now - at).max(0) as f64 * per_sec).min(capacity);
        if filled >= 1.0 {
            *e = (filled - 1.0, now);
            Ok(())
        } else {
            *e = (filled, now);
            Err(((1.0 - filled) / per_sec).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_count_by_their_64() {
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(
            address_key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            address_key("2001:db8:1:2::7")
        );
        assert_ne!(
            address_key("2001:db8:1:3::1"),
            address_key("2001:db8:1:2::1")
        );
        assert_eq!(address_key("203.0.113.9"), "203.0.113.9");
        assert_eq!(address_key("::ffff:203.0.113.9"), "203.0.113.9");
        let t = MemoryThrottle::new(Limits {
            ip_max_failures: 2,
            ..Limits::default()
        });
        t.begin("a@x.test", None, "2001:db8::1", 100).unwrap();
        t.begin("b@x.test", None, "2001:db8::2", 100).unwrap();
        assert!(t.address_wait("2001:db8::3", 100).is_some());
        assert!(t.address_wait("2001:db8:0:1::3", 100).is_none());
    }

    #[test]
    fn backs_off_after_max_failures_and_doubles() {
        let t = MemoryThrottle::new(Limits::default());
        let a = |now| t.begin("a@x.test", None, "1.1.1.1", now);
        for _ in 0..4 {
            assert_eq!(a(100), Ok(()));
        }
        // The fifth attempt runs, and arms the back-off.
        assert_eq!(a(100), Ok(()));
        assert_eq!(a(100), Err(Throttled(30)));
        assert_eq!(a(129), Err(Throttled(1)));
        assert_eq!(a(130), Ok(()));
        // Failing on: the wait doubles.
        assert_eq!(a(130), Err(Throttled(60)));
        assert_eq!(a(190), Ok(()));
        assert_eq!(a(190), Err(Throttled(120)));
        // Other accounts are not affected.
        assert_eq!(t.begin("b@x.test", None, "1.1.1.1", 190), Ok(()));
    }

    #[test]
    fn success_resets_the_lane() {
        let t = MemoryThrottle::new(Limits::default());
        for _ in 0..4 {
            t.begin("a@x.test", None, "ip", 1).unwrap_or(());
        }
        t.succeeded("a@x.test", None, "ip");
        assert_eq!(t.failures("a@x.test", 1), 0.0);
    }

    #[test]
    fn quick_failures_count_whole_across_seconds() {
        let t = MemoryThrottle::new(Limits::default());
        for now in [100, 101, 102, 103] {
            assert_eq!(t.begin("a@x.test", None, "ip", now), Ok(()));
        }
        // The fifth, a few seconds later, still arms the lock.
        assert_eq!(t.begin("a@x.test", None, "ip", 105), Ok(()));
        assert!(t.begin("a@x.test", None, "ip", 106).is_err());
    }

    #[test]
    fn failures_decay_so_a_slow_trickle_does_not_keep_an_account_locked() {
        let t = MemoryThrottle::new(Limits::default());
        for _ in 0..5 {
            t.begin("a@x.test", None, "ip", 0).unwrap_or(());
        }
        assert!(t.begin("a@x.test", None, "ip", 10).is_err());
        // One wrong attempt every 15 minutes after the lock ends: never locked again.
        for k in 1..=8 {
            assert_eq!(
                t.begin("a@x.test", None, "ip", k * 900),
                Ok(()),
                "attempt {k}"
            );
        }
        assert!(t.failures("a@x.test", 8 * 900) < 3.0);
    }

    #[test]
    fn a_known_device_has_its_own_lane_and_a_reset_clears_all() {
        let t = MemoryThrottle::new(Limits::default());
        // Strangers lock the account for strangers…
        for _ in 0..5 {
            t.begin("a@x.test", None, "6.6.6.6", 0).unwrap_or(());
        }
        assert!(t.begin("a@x.test", None, "6.6.6.6", 1).is_err());
        assert!(t.begin("a@x.test", None, "1.2.3.4", 1).is_err());
        // …but the owner's device still gets through, and a forged device is just another
        // lane of its own, not the owner's.
        assert_eq!(t.begin("a@x.test", Some("dev-1"), "1.2.3.4", 1), Ok(()));
        t.succeeded("a@x.test", Some("dev-1"), "1.2.3.4");
        // A completed reset lifts the strangers' lock too.
        t.clear("a@x.test");
        assert_eq!(t.begin("a@x.test", None, "1.2.3.4", 2), Ok(()));
    }

    #[test]
    fn address_window_is_generous_and_resets() {
        let t = MemoryThrottle::new(Limits::default());
        for i in 0..100 {
            assert_eq!(
                t.begin(&format!("u{i}@x.test"), None, "9.9.9.9", 10),
                Ok(())
            );
        }
        assert_eq!(
            t.begin("new@x.test", None, "9.9.9.9", 10),
            Err(Throttled(600))
        );
        assert_eq!(t.begin("new@x.test", None, "8.8.8.8", 10), Ok(()));
        assert_eq!(t.begin("new2@x.test", None, "9.9.9.9", 610), Ok(()));
    }

    #[test]
    fn parallel_failures_all_count() {
        let t = MemoryThrottle::new(Limits::default());
        let passed = std::sync::atomic::AtomicU32::new(0);
        std::thread::scope(|s| {
            for _ in 0..50 {
                s.spawn(|| {
                    if t.begin("a@x.test", None, "ip", 5).is_ok() {
                        passed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                });
            }
        });
        assert_eq!(passed.into_inner(), 5);
    }

    #[test]
    fn buckets_allow_a_minutes_worth_then_refill_at_the_rate() {
        let b = Buckets::new(6);
        for _ in 0..6 {
            assert!(b.take("k", 100).is_ok());
        }
        assert_eq!(b.take("k", 100), Err(10));
        assert!(
            b.take("other", 100).is_ok(),
            "each caller has its own bucket"
        );
        assert!(b.take("k", 110).is_ok());
        assert!(b.take("k", 110).is_err());
    }
}
