//! The `phivault` binary: configuration, wiring and subcommands.

mod actor;
mod clock;
mod commands;
mod config;
mod keysource;
mod listing;
mod logging;
mod notify;
mod private_file;
mod progress;
mod wiring;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::config::Config;

/// mimalloc instead of the system allocator: bulk imports allocate and free heavily (JSON,
/// ciphertexts, rows); glibc's malloc/free were about 20 % of an import's profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// phivault: a self-hosted FHIR R4 health-records server with encryption at rest,
/// blind-indexed search and TLS built in. It supports an organization's HIPAA compliance;
/// it cannot confer it.
#[derive(Debug, Parser)]
#[command(name = "phivault", version, propagate_version = true)]
struct Cli {
    /// Data directory holding phivault.toml, the key file, TLS files and the SQLite database.
    #[arg(long, global = true, env = "PHIVAULT_DATA_DIR", default_value = "phivault-data")]
    data_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a data dir: configuration, sealed key file, self-signed TLS certificate for
    /// localhost, database with migrations, and a bootstrap admin whose password is shown once.
    Init {
        /// Store the keys unsealed. Only for throwaway demo data; every start warns about it.
        #[arg(long)]
        insecure_dev_keys: bool,
        /// Database URL instead of the embedded SQLite file (e.g. postgres://user@host/db).
        #[arg(long)]
        database: Option<String>,
        /// Keep the KEKs in a PKCS#11 HSM: path of the vendor's module
        /// (e.g. /usr/lib/softhsm/libsofthsm2.so). The PIN comes from PHIVAULT_HSM_PIN.
        #[arg(long, requires = "hsm_token")]
        hsm_module: Option<PathBuf>,
        /// Label of the PKCS#11 token holding the KEKs.
        #[arg(long, requires = "hsm_module")]
        hsm_token: Option<String>,
    },
    /// Serve the FHIR API, sign-in pages and admin API over HTTPS.
    Serve {
        /// Refuse every record write from this process (reads go on): during a restore, or
        /// on a degraded database. Responses say so in `X-Phivault-Mode`, pages in a banner.
        #[arg(long)]
        emergency_read_only: bool,
    },
    /// Emergency read-only mode for every node: on, off, status.
    Emergency {
        #[command(subcommand)]
        action: commands::emergency::EmergencyAction,
    },
    /// Create a throwaway data dir with obviously fake patients (and the Synthea samples if
    /// found), then serve it on https://127.0.0.1:8443.
    Demo {
        /// Use this directory instead of a new temporary one (must not hold a configuration).
        #[arg(long = "demo-dir")]
        demo_dir: Option<PathBuf>,
        /// Folder of Synthea bundles to load (default: ../shared/fhir-samples/synthea if present).
        #[arg(long)]
        samples: Option<PathBuf>,
        /// Address to serve on (default: PHIVAULT_LISTEN, else 127.0.0.1:8443).
        #[arg(long)]
        listen: Option<String>,
        /// Load the data and exit without serving.
        #[arg(long)]
        no_serve: bool,
    },
    /// Import FHIR Bundles (batch or transaction), single resources, or NDJSON files; folders
    /// are walked. Shows a progress bar on a terminal and prints a summary.
    Import {
        /// Files or folders to import.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Key management: status, KEK rotation, retirement, crypto-shredding.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Account administration: add, list, show, lock, unlock, deactivate, reset-password,
    /// reset-mfa, set-roles.
    User {
        #[command(subcommand)]
        action: commands::users::UserAction,
    },
    /// The audit trail: sign a checkpoint, verify the trail.
    Audit {
        #[command(subcommand)]
        action: commands::audit::AuditAction,
    },
    /// Backups: create, list, verify, restore, prune, drill (encrypted, deduplicated,
    /// signed; see docs/CONTINGENCY.md).
    Backup {
        #[command(subcommand)]
        action: commands::backup::BackupAction,
    },
    /// Alerts from the activity review rules: run them, list, review, flag patients.
    Alerts {
        #[command(subcommand)]
        action: commands::review::AlertAction,
    },
    /// Integrity of the stored records: scan.
    Integrity {
        #[command(subcommand)]
        action: commands::review::IntegrityAction,
    },
    /// OAuth client registration: SMART apps (public, PKCE) and backend services (JWT).
    Client {
        #[command(subcommand)]
        action: commands::clients::ClientAction,
    },
    /// De-identify files: plain-text notes (.txt and others) and FHIR NDJSON (.ndjson,
    /// .jsonl), into --out, by profile. Streams; shows progress on a terminal.
    Deid {
        /// Files to de-identify.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Folder for the de-identified files (same names).
        #[arg(long)]
        out: PathBuf,
        /// safe-harbor, limited-data-set, or a .toml profile.
        #[arg(long, default_value = "safe-harbor")]
        profile: String,
        /// Names always redacted in free text, one per line (e.g. the patients' roster).
        #[arg(long)]
        names: Option<PathBuf>,
        /// The project key (created when missing): pseudonyms are stable within a project
        /// and unlinkable across projects.
        #[arg(long)]
        key_file: PathBuf,
        /// In free text, write fake but consistent surrogates (invented names and towns,
        /// 555-01xx numbers, shifted month and day) instead of [NAME]-style placeholders.
        #[arg(long)]
        surrogates: bool,
    },
    /// Access policies (Cedar): check, test, explain.
    Policy {
        #[command(subcommand)]
        action: commands::policy::PolicyAction,
    },
    /// Care-team memberships, which open a patient's records to physicians and nurses.
    Careteam {
        #[command(subcommand)]
        action: commands::access::MembershipAction,
    },
    /// Department memberships (an Organization): physicians and nurses reach the patients
    /// with a recent Encounter there.
    Department {
        #[command(subcommand)]
        action: commands::access::MembershipAction,
    },
    /// Clearances for sensitive categories (behavioural health, substance use, HIV, ...).
    Clearance {
        #[command(subcommand)]
        action: commands::access::ClearanceAction,
    },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Show KEK ids, ages and how many data keys each wraps.
    Status,
    /// Create a new KEK and re-wrap every data key under it (resumable; safe while serving).
    Rotate,
    /// Destroy retired KEKs once no data key depends on them.
    DestroyRetired {
        /// Keep retired KEKs younger than this many days (old backups may need them).
        #[arg(long, default_value_t = 30)]
        older_than_days: i64,
    },
    /// Destroy one patient's data key: every version of their records becomes unrecoverable.
    ShredPatient {
        /// The Patient resource id.
        patient_id: String,
        /// Confirm that this cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A backup reads whole tables on purpose: sqlx's slow-statement warnings are noise there.
    logging::init(matches!(cli.command, Command::Backup { .. }));
    phivault_api::tls::install_crypto_provider();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init { insecure_dev_keys, database, hsm_module, hsm_token } => {
            let hsm = hsm_module.zip(hsm_token);
            let options =
                commands::init::InitOptions { data_dir: cli.data_dir.clone(), insecure_dev_keys, database, hsm };
            let admin = commands::init::init(&options).await?;
            println!("initialised {}", cli.data_dir.display());
            if let Some(admin) = admin {
                println!("bootstrap administrator: {}  password: {}", admin.username, admin.password);
                println!("this password is shown only once; it must be changed at first login");
            }
            Ok(())
        }
        Command::Serve { emergency_read_only } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            if emergency_read_only {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
                services.store.force_emergency_read_only(now);
                commands::audit::record_cli(&services.audit, "cli.serve.emergency_read_only", None, true).await?;
                tracing::warn!("serving in emergency read-only mode: record writes are refused");
            }
            commands::serve::serve(&cli.data_dir, &config, services).await
        }
        Command::Demo { demo_dir, samples, listen, no_serve } => {
            // A temporary dir is removed again when the demo ends; a named one is kept.
            let is_temporary = demo_dir.is_none();
            let dir = match demo_dir {
                Some(dir) => dir,
                None => std::env::temp_dir()
                    .join(format!("phivault-demo-{}", phivault_crypto::random_token(6)?.replace(['-', '_'], "x"))),
            };
            // The environment overrides the configuration, as for `serve`.
            let listen = listen
                .or_else(|| std::env::var("PHIVAULT_LISTEN").ok().filter(|v| !v.trim().is_empty()))
                .unwrap_or_else(|| "127.0.0.1:8443".to_owned());
            let result = commands::demo::run(&dir, samples.as_deref(), &listen, no_serve).await;
            // With --no-serve the data is what the caller wants: keep it.
            if is_temporary && !no_serve {
                let _ = std::fs::remove_dir_all(&dir);
            }
            result
        }
        Command::Import { paths } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let summary = commands::import::import_paths(&services.records, &paths).await;
            // One entry per run, with counts: an import creates records in bulk, outside any
            // user's session, and the trail must show that it happened and by whom.
            let reason = summary
                .as_ref()
                .map(|s| format!("files={} created={} existing={} failed={}", s.files, s.created, s.existing, s.failed))
                .ok();
            let ok = summary.as_ref().is_ok_and(|s| s.failed == 0);
            let audited =
                commands::audit::record_cli_with_reason(&services.audit, "cli.import", None, ok, reason).await;
            if summary.as_ref().is_ok_and(|s| s.created > 0)
                && let Err(e) = services.store.analyze().await
            {
                eprintln!("warning: could not refresh the database's statistics after the import: {e}");
            }
            services.store.close().await;
            let summary = summary?;
            audited?;
            println!(
                "imported {} files: {} created, {} already present, {} failed in {:.1} s ({:.0} resources/s)",
                summary.files,
                summary.created,
                summary.existing,
                summary.failed,
                summary.elapsed.as_secs_f64(),
                summary.rate()
            );
            for problem in &summary.problems {
                eprintln!("  {problem}");
            }
            if summary.failed > 0 {
                bail!("{} resources failed to import", summary.failed);
            }
            Ok(())
        }
        Command::Keys { action } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let (name, target) = match &action {
                KeysAction::Status => ("cli.keys.status", None),
                KeysAction::Rotate => ("cli.keys.rotate", None),
                KeysAction::DestroyRetired { .. } => ("cli.keys.destroy_retired", None),
                KeysAction::ShredPatient { patient_id, .. } => {
                    ("cli.keys.shred_patient", Some(format!("Patient/{patient_id}")))
                }
            };
            let result = match action {
                KeysAction::Status => commands::keys::status(&services).await,
                KeysAction::Rotate => commands::keys::rotate(&services).await,
                KeysAction::DestroyRetired { older_than_days } => {
                    commands::keys::destroy_retired(&services, older_than_days).await
                }
                KeysAction::ShredPatient { patient_id, yes } => {
                    if !yes {
                        bail!(
                            "shredding cannot be undone: repeat with --yes to destroy Patient/{patient_id}'s data key"
                        );
                    }
                    commands::keys::shred_patient(&services, &patient_id).await
                }
            };
            // A shredding that happened committed its entry with the act itself.
            let recorded_by_act = name == "cli.keys.shred_patient" && result.is_ok();
            let audited = if recorded_by_act {
                Ok(())
            } else {
                commands::audit::record_cli(&services.audit, name, target, result.is_ok()).await
            };
            services.store.close().await;
            result.context("key operation failed").and(audited)
        }
        Command::User { action } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let (name, target) = action.audit_name();
            let result = commands::users::run(&services.identity, action).await;
            // The account by its id, as every other entry names accounts: what was typed
            // (a username, or a mistake) is client text and never enters the trail as given.
            let target = match target {
                Some(typed) => Some(match services.identity.find_user(&typed).await {
                    Ok(user) => format!("user:{}", user.id),
                    Err(_) => "user:unknown".to_owned(),
                }),
                None => None,
            };
            let audited = commands::audit::record_cli(&services.audit, name, target, result.is_ok()).await;
            services.store.close().await;
            result.and(audited)
        }
        Command::Audit { action } => {
            let config = Config::load(&cli.data_dir)?;
            let store =
                phivault_store::SqlStore::connect(&config.database).await.context("cannot open the database")?;
            let result = commands::audit::run(&store, &config.audit, &config.key_file, action).await;
            store.close().await;
            result
        }
        Command::Backup { action } => commands::backup::run(&cli.data_dir, action).await,
        Command::Emergency { action } => {
            let config = Config::load(&cli.data_dir)?;
            let store =
                phivault_store::SqlStore::connect(&config.database).await.context("cannot open the database")?;
            let result = commands::emergency::run(&store, action).await;
            store.close().await;
            result
        }
        Command::Alerts { action } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let (name, target) = action.audit_name();
            let result = commands::review::alerts(&services, &config.review.rules, action).await;
            let audited = commands::audit::record_cli(&services.audit, name, target, result.is_ok()).await;
            services.store.close().await;
            result.and(audited)
        }
        Command::Integrity { action } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let result = commands::review::integrity(&services, action).await;
            services.store.close().await;
            result
        }
        Command::Client { action } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let (name, target) = action.audit_name();
            let result = commands::clients::run(&services.identity, action).await;
            let registered = result.as_ref().ok().cloned().flatten();
            let audited = commands::audit::record_cli(
                &services.audit,
                name,
                target.or(registered).map(|t| format!("client:{t}")),
                result.is_ok(),
            )
            .await;
            services.store.close().await;
            result.map(|_| ()).and(audited)
        }
        Command::Deid { inputs, out, profile, names, key_file, surrogates } => {
            let options = commands::deid::DeidOptions { inputs, out_dir: out, profile, names, key_file, surrogates };
            let (files, units) = commands::deid::run(&options)?;
            println!(
                "de-identified {files} file(s) ({units} resources or bytes of text) into {}",
                options.out_dir.display()
            );
            Ok(())
        }
        Command::Policy { action } => {
            let config = Config::load(&cli.data_dir)?;
            match action {
                commands::policy::PolicyAction::Check => commands::policy::check(&config.policy),
                commands::policy::PolicyAction::Test { cases } => commands::policy::test(&config.policy, &cases),
                commands::policy::PolicyAction::Explain { user, action, resource, patient, zone } => {
                    let services = wiring::open(&config).await?;
                    let result = commands::policy::explain(
                        &services,
                        &user,
                        &action,
                        resource.as_deref(),
                        patient.as_deref(),
                        &zone,
                    )
                    .await;
                    let target = resource.or(patient.map(|p| format!("Patient/{p}")));
                    let audited =
                        commands::audit::record_cli(&services.audit, "cli.policy.explain", target, result.is_ok())
                            .await;
                    services.store.close().await;
                    result.and(audited)
                }
            }
        }
        Command::Careteam { action } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let result = commands::access::membership(&services, commands::access::Membership::CareTeam, action).await;
            services.store.close().await;
            result
        }
        Command::Department { action } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let result =
                commands::access::membership(&services, commands::access::Membership::Department, action).await;
            services.store.close().await;
            result
        }
        Command::Clearance { action } => {
            let config = Config::load(&cli.data_dir)?;
            let services = wiring::open(&config).await?;
            let result = commands::access::clearance(&services, action).await;
            services.store.close().await;
            result
        }
    }
}
