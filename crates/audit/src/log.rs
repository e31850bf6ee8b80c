//! The audit log writer: callers wait until their entry is durably stored (fail closed),
//! while concurrent entries share one transaction (group commit).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::AuditEvent;
use crate::ports::AuditStore;

/// Appending failed: the audited action must not be reported as done.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the audit trail could not be written")]
pub struct AuditUnavailable;

type Pending = (i64, Vec<u8>, oneshot::Sender<Result<u64, AuditUnavailable>>);

/// Handle to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Pending>,
    node: Arc<str>,
    store: Arc<dyn AuditStore>,
}

/// Most entries one transaction takes.
const GROUP_MAX: usize = 512;

impl AuditLog {
    /// Starts the writer task on the current runtime.
    pub fn start(store: Arc<dyn AuditStore>, node: &str) -> Self {
        let (tx, mut rx) = mpsc::channel::<Pending>(8192);
        let reader = store.clone();
        tokio::spawn(async move {
            let mut batch: Vec<Pending> = Vec::with_capacity(GROUP_MAX);
            while let Some(first) = rx.recv().await {
                batch.push(first);
                // Let request tasks that are about to record run first: with a few clients
                // in flight, their entries join this commit instead of waiting for the next.
                tokio::task::yield_now().await;
                // Take whatever else is already waiting: one commit for the whole group.
                while batch.len() < GROUP_MAX {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let entries: Vec<(i64, Vec<u8>)> = batch.iter().map(|(t, b, _)| (*t, b.clone())).collect();
                let result = store.append_audit(&entries).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, entries = entries.len(), "audit append failed; the audited requests fail");
                }
                for (i, (_, _, ack)) in batch.drain(..).enumerate() {
                    let _ = ack.send(result.as_ref().map(|first| first + i as u64).map_err(|_| AuditUnavailable));
                }
            }
        });
        Self { tx, node: node.into(), store: reader }
    }

    /// The store the trail is written to (for reading it back: search, accounting).
    pub fn store(&self) -> &Arc<dyn AuditStore> {
        &self.store
    }

    /// The name this process writes into entries.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Records `event`; returns its sequence number once it is durable.
    pub async fn record(&self, event: &AuditEvent) -> Result<u64, AuditUnavailable> {
        let (ack, done) = oneshot::channel();
        self.tx.send((event.time_ms, event.canonical_bytes(), ack)).await.map_err(|_| AuditUnavailable)?;
        done.await.map_err(|_| AuditUnavailable)?
    }
}
