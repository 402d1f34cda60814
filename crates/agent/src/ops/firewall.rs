//! Blocking an address on the host firewall: an nftables table of Gatehouse's own
//! (`inet gatehouse`) with a set per address family whose elements carry a timeout, and an
//! input chain that drops what is in them. The kernel lets a block lapse when its TTL is up,
//! with no agent needed.
//!
//! A block is verified by reading the set back (the address is in it, with time left) and
//! the chain (hooked on input, dropping from the set). Refused: the address the console
//! itself connects from, loopback and other special addresses, and the allowlist the console
//! sends.
//!
//! The allowlist also wins in the ruleset itself: the chain accepts loopback, the console's
//! address, the host's `never_block` and the console's allowlist (sets `allow4`/`allow6`)
//! before it drops anything, so an address on it is never cut off whatever lands in the
//! block sets.
//!
//! Blocks are re-proven: the agent keeps each block it made with its end
//! (`blocks.json` in its state directory), and [`reprove`] (run every minute) puts back one
//! that went missing from the firewall before its end (a flushed ruleset, another tool),
//! saying so, and the chain if it is gone.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use gatehouse_protocol::{codes, BlockList, BlockRequest, BlockResult, Blocked};
use serde::{Deserialize, Serialize};

use gatehouse_detect::allowlist::covers;

use crate::config::FirewallPolicy;
use crate::error::ApiError;
use crate::state::StateDir;

const TABLE: &str = "inet gatehouse";
/// The longest block the agent accepts.
const MAX_TTL: u64 = 30 * 86_400;

/// The blocks the agent made and the allowlist last sent, kept to re-prove them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub blocks: Vec<Kept>,
    /// What the allow sets hold: the console's allowlist, the host's `never_block` and the
    /// console's address.
    pub allow: Vec<String>,
    /// The address the console last asked from, kept in the allow sets when the agent
    /// blocks on its own.
    #[serde(default)]
    pub console: Option<String>,
}

/// One block and when it ends (Unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    pub ip: String,
    pub until: i64,
}

impl Record {
    fn load(path: &Path) -> Record {
        std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    fn save(&self, path: &Path) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        crate::fsutil::write_atomic(path, &bytes)
            .map_err(|e| format!("cannot keep the block record {}: {e}", path.display()))
    }
}

/// Block `request.ip` for its TTL; `console` is the address the request came from. The
/// host's own allowlist joins the console's. `now` is Unix seconds.
pub async fn block(
    policy: &FirewallPolicy,
    state: &StateDir,
    mut request: BlockRequest,
    console: Option<IpAddr>,
    now: i64,
) -> Result<BlockResult, ApiError> {
    request.never.extend(policy.never_block.iter().cloned());
    let path = state.firewall_blocks();
    let mut record = Record::load(&path);
    // A block the agent makes on its own keeps the console's address it last knew.
    let console = console.or_else(|| record.console.as_deref().and_then(|c| c.parse().ok()));
    let mut allow = request.never.clone();
    allow.extend(console.map(|c: IpAddr| c.to_canonical().to_string()));
    allow.sort();
    allow.dedup();
    let nft = Nft::new(policy);
    let mut result = nft.block(&request, console, &allow).await?;
    record.console = console.map(|c| c.to_canonical().to_string());
    record.blocks.retain(|k| k.ip != result.ip && k.until > now);
    record.blocks.push(Kept {
        ip: result.ip.clone(),
        until: now.saturating_add(i64::try_from(request.ttl_secs).unwrap_or(i64::MAX)),
    });
    record.allow = allow;
    if let Err(e) = record.save(&path) {
        result
            .steps
            .push(format!("{e}: the block holds, but it is not re-proven"));
    }
    Ok(result)
}

/// Whether the agent keeps a block of `ip` that has not ended at `now` (Unix seconds): one
/// lifted by an unblock is not.
pub fn kept(state: &StateDir, ip: &str, now: i64) -> bool {
    Record::load(&state.firewall_blocks())
        .blocks
        .iter()
        .any(|k| k.ip == ip && k.until > now)
}

