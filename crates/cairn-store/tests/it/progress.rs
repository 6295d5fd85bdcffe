//! Long work reports progress and stops when asked: the audit verification on both backends.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cairn_core::model::{Actor, NewRun};
use cairn_core::progress::Progress;
use cairn_core::store::Store;

/// Counts what it is told; cancels from the start when `stop` is set.
#[derive(Default)]
struct Recorder {
    total: AtomicU64,
    done: AtomicU64,
    stop: bool,
}

impl Progress for Recorder {
    fn phase(&self, name: &str, total: Option<u64>) {
        if name == "audit events" {
            self.total.store(total.unwrap_or(u64::MAX), Ordering::SeqCst);
        }
    }
    fn advance(&self, units: u64) {
        self.done.fetch_add(units, Ordering::SeqCst);
    }
    fn cancelled(&self) -> bool {
        self.stop
    }
}

pub async fn verification_reports_every_event_and_stops_when_asked(store: Arc<dyn Store>) {
    let actor = Actor("tester".to_owned());
    for _ in 0..5 {
        let new = NewRun { experiment_id: "0".into(), user_id: "u".into(), start_time: Some(1), ..Default::default() };
        store.create_run(&actor, new).await.unwrap();
    }
    let events = store.audit_events(0, 10_000).await.unwrap().len() as u64;

    let watched = Arc::new(Recorder::default());
    let report = store.verify_audit_with(watched.clone()).await.unwrap().expect("not cancelled");
    assert!(report.is_ok());
    assert_eq!(watched.total.load(Ordering::SeqCst), events);
    assert_eq!(watched.done.load(Ordering::SeqCst), events, "every event counted once");

    let stopped = Arc::new(Recorder { stop: true, ..Recorder::default() });
    assert!(store.verify_audit_with(stopped.clone()).await.unwrap().is_none(), "no verdict when stopped");
    assert_eq!(stopped.done.load(Ordering::SeqCst), 0);
}

macro_rules! progress_cases {
    ($fixture:path) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn verification_reports_every_event_and_stops_when_asked() {
            let (store, _guard) = $fixture().await;
            super::verification_reports_every_event_and_stops_when_asked(store).await;
        }
    };
}

mod sqlite {
    progress_cases!(crate::sqlite::fixture);
}

mod postgres {
    progress_cases!(crate::postgres::fixture);
}
