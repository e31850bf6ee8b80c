//! `phivault serve`: the HTTPS server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use phivault_api::listener::{ConnectionLimits, serve_redirect, serve_tls};
use phivault_api::{ApiConfig, AppState, IpNet};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::wiring::Services;

/// Runs the server until Ctrl-C or SIGTERM, then drains in-flight requests.
pub async fn serve(data_dir: &std::path::Path, config: &Config, services: Services) -> Result<()> {
    let addr: SocketAddr =
        config.server.listen.parse().context("server.listen must be an address such as 127.0.0.1:8443")?;
    let tls = phivault_api::tls::server_config(&config.tls.cert, &config.tls.key)?;
    let trusted_proxies = config
        .server
        .trusted_proxies
        .iter()
        .map(|s| s.parse::<IpNet>().map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    let state = AppState {
        records: services.guarded.clone(),
        identity: services.identity.clone(),
        audit: services.audit.clone(),
        notifier: services.notifier.clone(),
        alerts: Arc::new(services.store.clone()),
        exports: Some(phivault_service::bulk::Exporter::new(
            services.guarded.clone(),
            Arc::new(services.store.clone()),
            services.keys.clone(),
            Arc::new(phivault_service::SystemClock),
            i64::try_from(config.export.ttl_minutes.max(1).saturating_mul(60_000)).unwrap_or(i64::MAX),
            config.export.min_k,
        )),
        config: Arc::new(ApiConfig {
            base_url: config.server.public_base_url.trim_end_matches('/').to_owned(),
            max_body_bytes: config.server.max_body_bytes,
            request_timeout: Duration::from_secs(config.server.request_timeout_secs),
            trusted_proxies,
            zones: config.policy.zones()?,
            cors_origins: config.server.cors_origins()?,
            local_offset_minutes: config.review.rules.working_hours.as_ref().map_or(0, |h| h.utc_offset_minutes),
        }),
    };
    let policy_reload = tokio::spawn(super::policy::watch(
        config.policy.clone(),
        services.guarded.policies().clone(),
        services.audit.clone(),
        policy_archive(config),
    ));
    let (signer, key_form) =
        super::audit::signer(&config.audit, &phivault_service::KeySource::ring(services.keys.as_ref()))?;
    // A plaintext key beside its witness lets whoever can write that directory rewrite the
    // trail, re-sign it and rewrite the witness to match: the checkpoints then prove nothing.
    // (The default key is sealed under the key file: signing needs its passphrase or HSM.)
    let key_dir = config.audit.signing_key.parent();
    if key_form == super::audit::SigningKeyForm::Plaintext
        && key_dir.is_some()
        && key_dir == config.audit.witness_file.parent()
    {
        eprintln!(
            "warning: the audit signing key {} is plaintext and sits beside the witness file: anyone who can write {} \
             can re-sign a rewritten trail. Remove audit.signing_key from the configuration (the default seals the key \
             under the key file) or keep it on another volume or account, and ship checkpoints off the host \
             (audit.syslog_target); `audit verify --public-key` with the auditor's own copy of the public key is the \
             check that holds",
            config.audit.signing_key.display(),
            key_dir.map_or_else(String::new, |d| d.display().to_string())
        );
    }
    if services.notifier.is_none() {
        eprintln!(
            "note: no [notify] smtp_relay configured: break-glass grants go to the audit trail and the review queue only"
        );
    }
    let app = phivault_api::router(state);
    let listener = TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
    eprintln!(
        "phivault serving FHIR R4 at {}/fhir (listening on {addr})",
        config.server.public_base_url.trim_end_matches('/')
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let redirect = match &config.server.redirect_listen {
        Some(plain) => {
            let plain: SocketAddr = plain.parse().context("server.redirect_listen must be an address")?;
            let listener = TcpListener::bind(plain).await.with_context(|| format!("cannot listen on {plain}"))?;
            Some(tokio::spawn(serve_redirect(
                listener,
                config.server.public_base_url.clone(),
                stopped(stop_rx.clone()),
            )))
        }
        None => None,
    };
    let limits = ConnectionLimits {
        header_read_timeout: Duration::from_secs(config.server.header_read_timeout_secs),
        ..ConnectionLimits::default()
    };
    let signer = Arc::new(signer);
    let ship_target = config
        .audit
        .syslog_target
        .as_deref()
        .map(|target| super::audit::ShipTarget::parse(target, config.audit.syslog_ca.as_deref()))
        .transpose()?;
    let checkpoints = {
        // Periodic signed checkpoints: whoever controls the database cannot rewrite the
        // trail behind the last one without the witness (and the collector) showing it.
        let (store, signer, witness) = (services.store.clone(), signer.clone(), config.audit.witness_file.clone());
        let (target, node) = (ship_target.clone(), services.audit.node().to_owned());
        let alerting = services.clone();
        let every = Duration::from_secs(config.audit.checkpoint_interval_secs.max(1));
        // The first tick is at once: a start signs what the previous run left (after a
        // crash nothing else would), then every interval while the trail grows.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut signed_size = None;
            let mut refused: Option<String> = None;
            loop {
                tick.tick().await;
                let size = phivault_audit::AuditStore::audit_head(&store).await.ok().map(|(size, _)| size);
                if size.is_some() && size == signed_size {
                    continue;
                }
                match super::audit::checkpoint(&store, &signer, &witness).await {
                    Ok(cp) => {
                        signed_size = Some(cp.tree_size);
                        refused = None;
                        publish_checkpoint(target.as_ref(), &cp, &node).await;
                    }
                    Err(e) => {
                        let why = e.to_string();
                        tracing::error!(error = %why, "cannot sign an audit checkpoint");
                        // Unsigned entries are unprotected ones: a trail the signer will not
                        // vouch for, or a signer that cannot sign at all (an unreadable witness
                        // file), is told to the privacy officer once per cause, not every tick.
                        let cause = why.split(": the trail holds").next().unwrap_or(&why).to_owned();
                        if refused.as_deref() != Some(cause.as_str()) {
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as i64);
                            match super::review::raise_integrity_alert(&alerting, now, format!("audit trail: {why}"))
                                .await
                            {
                                Ok(()) => refused = Some(cause),
                                Err(e) => tracing::error!(error = %e, "cannot raise the audit trail alert"),
                            }
                        }
                    }
                }
            }
        })
    };
    let review = super::review::spawn_periodic(&services, &config.review);
    let backups = super::backup::spawn_schedule(&services, config, data_dir);
    let shipping = match ship_target.clone() {
        Some(target) => {
            let (store, cursor) = (services.store.clone(), config.audit.ship_cursor.clone());
            let every = Duration::from_secs(config.audit.ship_interval_secs.max(1));
            Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    // A collector that is down is retried from the cursor: nothing is skipped.
                    if let Err(e) = super::audit::ship_new_entries(&store, &target, &cursor).await {
                        tracing::error!(error = %e, "cannot ship the audit trail to the syslog collector");
                    }
                }
            }))
        }
        None => None,
    };
    // The audit system's own start and stop are events of the trail (ONC 170.315(d)(2)).
    record_lifecycle(&services, "audit.start", config).await?;
    let server = tokio::spawn(serve_tls(listener, tls, app, limits, stopped(stop_rx)));
    shutdown_signal().await;
    eprintln!("shutting down: finishing requests in flight");
    let _ = stop_tx.send(true);
    let _ = server.await;
    if let Some(redirect) = redirect {
        let _ = redirect.await;
    }
    checkpoints.abort();
    policy_reload.abort();
    for task in review {
        task.abort();
    }
    if let Some(task) = shipping {
        task.abort();
    }
    if let Some(task) = backups {
        task.abort();
    }
    if let Err(e) = record_lifecycle(&services, "audit.stop", config).await {
        tracing::error!(error = %e, "cannot record the audit system's stop");
    }
    // A last checkpoint covering everything this process served.
    match super::audit::checkpoint(&services.store, &signer, &config.audit.witness_file).await {
        Ok(cp) => {
            publish_checkpoint(ship_target.as_ref(), &cp, services.audit.node()).await;
            eprintln!("signed the audit checkpoint at {} entries", cp.tree_size);
        }
        Err(e) => tracing::error!(error = %e, "cannot sign the shutdown audit checkpoint"),
    }
    services.store.close().await;
    Ok(())
}

