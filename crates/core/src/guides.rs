//! Which checklist and playbook an instance gets, and where they come from.
//!
//! Both are data: the built-in ones are compiled in (`checklists/*.toml`, `playbooks/*.toml`),
//! and an operator adds or replaces one by writing `<data dir>/checklists/<name>.toml` or
//! `<data dir>/playbooks/<name>.toml` (a file wins over a built-in one of the same name). A
//! file is validated as the built-ins are: a misspelt check or action, a duplicate id, or a
//! `name` other than the file's is an error naming the file.
//!
//! The console knows an instance's profile by name only (a custom profile's file is on the
//! agent's host). A built-in profile's `[guides]` chooses; any other profile gets the
//! checklist and playbook of its own name when there is one, and the generic ones otherwise,
//! with a notice saying so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gatehouse_events::Profile;
use serde::de::DeserializeOwned;

use crate::compliance::{self, Template};
use crate::incidents::{self, Playbook};
use crate::paths::DataDir;
use crate::{Error, Result};

/// The checklist and playbook of a service with none of its own.
pub const GENERIC: &str = "generic";
/// What an instance on the generic checklist is told.
pub const GENERIC_CHECKLIST_NOTICE: &str = "no checklist of its own: the generic one";
/// What an incident on the generic playbook is told.
pub const GENERIC_PLAYBOOK_NOTICE: &str = "no playbook of its own: the generic one";

/// A guide chosen for a profile: its name, and a notice when it is not the service's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub name: String,
    pub notice: Option<String>,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Checklist,
    Playbook,
}

impl Kind {
    fn dir(self) -> &'static str {
        match self {
            Kind::Checklist => "checklists",
            Kind::Playbook => "playbooks",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Kind::Checklist => "checklist",
            Kind::Playbook => "playbook",
        }
    }

    fn builtin(self, name: &str) -> bool {
        match self {
            Kind::Checklist => compliance::template(name).is_some(),
            Kind::Playbook => incidents::playbook(name).is_some(),
        }
    }

    fn notice(self) -> &'static str {
        match self {
            Kind::Checklist => GENERIC_CHECKLIST_NOTICE,
            Kind::Playbook => GENERIC_PLAYBOOK_NOTICE,
        }
    }
}

/// `<data dir>/checklists`: where operator-written checklists live.
pub fn checklists_dir(data: &DataDir) -> PathBuf {
    data.root().join(Kind::Checklist.dir())
}

/// `<data dir>/playbooks`: where operator-written playbooks live.
pub fn playbooks_dir(data: &DataDir) -> PathBuf {
    data.root().join(Kind::Playbook.dir())
}

fn file(data: &DataDir, kind: Kind, name: &str) -> Option<PathBuf> {
    // A name with a separator or a dot could reach outside the directory: never a file.
    if name.is_empty() || name.contains(['/', '\\', '.']) || name.contains('\0') {
        return None;
    }
    Some(data.root().join(kind.dir()).join(format!("{name}.toml"))).filter(|p| p.is_file())
}

fn exists(data: &DataDir, kind: Kind, name: &str) -> bool {
    file(data, kind, name).is_some() || kind.builtin(name)
}

fn choose(data: &DataDir, kind: Kind, profile: &str) -> Choice {
    if let Some(Ok(Some(guides))) = Profile::builtin(profile).map(|p| p.map(|p| p.guides)) {
        let name = match kind {
            Kind::Checklist => guides.checklist,
            Kind::Playbook => guides.playbook,
        };
        return Choice { name, notice: None };
    }
    if exists(data, kind, profile) {
        return Choice {
            name: profile.to_owned(),
            notice: None,
        };
    }
    Choice {
        name: GENERIC.to_owned(),
        notice: Some(kind.notice().to_owned()),
    }
}

/// The checklist an instance of `profile` gets: the one its agent's profile names
/// (`named`), else as [`choose`] finds by the profile's name.
pub fn checklist_for(data: &DataDir, profile: &str, named: Option<&str>) -> Choice {
    named_or_chosen(data, Kind::Checklist, profile, named)
}

/// The playbook an incident on an instance of `profile` gets, as [`checklist_for`].
pub fn playbook_for(data: &DataDir, profile: &str, named: Option<&str>) -> Choice {
    named_or_chosen(data, Kind::Playbook, profile, named)
}

