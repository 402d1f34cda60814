//! The service's config files: mode 0600 and, when `[checks] service_user` is set, owned by
//! that account. A password file (htpasswd) owned by root may also be 0640: a packaged
//! service reads it through its group, and no one can write it but root.

use gatehouse_protocol::{CheckId, CheckResult};

use super::{fail, pass, unknown, Context};
use crate::service::{account, files};

pub(super) fn modes(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::ConfigFileMode;
    let (Some(dir), Some(entries)) = (cx.service.dir(), cx.service.config_files()) else {
        return unknown(check, files::no_dir("the service's files"), vec![]);
    };
    let mut paths: Vec<(std::path::PathBuf, &str)> = entries
        .into_iter()
        .map(|(path, file)| (path, file.path.as_str()))
        .collect();
    paths.sort();
    paths.dedup();
    let owner_uid = match &cx.policy.service_user {
        Some(user) => match account::uid_of(user) {
            Some(uid) => Some((user.clone(), uid)),
            None => {
                return unknown(
                    check,
                    format!("the service user {user} is not in /etc/passwd"),
                    vec![],
                )
            }
        },
        None => None,
    };
    let mut evidence = Vec::new();
    let mut failing = Vec::new();
    for (path, relative) in &paths {
        // The file itself, never where a link the service's account made leads.
        match files::open_config(dir, relative).map(|regular| regular.facts) {
            Ok(facts) => {
                let (uid, mode) = (facts.uid, facts.mode);
                let hashes = cx
                    .service
                    .profile
                    .config_files
                    .iter()
                    .any(|f| f.path == *relative && f.format.is_hashed());
                let group_reads_root_s = hashes && uid == 0 && mode & 0o077 == 0o040;
                let mut problems = Vec::new();
                if mode & 0o077 != 0 && !group_reads_root_s {
                    problems.push("readable or writable by others than its owner");
                }
                if let Some((_, want)) = &owner_uid {
                    if uid != *want {
                        problems.push("not owned by the service user");
                    }
                }
                if !problems.is_empty() {
                    failing.push(format!("{relative} ({mode:04o})", mode = mode & 0o7777));
                }
                evidence.push(format!(
                    "{}: mode {:04o}, owner uid {uid}{}",
                    path.display(),
                    mode & 0o7777,
                    if problems.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", problems.join(", "))
                    }
                ));
            }
            Err(e) => evidence.push(format!("{}: cannot be read ({e})", path.display())),
        }
    }
    if owner_uid.is_none() {
        evidence
            .push("no service_user is set in [checks], so ownership was not compared".to_owned());
    }
    if !failing.is_empty() {
        fail(
            check,
            format!(
                "not mode 0600 for the service user: {}",
                super::keys::named(&failing)
            ),
            evidence,
        )
    } else if evidence.iter().any(|e| e.contains("cannot be read")) {
        unknown(check, "a config file could not be read", evidence)
    } else {
        pass(check, "config files are mode 0600", evidence)
    }
}
