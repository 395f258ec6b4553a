//! Propagation verification: a switch is done when every authoritative server
//! of the zone answers the new value *and* the old TTL has run out.
//!
//! A provider saying "INSYNC" is not the same as clients reaching the new site:
//! resolvers keep the old answer for up to its TTL after they last fetched it,
//! and a lagging authoritative server keeps handing it out. [`verify_propagation`]
//! asks each authoritative server directly (through an [`AuthoritativeResolver`]),
//! records when each one first served the new value, names the stragglers, then
//! waits out the old TTL counted from the last server's switch.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::{ErrorKind, ProviderError, ProviderResult};
use crate::model::{DnsRecordId, DnsTarget};

/// Asks one authoritative nameserver directly (no recursion, no cache) what a record holds.
#[async_trait]
pub trait AuthoritativeResolver: Send + Sync + Debug + 'static {
    /// The authoritative servers to check, as `host:port` or `ip:port` strings.
    ///
    /// # Contract
    /// Read-only. Never empty on success.
    async fn nameservers(&self, record: &DnsRecordId) -> ProviderResult<Vec<String>>;

    /// What `server` answers for `record` now: `None` when the name has no
    /// address or alias record there.
    ///
    /// # Contract
    /// Read-only, uncached. Errors are per-query (`Transient`, `Timeout`); the
    /// verifier retries them on its next poll.
    async fn lookup(&self, server: &str, record: &DnsRecordId) -> ProviderResult<Option<DnsTarget>>;
}

#[async_trait]
impl<T: AuthoritativeResolver + ?Sized> AuthoritativeResolver for Arc<T> {
    async fn nameservers(&self, record: &DnsRecordId) -> ProviderResult<Vec<String>> {
        (**self).nameservers(record).await
    }
    async fn lookup(&self, server: &str, record: &DnsRecordId) -> ProviderResult<Option<DnsTarget>> {
        (**self).lookup(server, record).await
    }
}

/// How [`verify_propagation`] polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropagationOptions {
    /// Time between two rounds of queries.
    pub poll_interval: Duration,
    /// A server still serving the old value this long after the switch is a straggler
    /// (reported, and the verification keeps waiting for it until `deadline`).
    pub straggler_after: Duration,
    /// Give up (with a `Timeout` error naming the servers still behind) after this long.
    pub deadline: Duration,
    /// Whether to wait out the old TTL after the last server switched (the default).
    /// Turn it off only to measure server propagation alone.
    pub wait_out_ttl: bool,
}

impl Default for PropagationOptions {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            straggler_after: Duration::from_secs(10),
            deadline: Duration::from_secs(600),
            wait_out_ttl: true,
        }
    }
}

/// When one authoritative server first served the new value.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerPropagation {
    /// The server, as the resolver names it.
    pub server: String,
    /// Time from the start of verification to the first answer with the new value.
    #[serde(with = "crate::model::duration_serde")]
    pub serving_new_after: Duration,
    /// Whether it took longer than [`PropagationOptions::straggler_after`].
    pub straggler: bool,
}

/// What [`verify_propagation`] observed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PropagationReport {
    /// The record checked.
    pub record: DnsRecordId,
    /// The value every server now serves.
    pub new_target: DnsTarget,
    /// One entry per authoritative server, in the order the resolver listed them.
    pub servers: Vec<ServerPropagation>,
    /// Time until the last server served the new value.
    #[serde(with = "crate::model::duration_serde")]
    pub all_servers_after: Duration,
    /// The old TTL that was waited out (zero if not waited).
    #[serde(with = "crate::model::duration_serde")]
    pub ttl_waited: Duration,
    /// When no client can still hold the old answer: last server's switch plus the old TTL.
    #[serde(with = "crate::model::duration_serde")]
    pub effective_cutover: Duration,
}

impl PropagationReport {
    /// The servers that lagged past the straggler threshold.
    pub fn stragglers(&self) -> Vec<&str> {
        self.servers.iter().filter(|s| s.straggler).map(|s| s.server.as_str()).collect()
    }
}

