//! The cast: eight obviously fictional patients and every identifier planted in them.
//!
//! Everything here is fake on purpose: cartoon names, 555-01xx phone numbers (reserved for
//! fiction), SSNs in the never-issued 999 area, `example.org` mail and a made-up OID for MRNs.

/// One fictional patient's demographics.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Person {
    pub given: &'static [&'static str],
    pub family: &'static str,
    pub mrn: &'static str,
    pub ssn: &'static str,
    pub phone: &'static str,
    pub email: &'static str,
    /// FHIR administrative gender code.
    pub gender: &'static str,
    /// Birth date as (year, month, day).
    pub birth: (u16, u8, u8),
    pub street: &'static str,
}

impl Person {
    /// Given names followed by the family name, e.g. "Daffy Duck".
    pub fn full_name(&self) -> String {
        let mut parts: Vec<&str> = self.given.to_vec();
        parts.push(self.family);
        parts.join(" ")
    }

    /// Birth date in ISO 8601 form, e.g. "1937-04-17".
    pub fn birth_iso(&self) -> String {
        let (y, m, d) = self.birth;
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// Birth date in US form, e.g. "04/17/1937".
    pub fn birth_us(&self) -> String {
        let (y, m, d) = self.birth;
        format!("{m:02}/{d:02}/{y:04}")
    }

    /// Every identifying string of this person, in a stable order (may repeat across people).
    pub fn identifiers(&self) -> Vec<String> {
        let mut out = vec![self.family.to_owned()];
        out.extend(self.given.iter().map(|g| (*g).to_owned()));
        out.extend([self.mrn, self.ssn, self.phone, self.email, self.street].map(str::to_owned));
        out.push(self.birth_iso());
        out.push(self.birth_us());
        out
    }
}

/// Fake identifier system for medical record numbers (not a registered OID arc).
pub(crate) const MRN_SYSTEM: &str = "urn:oid:2.16.840.1.113883.3.9999.1";
/// Official FHIR identifier system for US social security numbers.
pub(crate) const SSN_SYSTEM: &str = "http://hl7.org/fhir/sid/us-ssn";
/// Shared fake city, state and postal code.
pub(crate) const CITY: &str = "Toontown";
pub(crate) const STATE: &str = "CA";
pub(crate) const POSTAL_CODE: &str = "00000";

/// The cast. Given names are whole words (no bare initials) so that byte-level
/// "no plaintext at rest" scans do not match short strings by accident.
pub(crate) const PEOPLE: [Person; 8] = [
    Person {
        given: &["Daffy"],
        family: "Duck",
        mrn: "123456789",
        ssn: "999-01-0001",
        phone: "555-0142",
        email: "daffy.duck@example.org",
        gender: "male",
        birth: (1937, 4, 17),
        street: "1 Looney Lane",
    },
    Person {
        given: &["Bugs"],
        family: "Bunny",
        mrn: "234567891",
        ssn: "999-02-0002",
        phone: "555-0143",
        email: "bugs.bunny@example.org",
        gender: "male",
        birth: (1940, 7, 27),
        street: "2 Carrot Court",
    },
    Person {
        given: &["Porky"],
        family: "Pig",
        mrn: "345678912",
        ssn: "999-03-0003",
        phone: "555-0144",
        email: "porky.pig@example.org",
        gender: "male",
        birth: (1935, 3, 2),
        street: "3 Pigpen Place",
    },
    Person {
        given: &["Elmer"],
        family: "Fudd",
        mrn: "456789123",
        ssn: "999-04-0004",
        phone: "555-0145",
        email: "elmer.fudd@example.org",
        gender: "male",
        birth: (1952, 12, 4),
        street: "4 Wabbit Way",
    },
    Person {
        given: &["Wile", "Ethelbert"],
        family: "Coyote",
        mrn: "567891234",
        ssn: "999-05-0005",
        phone: "555-0146",
        email: "wile.coyote@example.org",
        gender: "male",
        birth: (1949, 9, 17),
        street: "5 Acme Avenue",
    },
    Person {
        given: &["Tweety"],
        family: "Bird",
        mrn: "678912345",
        ssn: "999-06-0006",
        phone: "555-0147",
        email: "tweety.bird@example.org",
        gender: "unknown",
        birth: (2019, 11, 21),
        street: "6 Birdcage Boulevard",
    },
    Person {
        given: &["Yosemite"],
        family: "Sam",
        mrn: "789123456",
        ssn: "999-07-0007",
        phone: "555-0148",
        email: "yosemite.sam@example.org",
        gender: "male",
        birth: (1926, 5, 5),
        street: "7 Varmint Valley Road",
    },
    Person {
        given: &["Marvin"],
        family: "Martian",
        mrn: "891234567",
        ssn: "999-08-0008",
        phone: "555-0149",
        email: "marvin.martian@example.org",
        gender: "other",
        birth: (1988, 7, 24),
        street: "8 Illudium Drive",
    },
];
