//! The account the service runs as: `[checks] service_user` when set, otherwise the owner of
//! the service's own files. The agent gives files it writes for the service back to it, and
//! takes only a listener of that account for the service.

use super::Service;
use crate::fsutil;

impl Service<'_> {
    /// The service account's uid: the configured `service_user`, or else `owner`, the owner
    /// of the file or directory at hand (the service's account owns its files).
    pub fn account_uid(&self, owner: u32) -> Result<u32, String> {
        match &self.settings.user {
            None => Ok(owner),
            Some(user) => uid_of(user).ok_or_else(|| {
                format!("the service user {user} is neither a uid nor a user in /etc/passwd")
            }),
        }
    }
}

/// The uid of `user`: a number, or a name in `/etc/passwd`.
pub fn uid_of(user: &str) -> Option<u32> {
    if let Ok(uid) = user.parse() {
        return Some(uid);
    }
    let passwd = fsutil::read_text(std::path::Path::new("/etc/passwd"), fsutil::CONFIG_MAX).ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == user).then(|| fields.nth(1)?.parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_is_a_uid_or_a_name_in_passwd() {
        assert_eq!(uid_of("root"), Some(0), "root is uid 0");
        assert_eq!(uid_of("1234"), Some(1234), "a number is a uid");
        assert_eq!(uid_of("no-such-user-here"), None, "an unknown name is none");
    }
}
