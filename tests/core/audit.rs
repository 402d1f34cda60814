//! The console's audit log: operator actions chained by an HMAC from the keychain; an edited,
//! removed or cut-off row is found and named.

use gatehouse_core::DetectionSettings;

use crate::lab::Lab;

fn three_actions(lab: &Lab) {
    let detection: DetectionSettings = lab.console.analytics.detection().expect("detection");
    lab.console
        .analytics
        .set_detection(&detection)
        .expect("set");
    lab.console.compliance.set_tls_minimum("1.2").expect("tls");
    lab.console.analytics.reset_detection().expect("reset");
}

fn tamper(lab: &Lab, sql: &str) {
    let db = rusqlite::Connection::open(lab.data.join("gatehouse.sqlite3")).expect("db");
    db.execute(sql, []).expect("tamper");
}

#[test]
fn operator_actions_are_chained_and_verify() {
    let lab = Lab::new();
    three_actions(&lab);
    let log = lab.console.audit.entries(10).expect("log");
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        [
            "detection_settings",
            "compliance_tls_minimum",
            "detection_settings"
        ],
        "each action is a row, newest first"
    );
    assert!(
        log.iter().all(|e| !e.actor.is_empty() && e.mac.len() == 64),
        "each row says who and carries its MAC"
    );
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(verdict.intact, "an untouched log verifies: {verdict:?}");
    assert_eq!(verdict.rows, 3, "every row is checked");
}

#[test]
fn an_edited_row_is_the_first_broken_link() {
    let lab = Lab::new();
    three_actions(&lab);
    tamper(
        &lab,
        "UPDATE audit_log SET detail = 'TLS 1.3 or newer' WHERE id = 2",
    );
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(!verdict.intact, "an edit is noticed");
    assert_eq!(verdict.first_broken, Some(2), "at the edited row");
    assert!(
        verdict
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("edited")),
        "and says what kind of break: {verdict:?}"
    );
}

#[test]
fn a_removed_row_and_a_cut_off_end_are_found() {
    let lab = Lab::new();
    three_actions(&lab);
    tamper(&lab, "DELETE FROM audit_log WHERE id = 2");
    let verdict = lab.console.audit.verify().expect("verify");
    assert_eq!(
        verdict.first_broken,
        Some(2),
        "the gap is named: {verdict:?}"
    );
    assert!(
        verdict
            .problem
            .as_deref()
            .is_some_and(|p| p.contains("missing")),
        "as a missing row: {verdict:?}"
    );

    let lab = Lab::new();
    three_actions(&lab);
    tamper(&lab, "DELETE FROM audit_log WHERE id = 3");
    let verdict = lab.console.audit.verify().expect("verify");
    assert!(
        !verdict.intact,
        "cutting the newest row off is noticed: {verdict:?}"
    );
    assert_eq!(verdict.first_broken, Some(3), "where the log now ends");

    let lab = Lab::new();
    three_actions(&lab);
    tamper(
        &lab,
        "INSERT INTO audit_log (id, at_us, actor, action, target, detail, mac)
         VALUES (4, 0, 'mallory', 'block', 'fleet', 'forged', 'abcd')",
    );
    let verdict = lab.console.audit.verify().expect("verify");
    assert_eq!(
        verdict.first_broken,
        Some(4),
        "a row written without the key is refused"
    );
}
