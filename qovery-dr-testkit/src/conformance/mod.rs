//! Conformance suites (see the submodules).
