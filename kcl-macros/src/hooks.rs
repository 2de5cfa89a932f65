//! The hooks, in one table: attribute name, trait method, what the method may take. Every list
//! and message about hooks is built from [`HOOKS`].

use syn::Attribute;

use crate::paths::{self, Path};

/// A hook: one `RecordProcessor` method a `#[kcl::on_…]` attribute marks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Hook {
    Records,
    Initialize,
    LeaseLost,
    ShardEnded,
    ShutdownRequested,
    Failure,
}

/// What a hook method takes besides `&mut self`.
#[derive(Clone, Copy)]
pub(crate) enum Takes {
    /// Batch arguments chosen by type (`crate::signature`): `on_records`.
    Batch,
    /// Nothing: the lease is gone.
    Nothing,
    /// `&T` (the trait method's own parameter), or nothing when `optional`.
    Shared {
        /// The parameter's type.
        ty: Path,
        /// Whether the type has a lifetime parameter (`Failure<'_>`).
        lifetime: bool,
        /// Whether the method may take nothing instead.
        optional: bool,
    },
    /// `&mut kcl::Checkpointer<'_>` or nothing; without it, what was handled is checkpointed
    /// after the method returns.
    CheckpointerOrNothing,
}

/// One row of [`HOOKS`].
pub(crate) struct Spec {
    /// The hook.
    pub(crate) hook: Hook,
    /// The attribute's name, `on_records` in `#[kcl::on_records]`.
    pub(crate) attribute: &'static str,
    /// The `kcl::RecordProcessor` method the hook implements.
    pub(crate) trait_method: &'static str,
    /// What the hook method may take.
    pub(crate) takes: Takes,
    /// The accepted signatures, for messages: "#[kcl::on_initialize] {usage}".
    pub(crate) usage: &'static str,
}

/// The hooks, in the order they are listed in messages.
pub(crate) const HOOKS: &[Spec] = &[
    Spec {
        hook: Hook::Records,
        attribute: "on_records",
        trait_method: "process_records",
        takes: Takes::Batch,
        usage: "takes record payloads, batch extractors and the checkpointer, e.g. `Vec<kcl::Json<T>>`, `String` or `&mut kcl::Checkpointer<'_>`",
    },
    Spec {
        hook: Hook::Initialize,
        attribute: "on_initialize",
        trait_method: "initialize",
        takes: Takes::Shared {
            ty: paths::INITIALIZE,
            lifetime: false,
            optional: true,
        },
        usage: "takes `&kcl::Initialize` (shard id and starting position) or nothing",
    },
    Spec {
        hook: Hook::LeaseLost,
        attribute: "on_lease_lost",
        trait_method: "lease_lost",
        takes: Takes::Nothing,
        usage: "takes no argument: the lease is gone, nothing can be checkpointed",
    },
    Spec {
        hook: Hook::ShardEnded,
        attribute: "on_shard_ended",
        trait_method: "shard_ended",
        takes: Takes::CheckpointerOrNothing,
        usage: "takes `&mut kcl::Checkpointer<'_>` or nothing (then what was handled is checkpointed after it)",
    },
    Spec {
        hook: Hook::ShutdownRequested,
        attribute: "on_shutdown_requested",
        trait_method: "shutdown_requested",
        takes: Takes::CheckpointerOrNothing,
        usage: "takes `&mut kcl::Checkpointer<'_>` or nothing (then what was handled is checkpointed after it)",
    },
    Spec {
        hook: Hook::Failure,
        attribute: "on_failure",
        trait_method: "on_failure",
        takes: Takes::Shared {
            ty: paths::FAILURE,
            lifetime: true,
            optional: false,
        },
        usage: "takes `&kcl::Failure<'_>`: the records that failed on every attempt, the error, the attempts",
    },
];

impl Hook {
    /// The hook whose attribute is `#[kcl::{name}]`.
    pub(crate) fn from_name(name: &str) -> Option<Hook> {
        HOOKS.iter().find(|s| s.attribute == name).map(|s| s.hook)
    }

    /// The hook's row of [`HOOKS`].
    pub(crate) fn spec(self) -> &'static Spec {
        HOOKS
            .iter()
            .find(|s| s.hook == self)
            .expect("every hook has a row in HOOKS")
    }

    /// The attribute's name, `on_records` in `#[kcl::on_records]`.
    pub(crate) fn name(self) -> &'static str {
        self.spec().attribute
    }
}

/// "`on_records`, `on_initialize`, …": every hook, for messages.
pub(crate) fn hook_list() -> String {
    HOOKS
        .iter()
        .map(|s| format!("`{}`", s.attribute))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an attribute on a method means to `#[kcl::processor]`.
pub(crate) enum Marker {
    Hook(Hook),
    /// `#[kcl::on_…]` with a name that is no hook.
    Unknown,
    /// Not ours.
    Other,
}

/// Reads `#[kcl::on_records]`, `#[on_records]` (imported), or an unknown `#[kcl::on_…]`.
pub(crate) fn marker(attr: &Attribute) -> Marker {
    let segments: Vec<String> = attr
        .path()
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    let name = match segments.as_slice() {
        [krate, name] if krate == "kcl" => name,
        [name] => match Hook::from_name(name) {
            Some(hook) => return Marker::Hook(hook),
            None => return Marker::Other,
        },
        _ => return Marker::Other,
    };
    match Hook::from_name(name) {
        Some(hook) => Marker::Hook(hook),
        None if name.starts_with("on_") || name == "processor" => Marker::Unknown,
        None => Marker::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_is_found_by_its_name_and_listed() {
        let list = hook_list();
        for spec in HOOKS {
            assert_eq!(Hook::from_name(spec.attribute), Some(spec.hook));
            assert_eq!(spec.hook.name(), spec.attribute);
            assert!(list.contains(&format!("`{}`", spec.attribute)), "{list}");
        }
        assert!(list.contains("`on_failure`"), "{list}");
        assert_eq!(Hook::from_name("on_shutdown"), None);
    }

    #[test]
    fn the_documented_hook_table_has_every_hook() {
        let docs = include_str!("../docs/processor.md");
        for spec in HOOKS.iter().filter(|s| s.hook != Hook::Records) {
            let row = format!("| `#[kcl::{}]` | `{}` |", spec.attribute, spec.trait_method);
            assert!(docs.contains(&row), "docs/processor.md lacks the row {row}");
        }
    }

    #[test]
    fn names_and_trait_methods_are_unique() {
        for (i, a) in HOOKS.iter().enumerate() {
            for b in &HOOKS[i + 1..] {
                assert_ne!(a.attribute, b.attribute);
                assert_ne!(a.trait_method, b.trait_method);
                assert_ne!(a.hook, b.hook);
            }
        }
    }
}
