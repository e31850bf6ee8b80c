//! `phivault client ...`: OAuth client registration (SMART apps and backend services).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use phivault_identity::{ClientKind, ClientRecord, Identity};

#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// Register a client. A SMART app (public, PKCE) needs --redirect-uri; a backend
    /// service needs --jwks with its public keys and system/ scopes.
    Add {
        /// Name shown to users on the consent page.
        #[arg(long)]
        name: String,
        /// Registered redirect URI (repeatable); exact match required at authorization.
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// The most this client may ever be granted, e.g. "openid fhirUser offline_access user/*.rs".
        #[arg(long)]
        scopes: String,
        /// A SMART Backend Services client: file holding its JWK Set (public keys only).
        #[arg(long)]
        jwks: Option<PathBuf>,
    },
    /// List registered clients.
    List,
    /// Disable a client; its tokens stop working at once.
    Disable { client_id: String },
}

impl ClientAction {
    /// The audit action name and the client it applies to.
    pub fn audit_name(&self) -> (&'static str, Option<String>) {
        match self {
            ClientAction::Add { .. } => ("cli.client.add", None),
            ClientAction::List => ("cli.client.list", None),
            ClientAction::Disable { client_id } => ("cli.client.disable", Some(client_id.clone())),
        }
    }
}

fn print_client(c: &ClientRecord) {
    println!("client id:      {}", c.id);
    println!("name:           {}", c.name);
    println!("kind:           {}", c.kind.as_str());
    for uri in &c.redirect_uris {
        println!("redirect uri:   {uri}");
    }
    println!("allowed scopes: {}", c.allowed_scopes);
    println!("active:         {}", c.active);
}

/// Runs a client command; returns the id of a client it registered (the audit entry's
/// target, which is not known before).
pub async fn run(identity: &Identity, action: ClientAction) -> Result<Option<String>> {
    match action {
        ClientAction::Add { name, redirect_uris, scopes, jwks } => {
            let (kind, jwks) = match jwks {
                Some(path) => {
                    let text =
                        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
                    let value: serde_json::Value =
                        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
                    if text.contains("\"d\"") {
                        bail!("{} holds a private key; register only the public keys", path.display());
                    }
                    (ClientKind::Backend, Some(value))
                }
                None => (ClientKind::Public, None),
            };
            let client = identity.register_client(&name, kind, redirect_uris, &scopes, jwks).await?;
            print_client(&client);
            return Ok(Some(client.id));
        }
        ClientAction::List => {
            for c in identity.store().list_clients().await? {
                print_client(&c);
                println!();
            }
        }
        ClientAction::Disable { client_id } => {
            if !identity.store().set_client_active(&client_id, false).await? {
                bail!("no such client");
            }
            println!("disabled {client_id}; its tokens were revoked");
        }
    }
    Ok(None)
}
