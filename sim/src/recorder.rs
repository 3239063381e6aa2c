//! The shared record of a run: the history the checkers read and the trace of events in
//! order (whose hash is the run's fingerprint).

use crate::coverage::Coverage;
use crate::history::{History, Millis};
use std::sync::{Arc, Mutex};

/// Shared record of everything that happened, with the trace of events in order.
pub struct Recorder {
    start: tokio::time::Instant,
    pub history: History,
    pub trace: Vec<String>,
    /// Which fault kinds met which member states (not traced: it only reports).
    pub coverage: Coverage,
}

pub type SharedRecorder = Arc<Mutex<Recorder>>;

impl Recorder {
    pub fn new() -> SharedRecorder {
        Arc::new(Mutex::new(Recorder {
            start: tokio::time::Instant::now(),
            history: History::default(),
            trace: Vec::new(),
            coverage: Coverage::default(),
        }))
    }

    pub fn now_ms(&self) -> Millis {
        self.start.elapsed().as_millis() as Millis
    }

    pub fn note(&mut self, event: String) {
        let line = format!("{} {event}", self.now_ms());
        self.trace.push(line);
    }
}

pub fn now_ms(recorder: &SharedRecorder) -> Millis {
    recorder.lock().unwrap().now_ms()
}
