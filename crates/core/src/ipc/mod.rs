//! The window's IPC surface, declared once in [`with_commands!`](crate::with_commands), and
//! what is derived from it on this side: the UI's typed client (`ui/src/gen/ipc.ts`) and the
//! TypeScript of every type that crosses (`ui/src/gen/*.ts`). A test fails when the files in
//! `ui/src/gen/` differ from what this renders.

include!("commands.rs");

use std::collections::BTreeMap;

use ts_rs::{Config, TypeVisitor, TS};

#[allow(
    unused_imports,
    reason = "the command list names these types; only their TypeScript is used here"
)]
use crate::*;

/// One command: its name, its arguments' names and TypeScript types, and what it resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub name: &'static str,
    pub args: Vec<(&'static str, String)>,
    pub returns: String,
    /// Written by the shell by hand (it holds window state).
    pub shell: bool,
}

/// Collects every exportable type reachable from the ones visited, once each.
#[derive(Default)]
struct Files {
    cfg: Config,
    out: BTreeMap<String, String>,
}

impl TypeVisitor for Files {
    fn visit<T: TS + 'static + ?Sized>(&mut self) {
        if T::output_path().is_some() {
            let file = format!("{}.ts", T::ident(&self.cfg));
            if self.out.contains_key(&file) {
                return;
            }
            let text = T::export_to_string(&self.cfg).unwrap_or_else(|e| {
                // Only fails for types without a name, which the derive never produces.
                panic!("ts-rs cannot render {}: {e}", T::name(&self.cfg))
            });
            self.out.insert(file, text);
        }
        T::visit_dependencies(self);
        T::visit_generics(self);
    }
}

fn config() -> Config {
    // Times and ids are numbers in the UI; every wide integer in the DTOs says so too.
    Config::default().with_large_int("number")
}

/// The TypeScript name of a Rust type, as an argument or a result.
fn ts<T: TS + 'static + ?Sized>(cfg: &Config) -> String {
    match T::name(cfg).as_str() {
        "null" => "void".to_owned(),
        name => name.to_owned(),
    }
}

macro_rules! describe {
    ($( $kind:ident $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $(= |$c:ident| $body:expr)? ; )*) => {
        {
            let cfg = config();
            vec![$(
                Command {
                    name: stringify!($name),
                    args: vec![$((stringify!($arg), ts::<$ty>(&cfg))),*],
                    returns: ts::<$ret>(&cfg),
                    shell: stringify!($kind) == "shell",
                }
            ),*]
        }
    };
}

macro_rules! visit_types {
    ($( $kind:ident $name:ident ( $($arg:ident : $ty:ty),* $(,)? ) -> $ret:ty $(= |$c:ident| $body:expr)? ; )*) => {
        {
            let mut files = Files { cfg: config(), out: BTreeMap::new() };
            $(
                $( files.visit::<$ty>(); )*
                files.visit::<$ret>();
            )*
            files
        }
    };
}

/// Every command, in declaration order.
pub fn commands() -> Vec<Command> {
    with_commands!(describe)
}

/// Every file of `ui/src/gen/`: each type that crosses IPC (reachable from a command, or the
/// error every command may fail with), and `ipc.ts`, the typed client.
pub fn typescript() -> Vec<(String, String)> {
    let mut files = with_commands!(visit_types);
    files.visit::<IpcError>();
    let mut out: Vec<(String, String)> = files.out.into_iter().collect();
    out.push(("ipc.ts".to_owned(), client(&commands(), &out)));
    out
}

fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `ipc.ts`: the `Host` interface (one method per command, arguments in order) and
/// `createHost`, which maps each method to its command through the given `call`. The
/// window's `call` is Tauri's `invoke`, the only `@tauri-apps` import in the UI.
fn client(commands: &[Command], types: &[(String, String)]) -> String {
    let mut out = String::from(
        "// Generated from the Rust command list (crates/core/src/ipc/commands.rs). Do not edit \
         this file manually.\nimport { invoke } from '@tauri-apps/api/core';\n\n",
    );
    for (file, _) in types {
        let name = file.trim_end_matches(".ts");
        let used = commands.iter().any(|c| {
            std::iter::once(&c.returns)
                .chain(c.args.iter().map(|(_, t)| t))
                .any(|t| mentions(t, name))
        });
        if used {
            out.push_str(&format!("import type {{ {name} }} from './{name}';\n"));
        }
    }
    out.push_str(
        "\n/** Calls a command by its name with its arguments (camelCase keys, as Tauri maps \
         them to the Rust parameters). */\nexport type Call = (command: string, args?: \
         Record<string, unknown>) => Promise<unknown>;\n\n/** Every command the console's \
         backend answers. */\nexport interface Host {\n",
    );
    for c in commands {
        let args = c
            .args
            .iter()
            .map(|(n, t)| format!("{}: {t}", camel(n)))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "  {}({args}): Promise<{}>;\n",
            camel(c.name),
            c.returns
        ));
    }
    out.push_str("}\n\nexport function createHost(call: Call): Host {\n  return {\n");
    for c in commands {
        let names: Vec<String> = c.args.iter().map(|(n, _)| camel(n)).collect();
        let args = if names.is_empty() {
            String::new()
        } else {
            format!(", {{ {} }}", names.join(", "))
        };
        out.push_str(&format!(
            "    {}: ({}) => call('{}'{args}) as Promise<{}>,\n",
            camel(c.name),
            names.join(", "),
            c.name,
            c.returns
        ));
    }
    out.push_str(
        "  };\n}\n\n/** The window's call: Tauri's `invoke`. */\nexport const tauriCall: Call = \
         (command, args) => invoke(command, args);\n",
    );
    out
}

/// Whether a TypeScript type expression names `ident` (as a whole word).
fn mentions(ty: &str, ident: &str) -> bool {
    ty.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word == ident)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_names_methods_in_camel_case_and_commands_as_declared() {
        let commands = commands();
        let set = commands
            .iter()
            .find(|c| c.name == "set_alert_state")
            .expect("set_alert_state is a command");
        assert_eq!(
            set.args,
            [
                ("id", "number".to_owned()),
                ("state", "AlertState".to_owned())
            ],
            "wide integers are numbers, DTOs by their own names"
        );
        let text = client(&commands, &[("AlertState.ts".into(), String::new())]);
        assert!(
            text.contains("  setAlertState(id: number, state: AlertState): Promise<Alert>;"),
            "the interface method: {text}"
        );
        assert!(
            text.contains("setAlertState: (id, state) => call('set_alert_state', { id, state })"),
            "and its call with the command's snake_case name"
        );
        assert!(
            text.contains("import type { AlertState } from './AlertState';"),
            "types are imported from their generated files"
        );
        let remove = commands
            .iter()
            .find(|c| c.name == "remove_instance")
            .expect("remove_instance");
        assert_eq!(remove.returns, "void", "a unit result is void");
    }
}
