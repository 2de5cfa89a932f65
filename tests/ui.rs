//! Compile-time behaviour of the macros (trybuild): every supported form compiles and runs
//! (`tests/ui/pass`), every mistake gives an error on the user's tokens saying what to write
//! (`tests/ui/fail`, one mistake per file, expected output in the `.stderr` next to it).
//!
//! Without the `tokio` feature, `async fn` hooks must be refused; with it, they must work
//! (`tests/ui/pass_async`). `cargo test` runs the first set, `cargo test --features tokio` the
//! second. Regenerate expected output with `TRYBUILD=overwrite cargo test --test ui`.

#[cfg(not(feature = "tokio"))]
#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}

#[cfg(feature = "tokio")]
#[test]
fn ui_async() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass_async/*.rs");
}
