//! dry_run
