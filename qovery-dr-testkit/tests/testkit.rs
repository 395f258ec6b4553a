//! The testkit's own tests: the four conformance suites against the
//! in-memory implementations, and the simulated world's behaviour.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod testkit {
    mod conformance;
    mod layers;
    mod lock_conformance;
    mod pg_launcher;
    mod world;
}
