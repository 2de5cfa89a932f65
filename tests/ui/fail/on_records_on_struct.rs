// A parse error (the attribute on something that is not a function) is the only error: the
// item is emitted back with it (see also kcl-macros/src/fallback.rs's unit test).
#[kcl::on_records]
struct Handle;

fn main() {
    let _ = Handle;
}
