//! Every server a test starts is killed when the test process exits (see the testkit's reaper).

pub use qovery_dr_testkit::reaper::kill_when_tests_exit;
