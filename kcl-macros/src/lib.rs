//! Procedural macros for the `kcl` SDK.
//!
//! This crate is intentionally empty for now: every behaviour of the SDK is available through the
//! plain function and trait API of `kcl-core` (re-exported by `kcl`). The attribute macros
//! (`#[kcl::processor]`, `#[kcl::on_records]`, `#[kcl::main]`) will be thin sugar over that API.
