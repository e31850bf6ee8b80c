//! Running the `phivault` binary in tests.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::Path;
use std::process::{Command, Output};

/// `phivault --data-dir DIR ARGS`, with no passphrase in its environment (for data dirs
/// made with `--insecure-dev-keys`) and progress bars off.
pub fn phivault(data_dir: &Path, args: &[&str]) -> Output {
    phivault_with(data_dir, args, None)
}

/// [`phivault`] with `PHIVAULT_PASSPHRASE` set to `passphrase`, when given.
pub fn phivault_with(data_dir: &Path, args: &[&str], passphrase: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_phivault"));
    command.arg("--data-dir").arg(data_dir).args(args).env("CI", "true").env_remove("PHIVAULT_PASSPHRASE_FILE");
    match passphrase {
        Some(p) => command.env("PHIVAULT_PASSPHRASE", p),
        None => command.env_remove("PHIVAULT_PASSPHRASE"),
    };
    command.output().expect("run phivault")
}

/// Everything the command printed, stdout then stderr.
pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// `phivault serve` on a free local port, stopped when dropped.
pub struct Server {
    child: std::process::Child,
    pub port: u16,
}

impl Server {
    /// Starts the server on `data_dir` (its public base URL is this port on 127.0.0.1) and
    /// waits until it accepts connections.
    pub fn start(data_dir: &Path) -> Server {
        use std::time::{Duration, Instant};
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        let child = Command::new(env!("CARGO_BIN_EXE_phivault"))
            .arg("--data-dir")
            .arg(data_dir)
            .arg("serve")
            .env("PHIVAULT_LISTEN", format!("127.0.0.1:{port}"))
            .env("PHIVAULT_PUBLIC_BASE_URL", format!("https://127.0.0.1:{port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("serve");
        let server = Server { child, port };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(30), "server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    /// `https://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Appends `n` read entries (of the obviously fake `Patient/p<i>`, i from `first`, one
/// millisecond apart after 2027-01-15) through the group-commit writer, as the server does.
pub fn append_reads(runtime: &tokio::runtime::Runtime, url: &str, first: i64, n: i64) {
    runtime.block_on(async {
        let store = phivault_store::SqlStore::connect(url).await.expect("store");
        let log = phivault_audit::AuditLog::start(std::sync::Arc::new(store.clone()), "test");
        for i in first..first + n {
            let mut e = phivault_audit::AuditEvent::new(
                1_800_000_000_000 + i,
                "read",
                phivault_audit::Outcome::Success,
                "test",
            );
            e.resource_ids = vec![format!("Patient/p{i}")];
            log.record(&e).await.expect("durable");
        }
        store.close().await;
    });
}
