//! # qovery-dr-testkit
//!
//! Test DR code without a cloud: a simulated [`World`] (clusters,
//! environments, replicated databases, registries, DNS) behind in-memory
//! implementations of the four `qovery-dr-core` provider traits, fault
//! injection on any operation, a call [`Recorder`] with safety invariants,
//! and conformance suites any implementation (yours included) can run.
//!
//! All waiting uses tokio time: use `#[tokio::test(start_paused = true)]` and a
//! one-hour failover runs in milliseconds.
//!
//! ```
//! use qovery_dr_testkit::{World, memory::InMemoryDns};
//! use qovery_dr_core::provider::DnsSwitcher;
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let world = World::new();
//! world.add_record("shop.example.com", "203.0.113.10", std::time::Duration::from_secs(60));
//! let dns = InMemoryDns::new(&world);
//! let rec = dns.current(&"shop.example.com".into()).await.unwrap();
//! assert_eq!(rec.target.as_str(), "203.0.113.10");
//! assert_eq!(world.recorder().calls().len(), 1);
//! # }
//! ```

// The README's Rust blocks compile as doc tests of this crate (it depends on the core).
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

#[cfg(feature = "wiremock")]
pub mod cloudflare_fake;
pub mod conformance;
pub mod etcd_server;
pub mod fault;
#[cfg(feature = "local-stack")]
pub mod local_stack;
pub mod memory;
pub mod pg_server;
#[cfg(feature = "wiremock")]
pub mod qovery_fake;
pub mod reaper;
pub mod recorder;
#[cfg(feature = "wiremock")]
pub mod route53_fake;
pub mod world;

pub use fault::{ChaosOptions, ChaosSchedule, FaultAction, FaultInjector, FaultLayer, Trigger};
pub use recorder::{Call, Recorder, RecordingLayer, Violation};
pub use world::state;
pub use world::{PlanWorld, World, WorldConfig};
