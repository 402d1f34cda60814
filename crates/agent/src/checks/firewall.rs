//! The host firewall: some base chain on the input hook drops by default, read from
//! `nft -j list ruleset` (or the configured command).

use std::time::Duration;

use gatehouse_protocol::{CheckId, CheckResult};

use super::{fail, pass, unknown, Context};

pub(super) async fn input_policy_drops(cx: &Context<'_>) -> CheckResult {
    let check = CheckId::Firewall;
    let command = &cx.policy.firewall_command;
    let Some((program, args)) = command.split_first() else {
        return unknown(check, "firewall_command is empty", vec![]);
    };
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(program)
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await;
    let shown = command.join(" ");
    let output = match output {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return unknown(check, format!("{shown} could not run: {e}"), vec![]),
        Err(_) => return unknown(check, format!("{shown} did not finish in 10 s"), vec![]),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        return unknown(
            check,
            format!("{shown} failed (the agent needs CAP_NET_ADMIN to read the ruleset)"),
            vec![stderr],
        );
    }
    match input_policy(&output.stdout) {
        Ok(chains) if chains.is_empty() => fail(
            check,
            "no input chain: the host accepts all incoming traffic",
            vec![format!("{shown}: no base chain on the input hook")],
        ),
        Ok(chains) => {
            let evidence: Vec<String> = chains
                .iter()
                .map(|c| {
                    format!(
                        "{} {}: policy {}, {} rule(s)",
                        c.table, c.name, c.policy, c.rules
                    )
                })
                .collect();
            if chains.iter().any(|c| c.policy == "drop") {
                pass(
                    check,
                    "incoming traffic is dropped unless a rule accepts it",
                    evidence,
                )
            } else {
                fail(
                    check,
                    "the input policy accepts: incoming traffic is allowed by default",
                    evidence,
                )
            }
        }
        Err(e) => unknown(
            check,
            format!("{shown} printed something that is not a ruleset"),
            vec![e],
        ),
    }
}

struct InputChain {
    table: String,
    name: String,
    policy: String,
    rules: usize,
}

/// The base chains on the input hook of an `nft -j list ruleset` document.
fn input_policy(json: &[u8]) -> Result<Vec<InputChain>, String> {
    let doc: serde_json::Value = serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let items = doc
        .get("nftables")
        .and_then(|v| v.as_array())
        .ok_or("no \"nftables\" array")?;
    let mut chains = Vec::new();
    for item in items {
        let Some(chain) = item.get("chain") else {
            continue;
        };
        if chain.get("hook").and_then(|h| h.as_str()) != Some("input") {
            continue;
        }
        let family = chain.get("family").and_then(|v| v.as_str()).unwrap_or("");
        let table = chain.get("table").and_then(|v| v.as_str()).unwrap_or("");
        let name = chain
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_owned();
        let rules = items
            .iter()
            .filter_map(|i| i.get("rule"))
            .filter(|r| {
                r.get("table").and_then(|v| v.as_str()) == Some(table)
                    && r.get("chain").and_then(|v| v.as_str()) == Some(name.as_str())
                    && r.get("family").and_then(|v| v.as_str()) == Some(family)
            })
            .count();
        chains.push(InputChain {
            table: format!("{family} {table}"),
            name,
            policy: chain
                .get("policy")
                .and_then(|v| v.as_str())
                .unwrap_or("accept")
                .to_owned(),
            rules,
        });
    }
    Ok(chains)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_base_chains_on_the_input_hook_count() {
        let ruleset = br#"{"nftables":[{"metainfo":{"version":"1.0.6"}},
          {"table":{"family":"inet","name":"filter","handle":1}},
          {"chain":{"family":"inet","table":"filter","name":"input","handle":1,"type":"filter","hook":"input","prio":0,"policy":"drop"}},
          {"chain":{"family":"inet","table":"filter","name":"output","handle":2,"type":"filter","hook":"output","prio":0,"policy":"accept"}},
          {"rule":{"family":"inet","table":"filter","chain":"input","handle":3,"expr":[]}},
          {"rule":{"family":"inet","table":"filter","chain":"input","handle":4,"expr":[]}}]}"#;
        let chains = input_policy(ruleset).expect("a ruleset");
        assert_eq!(
            chains.len(),
            1,
            "the output chain is not about incoming traffic"
        );
        assert_eq!(chains[0].policy, "drop", "the policy is read");
        assert_eq!(chains[0].rules, 2, "the rules of that chain are counted");
        assert!(
            input_policy(br#"{"nftables":[]}"#)
                .expect("empty")
                .is_empty(),
            "an empty ruleset has no input chain"
        );
        assert!(
            input_policy(b"not json").is_err(),
            "garbage is an error, not a pass"
        );
    }
}