/// Sends a signed checkpoint to the syslog collector, when one is configured: a second
/// witness outside the database. A collector that is down is logged; the witness file has it.
async fn publish_checkpoint(target: Option<&super::audit::ShipTarget>, cp: &phivault_audit::Checkpoint, node: &str) {
    let Some(target) = target else { return };
    let framed = phivault_audit::syslog::frame(&phivault_audit::syslog::checkpoint_message(cp, node));
    if let Err(e) = phivault_audit::syslog::deliver(target, &framed).await {
        tracing::error!(error = %e, "cannot send the audit checkpoint to the syslog collector");
    }
}

/// Records the server's (and with it the audit system's) start or stop, with the version
/// and a digest of the configuration in force: a configuration changed between two starts
/// shows in the trail as a different digest.
/// Where the policy texts recorded in the trail are kept: beside the witness file.
fn policy_archive(config: &Config) -> std::path::PathBuf {
    config.audit.witness_file.parent().map_or_else(|| "policies".into(), |p| p.join("policies"))
}

async fn record_lifecycle(services: &Services, action: &str, config: &Config) -> Result<()> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000;
    let mut event =
        phivault_audit::AuditEvent::new(now, action, phivault_audit::Outcome::Success, services.audit.node());
    event.user_id = Some("system:phivault".into());
    let settings = toml::to_string(config).unwrap_or_default();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, settings.as_bytes());
    let hex: String = digest.as_ref().iter().take(16).map(|b| format!("{b:02x}")).collect();
    let policies = super::policy::record_policy_texts(&config.policy.dir, &policy_archive(config));
    event.reason = Some(format!("version={} config=sha256:{hex} policies={policies}", env!("CARGO_PKG_VERSION")));
    services.audit.record(&event).await.map_err(|_| anyhow::anyhow!("the audit trail could not be written"))?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