/// Lift the block on `ip`.
pub async fn unblock(
    policy: &FirewallPolicy,
    state: &StateDir,
    ip: &str,
) -> Result<BlockResult, ApiError> {
    let result = Nft::new(policy).unblock(ip).await?;
    let path = state.firewall_blocks();
    let mut record = Record::load(&path);
    let before = record.blocks.len();
    record.blocks.retain(|k| k.ip != result.ip);
    if record.blocks.len() != before {
        if let Err(e) = record.save(&path) {
            tracing::warn!(error = %e, "the block record could not be updated");
        }
    }
    Ok(result)
}

/// Put back what the agent blocked and is missing from the firewall before its end, and the
/// chain and allow sets if they are gone. Returns what was put back, for a person to read;
/// empty when everything was in place. `now` is Unix seconds.
pub async fn reprove(policy: &FirewallPolicy, state: &StateDir, now: i64) -> Vec<String> {
    let path = state.firewall_blocks();
    let mut record = Record::load(&path);
    let live = record.blocks.len();
    record.blocks.retain(|k| k.until > now);
    if record.blocks.is_empty() {
        if live > 0 {
            let _ = record.save(&path);
        }
        return Vec::new();
    }
    let nft = Nft::new(policy);
    let mut said = Vec::new();
    match nft.chain_in_place().await {
        Ok(true) => {}
        _ => {
            if let Err(e) = nft.ensure(&record.allow).await {
                said.push(format!(
                    "the firewall's Gatehouse chain is missing and could not be put back: {e}"
                ));
                return said;
            }
            said.push(
                "the firewall's Gatehouse chain was missing (a flushed ruleset?): put back".into(),
            );
        }
    }
    let listed = match nft.list().await {
        Ok(listed) => listed,
        Err(e) => {
            said.push(format!("the blocks could not be read back: {e}"));
            return said;
        }
    };
    for kept in &record.blocks {
        if listed.blocked.iter().any(|b| b.ip == kept.ip) {
            continue;
        }
        let Ok(ip) = kept.ip.parse::<IpAddr>() else {
            continue;
        };
        let left = u64::try_from(kept.until - now).unwrap_or(1).max(1);
        match nft.add(ip, left).await {
            Ok(()) => said.push(format!(
                "the block of {ip} was missing from the firewall before its end (removed outside Gatehouse): put back for the {left} s it has left"
            )),
            Err(e) => said.push(format!("the block of {ip} is missing from the firewall and could not be put back: {e}")),
        }
    }
    if record.blocks.len() != live {
        let _ = record.save(&path);
    }
    said
}

/// Every blocked address, with the seconds left.
pub async fn blocked(policy: &FirewallPolicy) -> Result<BlockList, ApiError> {
    Nft::new(policy)
        .list()
        .await
        .map_err(|e| ApiError::conflict(codes::CANNOT_BLOCK, e))
}

/// How the agent runs `nft` (`["nft"]`, or inside a network namespace for tests).
#[derive(Debug, Clone)]
pub struct Nft {
    pub command: Vec<String>,
}

fn refuse(message: impl Into<String>) -> ApiError {
    ApiError::conflict(codes::CANNOT_BLOCK, message)
}

impl Nft {
    pub fn new(policy: &FirewallPolicy) -> Self {
        Nft {
            command: policy.nft_command.clone(),
        }
    }

