//! The console's audit anchor kept beside the instance: the highest row wins, a lower one
//! sent later cannot replace it (that is how a cut-back log is told), and the anchor is
//! validated and forgotten at a new enrollment.

use gatehouse_agent::state::StateDir;
use gatehouse_protocol::AuditAnchor;

fn anchor(id: i64, fill: char) -> AuditAnchor {
    AuditAnchor {
        id,
        mac: fill.to_string().repeat(64),
    }
}

#[test]
fn the_highest_row_is_kept_and_a_lower_one_cannot_replace_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let state = StateDir::new(tmp.path());
    state.ensure().expect("state dir");
    let ops = |a| gatehouse_agent::ops::anchor::anchor(&state, a);
    assert_eq!(
        ops(anchor(5, 'a')).expect("first").held,
        None,
        "nothing held yet"
    );
    assert_eq!(
        ops(anchor(7, 'b')).expect("higher").held,
        Some(anchor(5, 'a')),
        "the answer is what was held before"
    );
    assert_eq!(
        ops(anchor(3, 'c')).expect("lower").held,
        Some(anchor(7, 'b')),
        "a console whose log was cut back hears of row 7"
    );
    assert_eq!(
        state.audit_anchor().expect("read"),
        Some(anchor(7, 'b')),
        "and the lower row did not replace it"
    );
    assert_eq!(
        ops(anchor(7, 'd')).expect("same id").held,
        Some(anchor(7, 'b')),
        "a different MAC for the same row does not replace it either"
    );
    for (bad, why) in [
        (anchor(0, 'a'), "row ids start at 1"),
        (
            AuditAnchor {
                id: 9,
                mac: "zz".repeat(32),
            },
            "a MAC is hexadecimal",
        ),
        (
            AuditAnchor {
                id: 9,
                mac: "ab".into(),
            },
            "a MAC is 64 digits",
        ),
    ] {
        let refused = ops(bad).expect_err(why);
        assert_eq!(refused.status, 400, "{why}: refused as a bad request");
    }
    assert_eq!(
        state.audit_anchor().expect("read"),
        Some(anchor(7, 'b')),
        "refused anchors change nothing"
    );
    gatehouse_agent::initialise(
        &state,
        time::OffsetDateTime::now_utc(),
        std::time::Duration::from_secs(600),
        [7; 20],
    )
    .expect("init again");
    assert_eq!(
        state.audit_anchor().expect("read"),
        None,
        "a new enrollment may be another console: the old anchor is forgotten"
    );
}
