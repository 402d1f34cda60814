//! [`Sensitive<T>`]: the only way secrets move through the console.

use std::fmt;

use zeroize::Zeroize;

/// A secret value. `Debug` prints `Sensitive(<redacted>)`, the value is wiped from memory on
/// drop, and it implements neither `Display` nor `Serialize`, so it cannot reach a log line,
/// an IPC response or the database by accident. Reading it takes an explicit [`expose`].
///
/// ```compile_fail
/// fn needs_serialize<T: serde::Serialize>(_: &T) {}
/// let key = gatehouse_core::Sensitive::new(String::from("hunter2"));
/// needs_serialize(&key); // Sensitive<T> is not Serialize
/// ```
///
/// ```compile_fail
/// let key = gatehouse_core::Sensitive::new(String::from("hunter2"));
/// println!("{key}"); // Sensitive<T> is not Display
/// ```
///
/// [`expose`]: Sensitive::expose
pub struct Sensitive<T: Zeroize>(T);

impl<T: Zeroize> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Sensitive(value)
    }

    /// Borrow the secret. Call sites are easy to grep for and review.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Fill or change the secret in place (for example with random bytes), so it never
    /// exists outside the wrapper.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> Drop for Sensitive<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sensitive(<redacted>)")
    }
}

impl<T: Zeroize> From<T> for Sensitive<T> {
    fn from(value: T) -> Self {
        Sensitive::new(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_the_value() {
        let secret = Sensitive::new(String::from("correct horse battery staple"));
        let printed = format!("{secret:?} {:#?}", secret);
        assert!(
            !printed.contains("horse"),
            "Debug must never print the secret, got {printed}"
        );
        assert!(printed.contains("redacted"), "Debug should say it redacted");
    }

    #[test]
    fn redacted_inside_containers_too() {
        #[derive(Debug)]
        #[expect(dead_code, reason = "only printed through Debug")]
        struct Holder {
            name: &'static str,
            key: Sensitive<Vec<u8>>,
        }
        let holder = Holder {
            name: "ca",
            key: Sensitive::new(b"PRIVATE KEY BYTES".to_vec()),
        };
        let printed = format!("{holder:?}");
        assert!(
            !printed.contains("80, 82, 73"),
            "bytes of the secret must not appear in a derived Debug: {printed}"
        );
    }

    #[test]
    fn expose_returns_the_value() {
        let secret = Sensitive::new(vec![1u8, 2, 3]);
        assert_eq!(
            secret.expose(),
            &vec![1, 2, 3],
            "expose is the one way to read it"
        );
    }
}
