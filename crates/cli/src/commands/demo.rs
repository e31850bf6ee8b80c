//! `phivault demo`: a throwaway data dir full of obviously fake patients, served on
//! https://127.0.0.1:8443.

use std::path::{Path, PathBuf};

use anyhow::Result;
use phivault_identity::{NewAccount, Role};

use super::serve::serve;

use super::import::{ImportSummary, import_paths, import_value};
use super::init::{InitOptions, init};
use crate::config::Config;
use crate::{progress, wiring};

/// Where the Synthea samples are looked for when `--samples` is not given.
const SAMPLE_CANDIDATES: [&str; 2] = ["../shared/fhir-samples/synthea", "shared/fhir-samples/synthea"];

/// One account per staff role, each with its own random temporary password (no shared or
/// default credentials even in a demo): `(username, role)`.
const DEMO_ACCOUNTS: [(&str, Role); 6] = [
    ("dr-demo", Role::Physician),
    ("nurse-demo", Role::Nurse),
    ("desk-demo", Role::FrontDesk),
    ("billing-demo", Role::Billing),
    ("research-demo", Role::Researcher),
    ("privacy-demo", Role::PrivacyOfficer),
];

/// What a demo loaded, and the sign-in details to show once.
#[derive(Debug)]
pub struct Prepared {
    pub config: Config,
    pub summary: ImportSummary,
    pub samples: Option<PathBuf>,
    /// `(username, role, temporary password)`, the bootstrap admin first.
    pub accounts: Vec<(String, String, String)>,
}

/// Creates and loads a demo data dir, with one account per role.
pub async fn prepare(data_dir: &Path, samples: Option<&Path>) -> Result<Prepared> {
    let admin =
        init(&InitOptions { data_dir: data_dir.to_owned(), insecure_dev_keys: true, database: None, hsm: None })
            .await?;
    let mut accounts: Vec<(String, String, String)> =
        admin.into_iter().map(|a| (a.username, "admin".to_owned(), a.password)).collect();
    let config = Config::load(data_dir)?;
    let services = wiring::open(&config).await?;
    let bundles = phivault_demo::fake_patient_bundles();
    let bar = progress::bar(bundles.len() as u64, "demo data");
    let mut summary = ImportSummary::default();
    let started = std::time::Instant::now();
    for bundle in bundles {
        import_value(&services.records, bundle, "demo patients", &mut summary, &bar).await;
    }
    bar.finish_and_clear();
    summary.elapsed = started.elapsed();
    let samples =
        samples.map(Path::to_owned).or_else(|| SAMPLE_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_dir()));
    if let Some(dir) = &samples {
        let synthea = import_paths(&services.records, std::slice::from_ref(dir)).await?;
        summary.created += synthea.created;
        summary.existing += synthea.existing;
        summary.failed += synthea.failed;
        summary.problems.extend(synthea.problems);
        summary.files += synthea.files;
        summary.elapsed += synthea.elapsed;
    }
    for (username, role) in DEMO_ACCOUNTS {
        let account = NewAccount {
            username: username.into(),
            display_name: format!("Demo {}", role.as_str().replace('_', " ")),
            roles: vec![role],
            patient_id: None,
            password: None,
        };
        let (created, password) = services.identity.create_user(account).await?;
        if let Some(password) = password {
            accounts.push((username.to_owned(), role.as_str().to_owned(), password));
        }
        if matches!(role, Role::Physician | Role::Nurse) {
            assign_fake_patients(&services, &created.id).await?;
        }
    }
    // A patient account for Daffy Duck, the first cartoon patient: the portal's pages.
    let query = [("family".to_owned(), "Duck".to_owned()), ("given".to_owned(), "Daffy".to_owned())];
    let request = phivault_fhir::search::parse_search("Patient", &query, true)?;
    if let Some(daffy) = services.records.search("Patient", &request, 0).await?.resources.first() {
        let account = NewAccount {
            username: "patient-demo".into(),
            display_name: "Daffy Duck".into(),
            roles: vec![Role::Patient],
            patient_id: Some(daffy.id.clone()),
            password: None,
        };
        let (_, password) = services.identity.create_user(account).await?;
        if let Some(password) = password {
            accounts.push(("patient-demo".to_owned(), "patient".to_owned(), password));
        }
    }
    services.store.close().await;
    Ok(Prepared { config, summary, samples, accounts })
}

/// Puts a demo clinician on the care team of every obviously fake demo patient (not the
/// Synthea ones: those show what a clinician without a relationship cannot see).
async fn assign_fake_patients(services: &wiring::Services, user_id: &str) -> Result<()> {
    use phivault_service::access::{AccessStore, Assignment, AssignmentKind};
    let query = [("_count".to_owned(), "1000".to_owned())];
    let request = phivault_fhir::search::parse_search("Patient", &query, false)?;
    let page = services.records.search("Patient", &request, 0).await?;
    for patient in &page.resources {
        let is_fake =
            patient.body["identifier"].as_array().into_iter().flatten().any(|i| {
                i["system"].as_str().is_some_and(|s| s.starts_with(phivault_demo::DEMO_IDENTIFIER_SYSTEM_PREFIX))
            });
        if is_fake {
            services
                .store
                .assign(&Assignment {
                    kind: AssignmentKind::CareTeam,
                    user_id: user_id.to_owned(),
                    value: patient.id.clone(),
                    assigned_by: "demo".into(),
                    assigned_ms: services.identity.now_ms(),
                })
                .await?;
        }
    }
    Ok(())
}

/// Prepares the demo data dir, reports what was loaded, and serves it on `listen` unless
/// `no_serve`.
pub async fn run(dir: &Path, samples: Option<&Path>, listen: &str, no_serve: bool) -> Result<()> {
    let Prepared { mut config, summary, samples, accounts } = prepare(dir, samples).await?;
    println!("demo data dir: {} (throwaway; keys are NOT sealed)", dir.display());
    println!(
        "loaded {} resources ({} already present, {} failed){}",
        summary.created,
        summary.existing,
        summary.failed,
        samples.map(|s| format!(", including Synthea samples from {}", s.display())).unwrap_or_default()
    );
    for problem in summary.problems.iter().take(10) {
        eprintln!("  {problem}");
    }
    let base = std::env::var("PHIVAULT_PUBLIC_BASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map_or_else(|| format!("https://{listen}"), |v| v.trim_end_matches('/').to_owned());
    println!("sign in at {base}/login (self-signed certificate: accept it). Temporary passwords, shown once:");
    for (username, role, password) in &accounts {
        println!("  {username:<14} {role:<16} {password}");
    }
    println!(
        "at first sign-in you choose a new password and set up an authenticator app (any TOTP app, or oathtool); \
         then clinicians and the front desk work at {base}/patients, patient-demo (Daffy Duck's own account) at \
         {base}/my-record, the privacy officer at {base}/review"
    );
    if no_serve {
        return Ok(());
    }
    config.server.listen = listen.to_owned();
    config.server.public_base_url = base;
    let services = wiring::open(&config).await?;
    serve(dir, &config, services).await
}
