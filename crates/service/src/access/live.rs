//! The policy set in force, replaceable while the server runs.

use std::sync::{Arc, RwLock};

use phivault_policy::Policies;

/// The policies in force. A reload that fails validation never gets here: the caller keeps
/// the last good set and reports the error.
#[derive(Debug)]
pub struct LivePolicies {
    current: RwLock<Arc<Policies>>,
}

impl LivePolicies {
    /// Starts with `policies`.
    pub fn new(policies: Policies) -> Self {
        Self { current: RwLock::new(Arc::new(policies)) }
    }

    /// The set in force now.
    pub fn current(&self) -> Arc<Policies> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            // A panic while swapping cannot leave a half-written Arc: the value is whole.
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts a validated set in force.
    pub fn replace(&self, policies: Policies) {
        let next = Arc::new(policies);
        match self.current.write() {
            Ok(mut guard) => *guard = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }
}
