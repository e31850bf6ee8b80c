//! When the database fails half-way through a batch, the response says exactly which
//! entries were stored: nothing acknowledged that was not stored.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use phivault_crypto::BlindTerm;
use phivault_service::{
    DataKeyRewrap, RecordError, RecordStore, Records, StaticKeySource, StoreError, StoreQuery, StoredDataKey,
    StoredVersion, SystemClock, VersionWrite,
};
use phivault_store::SqlStore;
use phivault_testkit::{engines, fresh_store, test_ring};
use serde_json::json;

/// A store whose commits fail from the `fail_from`-th one on (counting from 1).
#[derive(Debug)]
struct FailingStore {
    inner: SqlStore,
    commits: AtomicUsize,
    fail_from: usize,
}

#[async_trait]
impl RecordStore for FailingStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
    async fn data_key(&self, scope: &str) -> Result<Option<StoredDataKey>, StoreError> {
        self.inner.data_key(scope).await
    }
    async fn read(&self, t: &str, id: &str, v: Option<i64>) -> Result<Option<StoredVersion>, StoreError> {
        self.inner.read(t, id, v).await
    }
    async fn history(
        &self,
        t: &str,
        id: Option<&str>,
        f: &[phivault_service::Filter],
        o: u64,
        l: u64,
    ) -> Result<(Vec<StoredVersion>, u64), StoreError> {
        self.inner.history(t, id, f, o, l).await
    }
    async fn search(&self, query: &StoreQuery) -> Result<(Vec<StoredVersion>, u64), StoreError> {
        self.inner.search(query).await
    }
    async fn scan_versions(
        &self,
        after: Option<&phivault_service::VersionKey>,
        limit: u64,
    ) -> Result<Vec<phivault_service::ScannedVersion>, StoreError> {
        self.inner.scan_versions(after, limit).await
    }
    async fn version_count(&self) -> Result<u64, StoreError> {
        self.inner.version_count().await
    }
    async fn compartments(&self, query: &StoreQuery) -> Result<Vec<String>, StoreError> {
        self.inner.compartments(query).await
    }
    async fn compartment_activity(&self, patient_id: &str) -> Result<Vec<(String, i64)>, StoreError> {
        self.inner.compartment_activity(patient_id).await
    }
    async fn ids_by_terms(
        &self,
        t: &str,
        p: &str,
        terms: &[BlindTerm],
    ) -> Result<Vec<(BlindTerm, String)>, StoreError> {
        self.inner.ids_by_terms(t, p, terms).await
    }
    async fn commit(
        &self,
        keys: &[StoredDataKey],
        writes: &[VersionWrite],
        entry: Option<&phivault_service::PendingEntry>,
    ) -> Result<(), StoreError> {
        if self.commits.fetch_add(1, Ordering::SeqCst) + 1 >= self.fail_from {
            return Err(StoreError::Unavailable(Box::new(std::io::Error::other("disk full"))));
        }
        self.inner.commit(keys, writes, entry).await
    }
    async fn data_keys_not_under(&self, kek: &str, limit: u64) -> Result<Vec<StoredDataKey>, StoreError> {
        self.inner.data_keys_not_under(kek, limit).await
    }
    async fn rewrap_data_keys(&self, rewraps: &[DataKeyRewrap]) -> Result<u64, StoreError> {
        self.inner.rewrap_data_keys(rewraps).await
    }
    async fn data_keys_per_kek(&self) -> Result<Vec<(String, u64)>, StoreError> {
        self.inner.data_keys_per_kek().await
    }
    async fn destroy_data_key(
        &self,
        scope: &str,
        c: Option<&str>,
        now: i64,
        entry: Option<&phivault_service::PendingEntry>,
    ) -> Result<bool, StoreError> {
        self.inner.destroy_data_key(scope, c, now, entry).await
    }
}

#[tokio::test]
async fn a_batch_whose_second_group_fails_reports_exactly_what_was_stored() {
    for engine in engines() {
        let (store, _db, _) = fresh_store(engine).await;
        let failing = FailingStore { inner: store.clone(), commits: AtomicUsize::new(0), fail_from: 2 };
        let ring = Arc::new(StaticKeySource(Arc::new(test_ring())));
        let records = Records::new(Arc::new(failing), ring.clone(), Arc::new(SystemClock));
        // 1,500 entries: the first group of 1,000 commits, the second fails.
        let entries: Vec<_> = (0..1500)
            .map(|i| json!({"resource": {"resourceType": "Organization", "name": format!("Org {i}")}, "request": {"method": "POST", "url": "Organization"}}))
            .collect();
        let outcome = records
            .process_bundle(json!({"resourceType": "Bundle", "type": "batch", "entry": entries}))
            .await
            .expect("batch answered");
        let stored: Vec<&str> =
            outcome.entries.iter().filter_map(|e| e.as_ref().ok()).map(|e| e.resource.id.as_str()).collect();
        let failed = outcome.entries.iter().filter(|e| matches!(e, Err(RecordError::Store(_)))).count();
        assert_eq!((stored.len(), failed), (1000, 500), "{engine}");

        let healthy = Records::new(Arc::new(store), ring, Arc::new(SystemClock));
        for id in &stored {
            assert!(
                healthy.read("Organization", id, None).await.is_ok(),
                "{engine}: acknowledged entry {id} is stored"
            );
        }
        let all = phivault_fhir::search::parse_search("Organization", &[], true).expect("query");
        assert_eq!(
            healthy.search("Organization", &all, 0).await.expect("search").total,
            1000,
            "{engine}: nothing unacknowledged stored"
        );
    }
}
