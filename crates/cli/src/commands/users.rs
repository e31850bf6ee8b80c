//! `phivault user ...`: account administration from the command line (the same verbs as
//! the admin API). Temporary passwords are printed once and must be changed at first login.

use anyhow::{Result, bail};
use clap::Subcommand;
use phivault_identity::{Identity, NewAccount, UserSummary, parse_roles};

#[derive(Debug, Subcommand)]
pub enum UserAction {
    /// Create an account with a temporary password (shown once).
    Add {
        username: String,
        /// Display name, e.g. "Dr Daffy Duck".
        #[arg(long)]
        name: String,
        /// Comma-separated roles: admin, physician, nurse, front_desk, billing, researcher,
        /// privacy_officer, patient.
        #[arg(long)]
        roles: String,
        /// For a patient account: the id of their Patient resource.
        #[arg(long)]
        patient_id: Option<String>,
    },
    /// List accounts.
    List,
    /// Show one account (by username or id).
    Show { user: String },
    /// Lock an account until unlocked; its sessions end at once.
    Lock { user: String },
    /// Unlock an account (also lifts an automatic lockout).
    Unlock { user: String },
    /// Deactivate an account for good; its sessions and tokens end at once.
    Deactivate { user: String },
    /// Set a temporary password (shown once) that must be changed at next login.
    ResetPassword { user: String },
    /// Remove the second factor; the user enrols again at next login.
    ResetMfa { user: String },
    /// Replace an account's roles; its sessions end.
    SetRoles {
        user: String,
        #[arg(long)]
        roles: String,
    },
    /// List an account's live sign-ins and app grants (ids and times, never tokens).
    Sessions { user: String },
    /// End one of an account's sign-ins or app grants (by the grant id `sessions` shows), or
    /// all of them with --all, at once on every server.
    EndSession {
        user: String,
        grant: Option<String>,
        #[arg(long, conflicts_with = "grant")]
        all: bool,
    },
}

impl UserAction {
    /// The audit action name and the account it applies to.
    pub fn audit_name(&self) -> (&'static str, Option<String>) {
        match self {
            UserAction::Add { username, .. } => ("cli.user.add", Some(username.clone())),
            UserAction::List => ("cli.user.list", None),
            UserAction::Show { user } => ("cli.user.show", Some(user.clone())),
            UserAction::Lock { user } => ("cli.user.lock", Some(user.clone())),
            UserAction::Unlock { user } => ("cli.user.unlock", Some(user.clone())),
            UserAction::Deactivate { user } => ("cli.user.deactivate", Some(user.clone())),
            UserAction::ResetPassword { user } => ("cli.user.reset_password", Some(user.clone())),
            UserAction::ResetMfa { user } => ("cli.user.reset_mfa", Some(user.clone())),
            UserAction::SetRoles { user, .. } => ("cli.user.set_roles", Some(user.clone())),
            UserAction::Sessions { user } => ("cli.user.sessions", Some(user.clone())),
            UserAction::EndSession { user, .. } => ("cli.user.end_session", Some(user.clone())),
        }
    }
}

fn print_summary(u: &UserSummary) {
    println!("id:                   {}", u.id);
    println!("username:             {}", u.username);
    println!("display name:         {}", u.display_name);
    println!("roles:                {}", u.roles.join(","));
    if let Some(p) = &u.patient_id {
        println!("patient:              Patient/{p}");
    }
    println!("status:               {}", u.status);
    println!("mfa enrolled:         {}", u.mfa_enrolled);
    println!("must change password: {}", u.must_change_password);
    if let Some(until) = u.locked_until_ms {
        println!("locked out until:     {}", crate::clock::format_ms(until));
    }
    println!("last login:           {}", u.last_login_ms.map_or("never".into(), crate::clock::format_ms));
    println!("created:              {}", crate::clock::format_ms(u.created_ms));
}

pub async fn run(identity: &Identity, action: UserAction) -> Result<()> {
    match action {
        UserAction::Add { username, name, roles, patient_id } => {
            let roles = parse_roles(&roles)?;
            let account = NewAccount { username, display_name: name, roles, patient_id, password: None };
            let (summary, password) = identity.create_user(account).await?;
            print_summary(&summary);
            if let Some(password) = password {
                println!("temporary password:   {password}");
                println!("(shown only once; it must be changed at first login)");
            }
        }
        UserAction::List => {
            let users = identity.list_users().await?;
            let header = format!("{:<24} {:<28} {:<12} {:<5} ROLES", "USERNAME", "ID", "STATUS", "MFA");
            let rows = users.iter().map(|u| {
                let status = if u.locked_until_ms.is_some() { "locked-out" } else { u.status.as_str() };
                let mfa = if u.mfa_enrolled { "yes" } else { "no" };
                format!("{:<24} {:<28} {:<12} {:<5} {}", u.username, u.id, status, mfa, u.roles.join(","))
            });
            crate::listing::print_lines(std::iter::once(header).chain(rows))?;
        }
        UserAction::Show { user } => print_summary(&identity.find_user(&user).await?.summary(identity.now_ms())),
        UserAction::Lock { user } => print_summary(&identity.lock(&user).await?),
        UserAction::Unlock { user } => print_summary(&identity.unlock(&user).await?),
        UserAction::Deactivate { user } => print_summary(&identity.deactivate(&user).await?),
        UserAction::ResetPassword { user } => {
            let password = identity.reset_password(&user).await?;
            println!("temporary password: {password}");
            println!("(shown only once; it must be changed at next login; the user's sessions were ended)");
        }
        UserAction::ResetMfa { user } => print_summary(&identity.reset_mfa(&user).await?),
        UserAction::Sessions { user } => {
            let sessions = identity.sessions(&user).await?;
            for g in &sessions {
                println!(
                    "{}  {:<7}  {}  started {}  last seen {}  until {}{}",
                    g.grant,
                    g.kind,
                    g.client_id.as_deref().unwrap_or("-"),
                    crate::clock::format_ms(g.started_ms),
                    crate::clock::format_ms(g.last_seen_ms),
                    crate::clock::format_ms(g.expires_ms),
                    if g.mfa { "  (second factor)" } else { "" }
                );
            }
            println!("{} live sign-ins and app grants", sessions.len());
        }
        UserAction::EndSession { user, grant, all } => match (grant, all) {
            (_, true) => println!("ended {} sign-ins and app grants", identity.end_all_sessions(&user).await?),
            (Some(grant), false) => {
                if !identity.end_session(&user, &grant).await? {
                    anyhow::bail!("the account holds no grant {grant} (see `phivault user sessions {user}`)");
                }
                println!("ended grant {grant}");
            }
            (None, false) => {
                anyhow::bail!("name the grant to end (see `phivault user sessions {user}`), or pass --all")
            }
        },
        UserAction::SetRoles { user, roles } => {
            let roles = parse_roles(&roles)?;
            if roles.is_empty() {
                bail!("give at least one role");
            }
            print_summary(&identity.set_roles(&user, roles).await?)
        }
    }
    Ok(())
}
