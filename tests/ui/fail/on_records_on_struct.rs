// A parse error (the attribute on something that is not a function) is the only error: the
// item is emitted back, so its uses do not fail too.
#[kcl::on_records]
struct Handle;

fn main() {
    let _ = Handle;
}
