//! The PostgreSQL test launcher survives losing its port to another process between
//! choosing it and binding it (seen once with etcd's launcher under a parallel load).

use std::net::TcpListener;

use qovery_dr_testkit::pg_server::{PgInstance, free_port};

#[test]
fn a_start_that_lost_its_port_starts_again_on_a_fresh_one() {
    // Another process holds the first port the launcher picks.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port();
    let mut picks = vec![taken_port];
    let pg = PgInstance::start_on_ports("", || match picks.pop() {
        Some(p) => Ok(p),
        None => free_port(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(pg.port(), taken_port, "started on a fresh port");
    assert!(std::net::TcpStream::connect(("127.0.0.1", pg.port())).is_ok(), "the server listens");
    // Three ports all taken: the launcher gives up and says why.
    let e = PgInstance::start_on_ports("", || Ok(taken_port)).unwrap_err();
    assert!(e.contains("three starts on fresh ports"), "{e}");
}
