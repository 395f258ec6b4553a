//! The ReplicationManager conformance suite on real servers.

use std::time::Duration;

use qovery_dr_testkit::conformance::replication::ReplicationFixture;

use super::setup::{self, DB, Pair};

async fn physical() -> ReplicationFixture<Pair> {
    ReplicationFixture {
        provider: setup::physical().await,
        database: DB.into(),
        catch_up_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
    }
}

async fn logical() -> ReplicationFixture<Pair> {
    ReplicationFixture {
        provider: setup::logical("CREATE TABLE orders (id serial PRIMARY KEY, note text)").await,
        database: DB.into(),
        catch_up_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
    }
}

qovery_dr_testkit::replication_manager_conformance!(physical_streaming, physical());
qovery_dr_testkit::replication_manager_conformance!(logical_replication, logical());

async fn dump() -> ReplicationFixture<Pair> {
    ReplicationFixture {
        provider: setup::dump().await,
        database: DB.into(),
        catch_up_timeout: Duration::from_secs(20),
        poll_interval: Duration::from_millis(50),
    }
}

qovery_dr_testkit::replication_manager_conformance!(dump_strategy, dump());
