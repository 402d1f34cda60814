//! The actions the console asks of the host, each run as a transaction that verifies its
//! effect: rotating a key, blocking an address, restarting the service, snapshotting and
//! restoring its database; and the read-only reports beside them (the credential inventory,
//! the evidence, the console's audit anchor). Each one reaches the service only through [`crate::service`], writes files
//! only through [`crate::fsutil`], and knows nothing of HTTP.

pub mod anchor;
pub mod credentials;
pub mod database;
pub mod evidence;
pub mod firewall;
pub mod restart;
pub mod rotate;
