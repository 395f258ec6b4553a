//! The failover engine and readiness against the simulated world: every
//! mode, every interlock, dry run, chaos, crash and resume, every check.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod engine {
    mod chaos;
    pub mod common;
    mod custom;
    mod databases;
    mod document;
    mod drill_checks;
    mod dry_run;
    mod epoch;
    mod golden;
    mod images;
    mod interlocks;
    mod jobs;
    mod modes;
    mod monitor;
    mod options;
    mod readiness;
    mod reprotect;
    mod resume;
    mod retries;
}