fn named_or_chosen(data: &DataDir, kind: Kind, profile: &str, named: Option<&str>) -> Choice {
    match named {
        Some(name) if exists(data, kind, name) => Choice {
            name: name.to_owned(),
            notice: None,
        },
        Some(name) => Choice {
            name: GENERIC.to_owned(),
            notice: Some(format!(
                "The agent's profile names the {word} {name:?}, which this console has neither \
                 built in nor as {}: the generic {word} is used until that file is added.",
                data.root()
                    .join(kind.dir())
                    .join(format!("{name}.toml"))
                    .display(),
                word = kind.word()
            )),
        },
        None => choose(data, kind, profile),
    }
}

fn invalid(kind: Kind, reason: String) -> Error {
    Error::InvalidInput {
        field: kind.word(),
        reason,
    }
}

fn load<T: DeserializeOwned>(
    data: &DataDir,
    kind: Kind,
    name: &str,
    builtin: impl FnOnce(&str) -> Option<T>,
    check: impl FnOnce(&T) -> std::result::Result<(), String>,
    name_of: impl Fn(&T) -> &str,
) -> Result<T> {
    let Some(path) = file(data, kind, name) else {
        return builtin(name).ok_or_else(|| {
            invalid(
                kind,
                format!(
                    "no {} {name:?}: neither built in nor a file {}",
                    kind.word(),
                    data.root()
                        .join(kind.dir())
                        .join(format!("{name}.toml"))
                        .display()
                ),
            )
        });
    };
    let parsed = parse_file::<T>(&path, kind, check)?;
    if name_of(&parsed) != name {
        return Err(invalid(
            kind,
            format!(
                "{}: name = {:?} must be the file's name, {name:?}",
                path.display(),
                name_of(&parsed)
            ),
        ));
    }
    Ok(parsed)
}

fn parse_file<T: DeserializeOwned>(
    path: &Path,
    kind: Kind,
    check: impl FnOnce(&T) -> std::result::Result<(), String>,
) -> Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(kind, format!("{}: {e}", path.display())))?;
    let parsed: T = toml::from_str(&text).map_err(|e| {
        invalid(
            kind,
            format!("{}: {}", path.display(), e.to_string().trim_end()),
        )
    })?;
    check(&parsed).map_err(|e| invalid(kind, format!("{}: {e}", path.display())))?;
    Ok(parsed)
}

/// A checklist by name: `<data dir>/checklists/<name>.toml`, else the built-in one.
pub fn checklist(data: &DataDir, name: &str) -> Result<Template> {
    load(
        data,
        Kind::Checklist,
        name,
        |n| compliance::template(n).cloned(),
        validate_checklist,
        |t: &Template| t.name.as_str(),
    )
}

/// A playbook by name: `<data dir>/playbooks/<name>.toml`, else the built-in one.
pub fn playbook(data: &DataDir, name: &str) -> Result<Playbook> {
    load(
        data,
        Kind::Playbook,
        name,
        |n| incidents::playbook(n).cloned(),
        validate_playbook,
        |p: &Playbook| p.name.as_str(),
    )
}

/// What the schema cannot say: ids are unique, and there is something in it.
pub(crate) fn validate_checklist(t: &Template) -> std::result::Result<(), String> {
    if t.items.is_empty() {
        return Err("a checklist needs at least one [[items]]".into());
    }
    let mut ids = BTreeSet::new();
    for item in &t.items {
        if !ids.insert(item.id.as_str()) {
            return Err(format!("item id {:?} is used twice", item.id));
        }
    }
    Ok(())
}

