//! `phivault emergency on|off|status`: emergency read-only mode from the console (45 CFR
//! 164.308(a)(7)(ii)(C)), for when no officer can sign in (the pages and API have the same
//! switch for the privacy officer). Takes effect on every node at its next record write.

use anyhow::Result;
use clap::Subcommand;
use phivault_service::{EmergencyMode, RecordStore};
use phivault_store::SqlStore;

#[derive(Debug, Subcommand)]
pub enum EmergencyAction {
    /// Refuse every record write (reads go on), on every node, until `off`.
    On {
        /// Why, as a code (recorded in the audit trail; no free text, so no patient's
        /// details can enter it).
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(phivault_service::EMERGENCY_REASONS))]
        reason: String,
    },
    /// Allow record writes again.
    Off,
    /// Whether the mode is on, since when, by whom.
    Status,
}

pub async fn run(store: &SqlStore, action: EmergencyAction) -> Result<()> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64;
    match action {
        EmergencyAction::On { reason } => {
            let mode = EmergencyMode { since_ms: now, set_by: crate::actor::os_actor(), reason };
            store.set_emergency_mode(Some(mode.clone())).await?;
            super::audit::record_own(store, "cli.emergency.enter", None, mode.reason).await?;
            println!("emergency read-only mode is ON: records can be read, not written, on every node");
        }
        EmergencyAction::Off => {
            store.set_emergency_mode(None).await?;
            super::audit::record_own(store, "cli.emergency.leave", None, "records writable again".into()).await?;
            println!("emergency read-only mode is off: records can be written again");
        }
        EmergencyAction::Status => match store.emergency_mode().await? {
            Some(mode) => println!(
                "emergency read-only mode is ON since {} (by {}): {}",
                super::backup::format_ms(mode.since_ms),
                mode.set_by,
                mode.reason
            ),
            None => println!("emergency read-only mode is off"),
        },
    }
    Ok(())
}
