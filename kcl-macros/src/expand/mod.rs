//! The expansions: one file per form, plus the trait method both processor forms share.

pub(crate) mod free_fn;
pub(crate) mod impl_block;
pub(crate) mod main;
mod trait_method;