    async fn run(&self, args: &[&str], script: Option<&str>) -> Result<String, String> {
        let (program, base) = self
            .command
            .split_first()
            .ok_or("the nft command is empty")?;
        let mut command = tokio::process::Command::new(program);
        command.args(base).args(args).kill_on_drop(true);
        command.stdin(if script.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| format!("{} could not run: {e}", self.command.join(" ")))?;
        if let (Some(script), Some(mut stdin)) = (script, child.stdin.take()) {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(script.as_bytes())
                .await
                .map_err(|e| format!("writing to nft: {e}"))?;
        }
        let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .map_err(|_| "nft did not finish within 10 s".to_owned())?
            .map_err(|e| format!("nft: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            let hint = if said.contains("Operation not permitted") {
                " (the agent needs CAP_NET_ADMIN: run it as root, or grant the capability in its systemd unit)"
            } else {
                ""
            };
            Err(format!("nft {}: {said}{hint}", args.join(" ")))
        }
    }

    /// Create the table, sets and chain if missing (the block sets, and so the blocks,
    /// survive), and fill the allow sets with `allow`: the chain accepts loopback and them
    /// before it drops anything.
    async fn ensure(&self, allow: &[String]) -> Result<(), String> {
        let (v4, v6): (Vec<String>, Vec<String>) = allow
            .iter()
            .filter_map(|entry| network(entry))
            .partition(|n| !n.contains(':'));
        let fill = |set: &str, nets: &[String]| {
            if nets.is_empty() {
                String::new()
            } else {
                format!("add element {TABLE} {set} {{ {} }}\n", nets.join(", "))
            }
        };
        let script = format!(
            "add table {TABLE}\n\
             add set {TABLE} blocked4 {{ type ipv4_addr; flags timeout; }}\n\
             add set {TABLE} blocked6 {{ type ipv6_addr; flags timeout; }}\n\
             add set {TABLE} allow4 {{ type ipv4_addr; flags interval; auto-merge; }}\n\
             add set {TABLE} allow6 {{ type ipv6_addr; flags interval; auto-merge; }}\n\
             flush set {TABLE} allow4\n\
             flush set {TABLE} allow6\n\
             {}{}\
             add chain {TABLE} input {{ type filter hook input priority -10; policy accept; }}\n\
             flush chain {TABLE} input\n\
             add rule {TABLE} input iif lo accept\n\
             add rule {TABLE} input ip saddr @allow4 accept\n\
             add rule {TABLE} input ip6 saddr @allow6 accept\n\
             add rule {TABLE} input ip saddr @blocked4 counter drop\n\
             add rule {TABLE} input ip6 saddr @blocked6 counter drop\n",
            fill("allow4", &v4),
            fill("allow6", &v6),
        );
        self.run(&["-f", "-"], Some(&script)).await.map(|_| ())
    }

    /// Add `ip` to its block set for `ttl_secs`, replacing a block already there.
    async fn add(&self, ip: IpAddr, ttl_secs: u64) -> Result<(), String> {
        let set = if ip.is_ipv4() { "blocked4" } else { "blocked6" };
        // A block already there gets the new TTL: delete (may fail if absent), then add.
        let _ = self
            .run(
                &[
                    "delete",
                    "element",
                    "inet",
                    "gatehouse",
                    set,
                    &format!("{{ {ip} }}"),
                ],
                None,
            )
            .await;
        self.run(
            &[
                "add",
                "element",
                "inet",
                "gatehouse",
                set,
                &format!("{{ {ip} timeout {ttl_secs}s }}"),
            ],
            None,
        )
        .await
        .map(|_| ())
    }

