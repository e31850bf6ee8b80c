//! The operational log, with a redaction layer: only fields on an allow-list of names that
//! carry ids, codes, counts and error texts (all PHI-free by construction) are printed;
//! any other field, from our code or a library's, is printed as `[redacted]`. The code
//! already logs route templates and ids only (the canary tests check it); this makes a
//! future `name = %patient_name` harmless rather than a leak.
//!
//! Safeguards: 45 CFR 164.312(b) (logs are not a second, unprotected copy of ePHI).

use std::fmt;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Field names whose values may be printed. Everything phivault logs is named here; library
/// fields that describe statements and timings (never bound values) too.
const ALLOWED: &[&str] = &[
    "action",
    "alert",
    "alerts",
    "cause",
    "chunk",
    "client_id",
    "dir",
    "elapsed_ms",
    "entries",
    "error",
    "errors",
    "file",
    "grant",
    "id",
    "job",
    "key_id",
    "method",
    "operation",
    "problems",
    "request_id",
    "resource_type",
    "route",
    "status",
    "user_id",
    "version",
    "versions",
    // sqlx: statements are constant text with placeholders; values are bound, never spliced.
    "db.statement",
    "rows_affected",
    "rows_returned",
    "elapsed",
    "elapsed_secs",
    "summary",
];

/// Formats an event's fields, redacting any whose name is not allowed.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedactingFields;

impl<'writer> FormatFields<'writer> for RedactingFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Redactor { writer, first: true, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Redactor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Redactor<'_> {
    fn separator(&mut self) -> &'static str {
        if std::mem::replace(&mut self.first, false) { "" } else { " " }
    }
}

impl Visit for Redactor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // Strings print without the quotes `Debug` would add.
        self.record_debug(field, &format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_err() {
            return;
        }
        let separator = self.separator();
        let name = field.name();
        self.result = if name == "message" {
            write!(self.writer, "{separator}{value:?}")
        } else if ALLOWED.contains(&name) || name.starts_with("log.") {
            write!(self.writer, "{separator}{name}={value:?}")
        } else {
            write!(self.writer, "{separator}{name}=[redacted]")
        };
    }
}

/// Installs the global subscriber: `PHIVAULT_LOG` (an `EnvFilter`), to stderr, redacted.
/// `bulk_reads`: the command scans whole tables, so slow statements are expected.
pub fn init(bulk_reads: bool) {
    let default = if bulk_reads {
        "info,sqlx=warn,sqlx::query=error,hyper=warn,rustls=warn,h2=warn"
    } else {
        "info,sqlx=warn,hyper=warn,rustls=warn,h2=warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHIVAULT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).fmt_fields(RedactingFields).init();
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn fields_off_the_allow_list_are_redacted() {
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .fmt_fields(RedactingFields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let patient_name = "Daffy Duck";
            tracing::warn!(
                resource_type = "Patient",
                id = "p-1",
                name = %patient_name,
                query = ?"family=Duck&birthdate=1937-04-17",
                status = 200,
                "request refused"
            );
        });
        let line = String::from_utf8(capture.0.lock().expect("lock").clone()).expect("utf8");
        assert!(line.contains("request refused") && line.contains("resource_type=Patient"), "{line}");
        assert!(line.contains("id=p-1") && line.contains("status=200"), "{line}");
        assert!(line.contains("name=[redacted]") && line.contains("query=[redacted]"), "{line}");
        for canary in ["Daffy", "Duck", "1937"] {
            assert!(!line.contains(canary), "{canary} in {line}");
        }
    }
}
