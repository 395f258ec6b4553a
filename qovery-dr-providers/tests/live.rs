//! The whole, on real peers: plans turned into providers by `connect` and run
//! against a Qovery fake served over HTTP, PostgreSQL 15, docker-registry, Knot,
//! the Cloudflare fake and moto, all on 127.0.0.1.
#![cfg(all(
    feature = "qovery",
    feature = "postgres",
    feature = "registry",
    feature = "rfc2136",
    feature = "cloudflare",
    feature = "route53",
    feature = "ecr",
    feature = "etcd"
))]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "common/reaper.rs"]
mod reaper;

#[path = "common/logs.rs"]
mod logs;

#[allow(dead_code)]
mod pg {
    pub mod cluster;
}
#[allow(dead_code)]
mod reg {
    pub mod server;
}
#[allow(dead_code)]
mod dns {
    pub mod knot;
    pub mod moto;
}

#[cfg(feature = "rds")]
#[path = "common/aurora_moto.rs"]
mod aurora_moto;

mod whole {
    #[cfg(feature = "rds")]
    mod aurora;
    mod chaos;
    mod connect;
    mod e2e;
    mod resume;
    pub mod stack;
}
