//! Notifications for the privacy officer, by e-mail through an SMTP relay (lettre).
//! Messages hold ids, reason codes and times, never PHI; the details wait in the review
//! queue behind sign-in.

use async_trait::async_trait;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use phivault_service::access::Notifier;

use crate::config::NotifyConfig;

/// Sends each notification as one e-mail.
#[derive(Debug)]
pub struct SmtpNotifier {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Mailbox,
}

impl SmtpNotifier {
    /// A notifier for `config`, or `None` when no relay is configured. The relay URL takes
    /// lettre's forms: `smtp://host:25` (plain, for a relay on the same host or network),
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465`.
    pub fn from_config(config: &NotifyConfig) -> anyhow::Result<Option<Self>> {
        let Some(relay) = &config.smtp_relay else { return Ok(None) };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(relay)
            .map_err(|e| anyhow::anyhow!("notify.smtp_relay is not a usable SMTP URL: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = config.from.parse().map_err(|_| anyhow::anyhow!("notify.from is not an e-mail address"))?;
        let to = config
            .privacy_officer
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("notify.privacy_officer (an e-mail address) is required with a relay"))?
            .parse()
            .map_err(|_| anyhow::anyhow!("notify.privacy_officer is not an e-mail address"))?;
        Ok(Some(Self { transport, from, to }))
    }
}

#[async_trait]
impl Notifier for SmtpNotifier {
    async fn notify(&self, subject: &str, body: &str) -> Result<(), String> {
        let message = Message::builder()
            .from(self.from.clone())
            .to(self.to.clone())
            .subject(subject)
            .body(body.to_owned())
            .map_err(|e| format!("cannot build the message: {e}"))?;
        self.transport.send(message).await.map(|_| ()).map_err(|e| format!("the SMTP relay refused: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

    /// A local SMTP sink: accepts one message and returns its DATA.
    async fn sink(listener: tokio::net::TcpListener) -> String {
        let (stream, _) = listener.accept().await.expect("accept");
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink ESMTP\r\n").await.expect("greet");
        let mut data = String::new();
        let mut in_data = false;
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).await.expect("read") == 0 {
                return data;
            }
            if in_data {
                if line == ".\r\n" {
                    in_data = false;
                    write.write_all(b"250 queued\r\n").await.expect("queued");
                } else {
                    data.push_str(&line);
                }
                continue;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            let reply: &[u8] = match verb.as_str() {
                "EHLO" | "HELO" => b"250 sink\r\n",
                "DATA" => {
                    in_data = true;
                    b"354 go on\r\n"
                }
                "QUIT" => {
                    write.write_all(b"221 bye\r\n").await.expect("bye");
                    return data;
                }
                _ => b"250 ok\r\n",
            };
            write.write_all(reply).await.expect("reply");
        }
    }

    #[tokio::test]
    async fn a_break_glass_notice_reaches_the_privacy_officer_through_the_relay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let received = tokio::spawn(sink(listener));
        let config = NotifyConfig {
            smtp_relay: Some(format!("smtp://127.0.0.1:{port}")),
            from: "phivault@clinic.example".into(),
            privacy_officer: Some("privacy@clinic.example".into()),
        };
        let notifier = SmtpNotifier::from_config(&config).expect("config").expect("configured");
        notifier.notify("phivault: break-glass access to Patient/p1", "User u1 used break-glass.").await.expect("sent");
        let data = received.await.expect("sink");
        assert!(data.contains("To: privacy@clinic.example"), "{data}");
        assert!(data.contains("break-glass access to Patient/p1"), "{data}");
    }

    #[test]
    fn bad_settings_are_refused_and_no_relay_means_no_notifier() {
        let mut config = NotifyConfig::default();
        assert!(SmtpNotifier::from_config(&config).expect("none").is_none());
        config.smtp_relay = Some("smtp://127.0.0.1:25".into());
        assert!(SmtpNotifier::from_config(&config).is_err(), "no privacy officer address");
        config.privacy_officer = Some("not an address".into());
        assert!(SmtpNotifier::from_config(&config).is_err());
        config.smtp_relay = Some("gopher://x".into());
        config.privacy_officer = Some("privacy@clinic.example".into());
        assert!(SmtpNotifier::from_config(&config).is_err());
    }
}
