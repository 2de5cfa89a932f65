//! Programs the workspace's tests run as child processes (see `src/bin/`): `scripted_child`, a
//! MultiLangDaemon child for the `kcl run` tests, well- or ill-behaved on purpose.
//!
//! Not published. The tests build its binaries with `cargo build -p test-support` and find them
//! next to their own executable's folder (`target/<profile>/`).
