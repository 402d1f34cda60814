//! The console's audit anchor: the newest row of its audit log (id and MAC), kept in the
//! agent's state directory. The agent keeps the highest row it was sent and answers with what
//! it held before, so a console whose log was cut back (rows removed from its end, or
//! replaced) hears of it from any agent, even if its own keychain was rewritten too.

use gatehouse_protocol as protocol;

use crate::error::ApiError;
use crate::state::StateDir;

/// An HMAC-SHA256 in hexadecimal.
const MAC_HEX: usize = 64;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// `POST /v1/audit/anchor`.
pub fn anchor(
    state: &StateDir,
    anchor: protocol::AuditAnchor,
) -> Result<protocol::AnchorReply, ApiError> {
    if anchor.id < 1 {
        return Err(ApiError::bad_request(
            "an audit anchor's row id starts at 1",
        ));
    }
    if anchor.mac.len() != MAC_HEX || !anchor.mac.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::bad_request(
            "an audit anchor's MAC is 64 hexadecimal digits",
        ));
    }
    // Read, compare and write as one step, so two anchors at once cannot lower the one held.
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let held = state
        .audit_anchor()
        .map_err(|e| ApiError::internal("reading the audit anchor", e))?;
    if held.as_ref().is_none_or(|h| anchor.id > h.id) {
        state
            .write_audit_anchor(&anchor)
            .map_err(|e| ApiError::internal("keeping the audit anchor", e))?;
    } else if held.as_ref().is_some_and(|h| h.id > anchor.id) {
        tracing::warn!(
            held = held.as_ref().map(|h| h.id),
            sent = anchor.id,
            "the console sent an older audit row than it sent before: its log may have been cut back"
        );
    }
    Ok(protocol::AnchorReply { held })
}