    /// Every address in the sets, with the seconds left.
    pub async fn list(&self) -> Result<BlockList, String> {
        let mut blocked = Vec::new();
        for set in ["blocked4", "blocked6"] {
            match self
                .run(&["-j", "list", "set", "inet", "gatehouse", set], None)
                .await
            {
                Ok(json) => blocked.extend(elements(&json)?),
                // No table yet: nothing blocked.
                Err(e) if e.contains("No such file") || e.contains("does not exist") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(BlockList { blocked })
    }

    /// Whether the input chain is in place: hooked on input and dropping from both sets.
    async fn chain_in_place(&self) -> Result<bool, String> {
        let json = self
            .run(&["-j", "list", "chain", "inet", "gatehouse", "input"], None)
            .await?;
        let hooked = json.contains("\"hook\": \"input\"") || json.contains("\"hook\":\"input\"");
        let drops = json.contains("@blocked4") || json.contains("\"blocked4\"");
        Ok(hooked && drops && json.contains("drop"))
    }

    pub async fn block(
        &self,
        request: &BlockRequest,
        console: Option<IpAddr>,
        allow: &[String],
    ) -> Result<BlockResult, ApiError> {
        // An IPv4 client seen through a dual-stack socket is `::ffff:a.b.c.d`: the same
        // address, and it must land in the IPv4 set to be dropped.
        let ip: IpAddr = request
            .ip
            .parse::<IpAddr>()
            .map_err(|_| ApiError::bad_request(format!("{:?} is not an IP address", request.ip)))?
            .to_canonical();
        let console = console.map(|c| c.to_canonical());
        if Some(ip) == console {
            return Err(refuse(format!(
                "{ip} is the address the console connects from: blocking it would cut the console off this host"
            )));
        }
        if ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() {
            return Err(refuse(format!(
                "{ip} is a loopback, unspecified or multicast address, not a client"
            )));
        }
        if let Some(entry) = request.never.iter().find(|n| covers(n, ip)) {
            return Err(refuse(format!(
                "{ip} is on the allowlist ({entry}): take it off first if it must be blocked"
            )));
        }
        if request.ttl_secs == 0 || request.ttl_secs > MAX_TTL {
            return Err(ApiError::bad_request(format!(
                "a block lasts 1 s to 30 days, not {} s",
                request.ttl_secs
            )));
        }
        let mut steps = Vec::new();
        self.ensure(allow)
            .await
            .map_err(|e| refuse(format!("the firewall could not be prepared: {e}")))?;
        steps.push(format!(
            "table {TABLE} with its input chain in place; loopback and {} allowlisted address(es) accepted before any drop",
            allow.len()
        ));
        let set = if ip.is_ipv4() { "blocked4" } else { "blocked6" };
        self.add(ip, request.ttl_secs)
            .await
            .map_err(|e| refuse(format!("the address could not be added: {e}")))?;
        steps.push(format!("{ip} added to {set} for {} s", request.ttl_secs));
        let listed = self
            .list()
            .await
            .map_err(|e| refuse(format!("the block could not be read back: {e}")))?;
        let present = listed
            .blocked
            .iter()
            .find(|b| b.ip == ip.to_string())
            .cloned();
        let in_place = self.chain_in_place().await.unwrap_or(false);
        match (&present, in_place) {
            (Some(b), true) => steps.push(format!(
                "verified: {ip} is in the set with {} s left, and the input chain drops it",
                b.expires_in_secs
            )),
            _ => {
                return Err(refuse(format!(
                    "the block did not take: {ip} {} the set, the input chain {}",
                    if present.is_some() {
                        "is in"
                    } else {
                        "is not in"
                    },
                    if in_place {
                        "is in place"
                    } else {
                        "is missing"
                    }
                )))
            }
        }
        tracing::warn!(%ip, ttl = request.ttl_secs, "address blocked");
        Ok(BlockResult {
            ip: ip.to_string(),
            blocked: true,
            expires_in_secs: present.map(|b| b.expires_in_secs),
            steps,
        })
    }

    pub async fn unblock(&self, ip: &str) -> Result<BlockResult, ApiError> {
        let ip: IpAddr = ip
            .parse::<IpAddr>()
            .map_err(|_| ApiError::bad_request(format!("{ip:?} is not an IP address")))?
            .to_canonical();
        let set = if ip.is_ipv4() { "blocked4" } else { "blocked6" };
        let mut steps = Vec::new();
        match self
            .run(
                &[
                    "delete",
                    "element",
                    "inet",
                    "gatehouse",
                    set,
                    &format!("{{ {ip} }}"),
                ],
                None,
            )
            .await
        {
            Ok(_) => steps.push(format!("{ip} removed from {set}")),
            Err(_) => steps.push(format!("{ip} was not blocked")),
        }
        let listed = self
            .list()
            .await
            .map_err(|e| refuse(format!("the firewall could not be read: {e}")))?;
        if listed.blocked.iter().any(|b| b.ip == ip.to_string()) {
            return Err(refuse(format!("{ip} is still in the set")));
        }
        steps.push(format!("verified: {ip} is not in the set"));
        tracing::warn!(%ip, "address unblocked");
        Ok(BlockResult {
            ip: ip.to_string(),
            blocked: false,
            expires_in_secs: None,
            steps,
        })
    }
}

/// An allowlist entry as nftables takes it: an address, or a network with its host bits
/// cleared (`10.77.9.5/24` is `10.77.9.0/24`); `None` for what is neither.
fn network(entry: &str) -> Option<String> {
    let (net, bits) = match entry.trim().split_once('/') {
        Some((net, bits)) => (net, Some(bits.parse::<u32>().ok()?)),
        None => (entry.trim(), None),
    };
    match net.parse::<IpAddr>().ok()?.to_canonical() {
        IpAddr::V4(a) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            Some(format!(
                "{}/{bits}",
                std::net::Ipv4Addr::from(u32::from(a) & mask)
            ))
        }
        IpAddr::V6(a) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return None;
            }
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            Some(format!(
                "{}/{bits}",
                std::net::Ipv6Addr::from(u128::from(a) & mask)
            ))
        }
    }
}

