//! Who might be a user's relative, found through the blind index: the activity review
//! alerts when staff open a record that shares their family name. No name is decrypted
//! or compared in the clear; the user's family name is turned into the same keyed term
//! the Patient index holds.

use std::collections::{HashMap, HashSet};

use phivault_fhir::search::{prefix_term, text_words};

use super::Records;
use crate::RecordError;

impl Records {
    /// For each `(user id, display name)`, the Patients whose family name is the display
    /// name's last word (or begins with it: the index holds prefixes, so "Duck" also finds
    /// "Duckworth"; an alert is a prompt for review, not a verdict).
    pub async fn patients_sharing_family_name(
        &self,
        users: &[(String, String)],
    ) -> Result<HashMap<String, HashSet<String>>, RecordError> {
        let index = self.keys.ring().blind_index();
        let mut users_by_term: HashMap<_, Vec<&str>> = HashMap::new();
        for (user, display_name) in users {
            // Two letters or fewer would match a large share of all patients.
            let Some(family) = text_words(display_name).pop().filter(|w| w.chars().count() > 2) else { continue };
            users_by_term.entry(index.term("family", &prefix_term(&family))).or_default().push(user);
        }
        let terms: Vec<_> = users_by_term.keys().copied().collect();
        let mut out: HashMap<String, HashSet<String>> = HashMap::new();
        if terms.is_empty() {
            return Ok(out);
        }
        for (term, patient) in self.store.ids_by_terms("Patient", "family", &terms).await? {
            for user in users_by_term.get(&term).into_iter().flatten() {
                out.entry((*user).to_owned()).or_default().insert(patient.clone());
            }
        }
        Ok(out)
    }
}