/// Polls every authoritative server until all serve `new_target`, then waits out `old_ttl`.
///
/// Uses tokio time, so tests can run it with paused time. Fails with `Timeout`
/// (naming the servers still behind and what they serve) after
/// [`PropagationOptions::deadline`]; with `InvalidInput` if the resolver lists no server.
///
/// # Example
/// ```
/// # use std::time::Duration;
/// # use async_trait::async_trait;
/// use qovery_dr_core::provider::{verify_propagation, AuthoritativeResolver, PropagationOptions};
/// use qovery_dr_core::{DnsRecordId, DnsTarget, ProviderResult};
///
/// #[derive(Debug)]
/// struct AlreadySwitched;
/// #[async_trait]
/// impl AuthoritativeResolver for AlreadySwitched {
///     async fn nameservers(&self, _: &DnsRecordId) -> ProviderResult<Vec<String>> {
///         Ok(vec!["ns1:53".into(), "ns2:53".into()])
///     }
///     async fn lookup(&self, _: &str, _: &DnsRecordId) -> ProviderResult<Option<DnsTarget>> {
///         Ok(Some(DnsTarget::new("203.0.113.20")))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let report = verify_propagation(
///     &AlreadySwitched,
///     &DnsRecordId::new("shop.example.com"),
///     &DnsTarget::new("203.0.113.20"),
///     Duration::from_secs(60),
///     PropagationOptions::default(),
/// )
/// .await
/// .unwrap();
/// assert!(report.stragglers().is_empty());
/// assert_eq!(report.effective_cutover, Duration::from_secs(60)); // the old TTL, waited out
/// # }
/// ```
pub async fn verify_propagation<R: AuthoritativeResolver + ?Sized>(
    resolver: &R,
    record: &DnsRecordId,
    new_target: &DnsTarget,
    old_ttl: Duration,
    options: PropagationOptions,
) -> ProviderResult<PropagationReport> {
    let start = tokio::time::Instant::now();
    let servers = resolver.nameservers(record).await?;
    if servers.is_empty() {
        return Err(ProviderError::new(
            ErrorKind::InvalidInput,
            "propagation",
            "nameservers",
            format!("no authoritative server is known for {record}; give the zone's nameservers explicitly"),
        ));
    }
    let mut seen: Vec<Option<Duration>> = vec![None; servers.len()];
    let mut last_answer: Vec<String> = vec![String::from("no answer yet"); servers.len()];
    loop {
        for (i, server) in servers.iter().enumerate() {
            if seen[i].is_some() {
                continue;
            }
            match resolver.lookup(server, record).await {
                Ok(Some(t)) if &t == new_target => seen[i] = Some(start.elapsed()),
                Ok(Some(t)) => last_answer[i] = format!("serves {t}"),
                Ok(None) => last_answer[i] = "serves no record".to_owned(),
                Err(e) => last_answer[i] = format!("query failed: {e}"),
            }
        }
        if seen.iter().all(Option::is_some) {
            break;
        }
        if start.elapsed() >= options.deadline {
            let behind: Vec<String> = servers
                .iter()
                .zip(&seen)
                .zip(&last_answer)
                .filter(|((_, s), _)| s.is_none())
                .map(|((server, _), answer)| format!("{server} ({answer})"))
                .collect();
            return Err(ProviderError::new(
                ErrorKind::Timeout,
                "propagation",
                "verify",
                format!(
                    "{record} -> {new_target} not served by every authoritative server after {:?}; behind: {}. \
                     Check zone transfers (NOTIFY/IXFR) to those servers; clients may still reach the old site",
                    options.deadline,
                    behind.join(", ")
                ),
            ));
        }
        tokio::time::sleep(options.poll_interval).await;
    }
    let per_server: Vec<ServerPropagation> = servers
        .into_iter()
        .zip(seen)
        .map(|(server, s)| {
            let after = s.unwrap_or_default();
            ServerPropagation { server, serving_new_after: after, straggler: after > options.straggler_after }
        })
        .collect();
    let all_servers_after = per_server.iter().map(|s| s.serving_new_after).max().unwrap_or_default();
    let ttl_waited = if options.wait_out_ttl {
        let until = all_servers_after + old_ttl;
        let elapsed = start.elapsed();
        if until > elapsed {
            tokio::time::sleep(until - elapsed).await;
        }
        old_ttl
    } else {
        Duration::ZERO
    };
    Ok(PropagationReport {
        record: record.clone(),
        new_target: new_target.clone(),
        servers: per_server,
        all_servers_after,
        ttl_waited,
        effective_cutover: all_servers_after + ttl_waited,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// Each server switches to the new value at its own time (None = never).
    #[derive(Debug)]
    struct Scripted {
        start: tokio::time::Instant,
        switch_at: HashMap<String, Option<Duration>>,
        failures: Mutex<u32>,
    }

    impl Scripted {
        fn new(servers: &[(&str, Option<u64>)]) -> Self {
            Self {
                start: tokio::time::Instant::now(),
                switch_at: servers.iter().map(|(s, t)| (s.to_string(), t.map(Duration::from_secs))).collect(),
                failures: Mutex::new(0),
            }
        }
    }

    #[async_trait]
    impl AuthoritativeResolver for Scripted {
        async fn nameservers(&self, _: &DnsRecordId) -> ProviderResult<Vec<String>> {
            let mut v: Vec<String> = self.switch_at.keys().cloned().collect();
            v.sort();
            Ok(v)
        }
        async fn lookup(&self, server: &str, _: &DnsRecordId) -> ProviderResult<Option<DnsTarget>> {
            if server == "flaky" {
                let mut f = self.failures.lock().unwrap();
                *f += 1;
                if *f < 3 {
                    return Err(ProviderError::new(ErrorKind::Transient, "t", "lookup", "reset"));
                }
            }
            let switched = self.switch_at.get(server).copied().flatten().is_some_and(|t| self.start.elapsed() >= t);
            Ok(Some(DnsTarget::new(if switched { "new" } else { "old" })))
        }
    }

    fn opts() -> PropagationOptions {
        PropagationOptions {
            straggler_after: Duration::from_secs(5),
            deadline: Duration::from_secs(60),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_server_is_a_straggler_and_the_ttl_counts_from_it() {
        let r = Scripted::new(&[("ns1", Some(0)), ("ns2", Some(12))]);
        let t0 = tokio::time::Instant::now();
        let rep =
            verify_propagation(&r, &"a.example".into(), &"new".into(), Duration::from_secs(30), opts()).await.unwrap();
        assert_eq!(rep.stragglers(), vec!["ns2"]);
        assert_eq!(rep.servers[0].serving_new_after, Duration::ZERO);
        assert_eq!(rep.all_servers_after, Duration::from_secs(12));
        assert_eq!(rep.effective_cutover, Duration::from_secs(42));
        assert_eq!(t0.elapsed(), Duration::from_secs(42), "returns only once the TTL ran out");
    }

    #[tokio::test(start_paused = true)]
    async fn a_server_that_never_switches_times_out_naming_it() {
        let r = Scripted::new(&[("ns1", Some(0)), ("ns2", None)]);
        let err = verify_propagation(&r, &"a.example".into(), &"new".into(), Duration::from_secs(30), opts())
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Timeout);
        assert!(err.message().contains("ns2 (serves old)"), "{err}");
        assert!(!err.message().contains("ns1 ("), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn query_errors_are_retried_and_skipping_the_ttl_is_reported() {
        let r = Scripted::new(&[("flaky", Some(0))]);
        let o = PropagationOptions { wait_out_ttl: false, ..opts() };
        let rep = verify_propagation(&r, &"a.example".into(), &"new".into(), Duration::from_secs(30), o).await.unwrap();
        assert_eq!(rep.servers[0].serving_new_after, Duration::from_secs(2), "two failed polls, one second apart");
        assert_eq!(rep.ttl_waited, Duration::ZERO);
        assert_eq!(rep.effective_cutover, Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn no_nameserver_is_invalid_input() {
        let r = Scripted::new(&[]);
        let err = verify_propagation(&r, &"a.example".into(), &"new".into(), Duration::ZERO, opts()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
