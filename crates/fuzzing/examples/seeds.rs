//! Writes the hand-made seed inputs of every fuzz target into `fuzz/corpus/<target>/`
//! (`cargo run -p phivault-fuzzing --example seeds`). Seeds are obviously fake data.

use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use phivault_audit::checkpoint::CheckpointSigner;
use phivault_crypto::{KeyFile, KeyFileProtection};
use serde_json::json;

fn write(root: &Path, target: &str, name: &str, bytes: &[u8]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).expect("corpus dir");
    std::fs::write(dir.join(name), bytes).expect("seed");
}

fn main() {
    let root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let patient = json!({"resourceType": "Patient", "id": "daffy-1", "name": [{"family": "Duck", "given": ["Daffy"]}],
        "birthDate": "1937-04-17", "gender": "male",
        "identifier": [{"system": "http://hospital.example/mrn", "value": "123456789"},
                       {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-11-2233"}],
        "telecom": [{"system": "phone", "value": "555-0100"}],
        "address": [{"line": ["1 Looney Lane"], "city": "Burbank", "postalCode": "91505"}]});
    let observation = json!({"resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": "Patient/daffy-1"}, "effectiveDateTime": "2026-12-01T10:00:00Z",
        "valueQuantity": {"value": 1.50, "unit": "kg"}, "note": [{"text": "Seen by Dr. Elmer Fudd for Daffy Duck, call 555-0100"}]});
    for (name, value) in [("patient.json", &patient), ("observation.json", &observation)] {
        write(&root, "fhir_resource", name, value.to_string().as_bytes());
        write(&root, "deid_resource", name, value.to_string().as_bytes());
    }
    let transaction = json!({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:0a4f2b5e-1111-4c3d-9e8f-000000000001", "resource": patient, "request": {"method": "POST", "url": "Patient", "ifNoneExist": "identifier=http://hospital.example/mrn|123456789"}},
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
            "subject": {"reference": "urn:uuid:0a4f2b5e-1111-4c3d-9e8f-000000000001"}}, "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Patient", "id": "porky-1", "name": [{"family": "Pig"}]}, "request": {"method": "PUT", "url": "Patient/porky-1", "ifMatch": "W/\"1\""}}]});
    let batch = json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "pulse"},
            "subject": {"reference": "Patient?identifier=http://hospital.example/mrn|123456789"}}, "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Patient"}, "request": {"method": "DELETE", "url": "Patient/x"}}]});
    write(&root, "fhir_bundle", "transaction.json", transaction.to_string().as_bytes());
    write(&root, "fhir_bundle", "batch.json", batch.to_string().as_bytes());

    for (i, (kind, query)) in [
        (0u8, "name=Duck&birthdate=ge1930-01-01&_count=10&_sort=-birthdate"),
        (1, "identifier=urn:oid:2.16.840.1.113883.4.1|999-11-2233&family:exact=Duck"),
        (2, "patient=Patient/daffy-1&code=http://loinc.org|29463-7&date=lt2026-12-01T10:00:00Z&value-quantity=gt1.5"),
        (3, "_since=2026-01-01T00:00:00Z&_at=2026&_count=0&_summary=count"),
        (4, "_id=a,b,c&_lastUpdated=ge2026-11&name:contains=uck&address-city=Burbank"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut bytes = vec![kind];
        bytes.extend_from_slice(query.as_bytes());
        write(&root, "search_query", &format!("query-{i}"), &bytes);
    }

    write(&root, "page_cursor", "garbage", b"not-a-cursor\0name=Duck&_count=5");
    write(&root, "page_cursor", "sealed-shape", b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\0_id=daffy-1");

    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).expect("key");
    let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).expect("key");
    let header = json!({"alg": "ES384", "kid": "k1", "typ": "JWT"});
    let claims = json!({"iss": "client-1", "sub": "client-1", "aud": "https://phivault.example/oauth/token", "jti": "abc", "exp": 1_900_000_000});
    let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
    let token = format!("{input}.{}", B64.encode(key.sign(&rng, input.as_bytes()).expect("sign").as_ref()));
    let point = key.public_key().as_ref();
    let jwks = json!({"keys": [{"kty": "EC", "crv": "P-384", "kid": "k1", "x": B64.encode(&point[1..49]), "y": B64.encode(&point[49..97])}]});
    write(&root, "jwt_assertion", "es384", format!("{token}\0{jwks}").as_bytes());
    let rs = json!({"alg": "RS384", "kid": "k2"});
    write(
        &root,
        "jwt_assertion",
        "rs384-unsigned",
        format!("{}.{}.AAAA", B64.encode(rs.to_string()), B64.encode("{}")).as_bytes(),
    );

    for (i, form) in [
        "grant_type=authorization_code&code=abc&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&code_verifier=xyz&scope=patient%2F*.rs+openid+fhirUser",
        "response_type=code&client_id=app&scope=user%2FObservation.cruds+patient%2FPatient.read+launch%2Fpatient+offline_access&state=s&aud=https%3A%2F%2Fphivault.example%2Ffhir",
        "grant_type=client_credentials&scope=system%2F*.rs&registered=system%2FPatient.r+system%2FObservation.*",
    ]
    .into_iter()
    .enumerate()
    {
        write(&root, "oauth_form", &format!("form-{i}"), form.as_bytes());
    }

    let dir = tempfile::tempdir().expect("temp");
    let path = dir.path().join("keys.json");
    KeyFile::create(&path, KeyFileProtection::InsecurePlaintext, 1_800_000_000).expect("key file");
    write(&root, "key_file", "plaintext.json", &std::fs::read(&path).expect("read"));
    let sealed = dir.path().join("sealed.json");
    let kdf = phivault_crypto::KdfParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 };
    KeyFile::create(
        &sealed,
        KeyFileProtection::Passphrase { passphrase: "correct horse battery".into(), kdf },
        1_800_000_000,
    )
    .expect("sealed key file");
    write(&root, "key_file", "sealed.json", &std::fs::read(&sealed).expect("read"));

    let (signer, _) = CheckpointSigner::generate().expect("signer");
    let (_, export, witness) = phivault_fuzzing::honest_trail(&signer, 4, &[4]);
    write(&root, "audit_trail", "whole", format!("\0{export}\0{witness}").as_bytes());
    write(&root, "audit_trail", "edits", &[1, 10, 0, b'x', 77, 1, b'0', 200, 0, b'"']);

    for (i, text) in [
        "Daffy Duck (MRN 123456789) was seen on 12/01/2026 by Dr. Elmer Fudd at 1 Looney Lane, Burbank CA 91505. Call 555-0100 or daffy@example.com.",
        "Henrik Lindqvist\nMüllerstraße 12\n4020 Liège, Belgium\nTel 0471 23 45 67",
        "SSN 999-11-2233; VIN 1HGCM82633A004352; IP 192.0.2.7; age 92",
    ]
    .into_iter()
    .enumerate()
    {
        write(&root, "deid_text", &format!("text-{i}"), text.as_bytes());
    }
    println!("seeds written to {}", root.display());
}