/// The elements of an `nft -j list set` document.
fn elements(json: &str) -> Result<Vec<Blocked>, String> {
    let doc: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("nft printed something unexpected: {e}"))?;
    let mut out = Vec::new();
    for item in doc
        .get("nftables")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
    {
        let Some(elems) = item
            .get("set")
            .and_then(|s| s.get("elem"))
            .and_then(|e| e.as_array())
        else {
            continue;
        };
        for e in elems {
            // With a timeout an element is {"elem": {"val": ip, "timeout": n, "expires": n}}.
            let (ip, expires) = match e.get("elem") {
                Some(inner) => (
                    inner.get("val").and_then(|v| v.as_str()).map(str::to_owned),
                    inner.get("expires").and_then(serde_json::Value::as_u64),
                ),
                None => (e.as_str().map(str::to_owned), None),
            };
            if let Some(ip) = ip {
                out.push(Blocked {
                    ip,
                    expires_in_secs: expires.unwrap_or(0),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_entries_become_networks_nftables_takes() {
        assert_eq!(
            network("10.77.9.5/24").as_deref(),
            Some("10.77.9.0/24"),
            "host bits cleared"
        );
        assert_eq!(
            network("203.0.113.7").as_deref(),
            Some("203.0.113.7/32"),
            "an address is a /32"
        );
        assert_eq!(
            network("::ffff:192.0.2.1").as_deref(),
            Some("192.0.2.1/32"),
            "a mapped IPv4 address is IPv4"
        );
        assert_eq!(
            network("2001:db8::1/32").as_deref(),
            Some("2001:db8::/32"),
            "IPv6 too"
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/x", ""] {
            assert_eq!(
                network(bad),
                None,
                "{bad:?} is no network and reaches no nft script"
            );
        }
    }

    #[test]
    fn set_elements_are_read_with_their_time_left() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "inet", "name": "blocked4", "table": "gatehouse", "type": "ipv4_addr", "handle": 1, "flags": ["timeout"], "elem": [{"elem": {"val": "10.77.1.2", "timeout": 600, "expires": 598}}]}}]}"#;
        let found = elements(json).expect("elements");
        assert_eq!(
            found,
            vec![Blocked {
                ip: "10.77.1.2".into(),
                expires_in_secs: 598
            }],
            "address and time left"
        );
        assert!(
            elements(r#"{"nftables": []}"#).expect("empty").is_empty(),
            "an empty set blocks nothing"
        );
    }
}
