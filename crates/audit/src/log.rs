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

/// What the writer task is asked to do: append an entry, or chain what waits in the
/// store's outbox (entries committed with the writes they describe).
enum Job {
    Append(i64, Vec<u8>, oneshot::Sender<Result<u64, AuditUnavailable>>),
    Settle(oneshot::Sender<Result<u64, AuditUnavailable>>),
}

/// Handle to the writer task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<Job>,
    node: Arc<str>,
    store: Arc<dyn AuditStore>,
}

/// Most entries one transaction takes.
const GROUP_MAX: usize = 512;

impl AuditLog {
    /// Starts the writer task on the current runtime. Its first act chains whatever entries
    /// an earlier process committed with its writes but did not chain before it stopped.
    pub fn start(store: Arc<dyn AuditStore>, node: &str) -> Self {
        let (tx, mut rx) = mpsc::channel::<Job>(8192);
        let reader = store.clone();
        tokio::spawn(async move {
            if let Err(e) = store.append_audit(&[], true).await {
                tracing::error!(error = %e, "could not chain the audit entries a previous run left; the next write retries");
            }
            let mut batch: Vec<Job> = Vec::with_capacity(GROUP_MAX);
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
                let settle = batch.iter().any(|j| matches!(j, Job::Settle(_)));
                let entries: Vec<(i64, Vec<u8>)> = batch
                    .iter()
                    .filter_map(|j| match j {
                        Job::Append(t, b, _) => Some((*t, b.clone())),
                        Job::Settle(_) => None,
                    })
                    .collect();
                let result = store.append_audit(&entries, settle).await;
                if let Err(e) = &result {
                    tracing::error!(error = %e, entries = entries.len(), "audit append failed; the audited requests fail");
                }
                let mut next = 0u64;
                for job in batch.drain(..) {
                    let ack = match job {
                        Job::Append(_, _, ack) => {
                            next += 1;
                            (ack, next - 1)
                        }
                        Job::Settle(ack) => (ack, 0),
                    };
                    let _ = ack.0.send(result.as_ref().map(|first| first + ack.1).map_err(|_| AuditUnavailable));
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
        self.tx.send(Job::Append(event.time_ms, event.canonical_bytes(), ack)).await.map_err(|_| AuditUnavailable)?;
        done.await.map_err(|_| AuditUnavailable)?
    }

    /// Chains every entry committed so far with the writes it describes (the store's
    /// outbox); returns once they are in the trail. Those entries are durable before this
    /// is called: it only gives them their place in the hash chain.
    pub async fn settle(&self) -> Result<(), AuditUnavailable> {
        let (ack, done) = oneshot::channel();
        self.tx.send(Job::Settle(ack)).await.map_err(|_| AuditUnavailable)?;
        done.await.map_err(|_| AuditUnavailable)?.map(|_| ())
    }
}
