//! The `kcl` binary; see `kcl --help`.

fn main() -> std::process::ExitCode {
    kcl_cli::main()
}