pub(crate) fn validate_playbook(p: &Playbook) -> std::result::Result<(), String> {
    if p.steps.is_empty() {
        return Err("a playbook needs at least one [[steps]]".into());
    }
    let mut ids = BTreeSet::new();
    for step in &p.steps {
        if !ids.insert(step.id.as_str()) {
            return Err(format!("step id {:?} is used twice", step.id));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> (tempfile::TempDir, DataDir) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data = DataDir::at(tmp.path());
        (tmp, data)
    }

    fn write(data: &DataDir, dir: &str, name: &str, text: &str) -> PathBuf {
        let dir = data.root().join(dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn built_in_profiles_take_their_guides_and_others_the_generic_ones_with_a_notice() {
        let (_tmp, data) = data();
        for name in Profile::builtin_names() {
            assert_eq!(
                checklist_for(&data, name, None),
                Choice {
                    name: name.to_owned(),
                    notice: None
                },
                "{name}'s [guides] names its own checklist"
            );
            assert_eq!(
                playbook_for(&data, name, None).notice,
                None,
                "{name} has a playbook of its own"
            );
        }
        let memo = checklist_for(&data, "memo", None);
        assert_eq!(
            memo.name, GENERIC,
            "an unknown service gets the generic one"
        );
        assert_eq!(
            memo.notice.as_deref(),
            Some(GENERIC_CHECKLIST_NOTICE),
            "and is told so"
        );
        assert_eq!(
            playbook_for(&data, "memo", None).name,
            GENERIC,
            "and the generic playbook"
        );
        assert_eq!(
            checklist_for(&data, "../checklists/memo", None).name,
            GENERIC,
            "a profile name with a path in it never names a file"
        );
        let generic = checklist(&data, GENERIC).expect("the generic checklist is built in");
        assert!(
            generic.items.iter().any(|i| !i.checks.is_empty()),
            "the generic checklist has automated items"
        );
    }

    #[test]
    fn a_file_in_the_data_dir_is_used_for_its_profile() {
        let (_tmp, data) = data();
        let text = include_str!("../../../checklists/generic.toml")
            .replace("name = \"generic\"", "name = \"memo\"");
        write(&data, "checklists", "memo", &text);
        assert_eq!(
            checklist_for(&data, "memo", None),
            Choice {
                name: "memo".into(),
                notice: None
            },
            "memo's own checklist, without a notice"
        );
        assert_eq!(
            checklist(&data, "memo").expect("valid").name,
            "memo",
            "read from the file"
        );
        assert_eq!(
            playbook_for(&data, "memo", None).name,
            GENERIC,
            "no playbook file: still the generic playbook"
        );
    }

    #[test]
    fn the_guides_the_agent_s_profile_names_come_first_and_a_missing_one_is_said() {
        let (_tmp, data) = data();
        let text = include_str!("../../../checklists/generic.toml")
            .replace("name = \"generic\"", "name = \"notes-ops\"");
        write(&data, "checklists", "notes-ops", &text);
        assert_eq!(
            checklist_for(&data, "notes", Some("notes-ops")),
            Choice {
                name: "notes-ops".into(),
                notice: None
            },
            "the checklist the agent's profile names, though the profile's name is another"
        );
        assert_eq!(
            checklist_for(&data, "sekha", Some("jelmore")).name,
            "jelmore",
            "a built-in one it names wins over the profile's name"
        );
        let missing = playbook_for(&data, "notes", Some("notes-ir"));
        assert_eq!(
            missing.name, GENERIC,
            "an unknown name falls back to the generic playbook"
        );
        assert!(
            missing.notice.as_deref().is_some_and(
                |n| n.contains("\"notes-ir\"") && n.contains("playbooks/notes-ir.toml")
            ),
            "and says which file would be used: {missing:?}"
        );
    }

    #[test]
    fn mistakes_in_a_file_name_the_file_and_the_mistake() {
        let (_tmp, data) = data();
        let text = include_str!("../../../checklists/generic.toml")
            .replace("name = \"generic\"", "name = \"memo\"")
            .replace("\"hsts\"", "\"htss\"");
        let path = write(&data, "checklists", "memo", &text);
        let err = checklist(&data, "memo")
            .expect_err("a misspelt check")
            .to_string();
        assert!(
            err.contains(&path.display().to_string()) && err.contains("htss"),
            "the file and the misspelt check are named: {err}"
        );

        let wrong_name = include_str!("../../../checklists/generic.toml");
        write(&data, "checklists", "other", wrong_name);
        let err = checklist(&data, "other")
            .expect_err("name differs")
            .to_string();
        assert!(
            err.contains("must be the file's name"),
            "a name other than the file's is refused: {err}"
        );

        let dup = include_str!("../../../playbooks/generic.toml")
            .replace("name = \"generic\"", "name = \"memo\"")
            .replace("id = \"recovery\"", "id = \"containment\"");
        write(&data, "playbooks", "memo", &dup);
        let err = playbook(&data, "memo")
            .expect_err("duplicate step")
            .to_string();
        assert!(
            err.contains("\"containment\" is used twice"),
            "a duplicate step id is refused: {err}"
        );

        let action = include_str!("../../../playbooks/generic.toml")
            .replace("name = \"generic\"", "name = \"memo\"")
            .replace("\"block_ip\"", "\"block_address\"");
        write(&data, "playbooks", "memo", &action);
        let err = playbook(&data, "memo")
            .expect_err("unknown action")
            .to_string();
        assert!(
            err.contains("block_address"),
            "an unknown action is named: {err}"
        );

        let err = checklist(&data, "nosuch").expect_err("no such").to_string();
        assert!(
            err.contains("neither built in nor a file"),
            "a missing checklist says where it was looked for: {err}"
        );
    }
}
