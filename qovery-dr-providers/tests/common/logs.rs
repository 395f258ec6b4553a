//! Everything a test binary logs, at TRACE, for every crate (`tracing` events and `log`
//! records: reqwest, hyper, tokio-postgres), so tests can prove no secret reached a log.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// The buffer every log line of this test binary goes to (installed on first use).
pub fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buffer);
        // `try_init` also routes the `log` crate's records here.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(Arc::clone(&sink)))
            .try_init()
            .unwrap();
        buffer
    })
}

/// The logs so far, as text.
pub fn text() -> String {
    String::from_utf8_lossy(&logs().lock().unwrap()).into_owned()
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
