//! Who ran a console command, as the audit trail names the operator: the operating-system
//! account of the process's real user id, read from the kernel (`/proc/self/status`) and
//! named from `/etc/passwd`. `LOGNAME` and `USER` are not consulted where the kernel
//! answers: anyone can set them (`USER=someone-else phivault keys shred-patient …`).

use std::path::Path;

/// `os:<account>`, or `os:uid:<n>` for a uid without a passwd entry; where the kernel does
/// not answer (not Linux), `os:unverified:<LOGNAME or USER>`.
pub fn os_actor() -> String {
    match real_uid(Path::new("/proc/self/status")) {
        Some(uid) => match account_name(Path::new("/etc/passwd"), uid) {
            Some(name) => format!("os:{}", phivault_audit::clip(&name, 64)),
            None => format!("os:uid:{uid}"),
        },
        None => {
            let login =
                std::env::var("LOGNAME").or_else(|_| std::env::var("USER")).unwrap_or_else(|_| "unknown".into());
            format!("os:unverified:{}", phivault_audit::clip(&login, 64))
        }
    }
}

/// The real uid from a `/proc/<pid>/status` file (`Uid:` real, effective, saved, fs).
fn real_uid(status: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The account name of `uid` in a passwd file (`name:x:uid:gid:...`).
fn account_name(passwd: &Path, uid: u32) -> Option<String> {
    let text = std::fs::read_to_string(passwd).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let _password = fields.next()?;
        (fields.next()?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actor_comes_from_the_kernel_not_from_the_environment() {
        let dir = tempfile::tempdir().expect("tempdir");
        let status = dir.path().join("status");
        std::fs::write(&status, "Name:\tphivault\nUid:\t1001\t0\t0\t0\nGid:\t1001\t1001\t1001\t1001\n").expect("write");
        assert_eq!(real_uid(&status), Some(1001), "the real uid, not the effective one");
        let passwd = dir.path().join("passwd");
        std::fs::write(&passwd, "root:x:0:0:root:/root:/bin/sh\ndaffy:x:1001:1001:Daffy Duck:/home/daffy:/bin/sh\n")
            .expect("write");
        assert_eq!(account_name(&passwd, 1001).as_deref(), Some("daffy"));
        assert_eq!(account_name(&passwd, 4242), None);
        if Path::new("/proc/self/status").exists() {
            assert!(!os_actor().starts_with("os:unverified:"), "on Linux the kernel answers");
        }
    }
}
