// `Vec<T>` (T not `u8`) means "the whole batch" only when it is spelled `Vec`: through an alias
// the argument is one record's payload, and `Vec<String>` is not a payload extractor.
type Lines = Vec<String>;

#[kcl::on_records]
fn handle(lines: Lines) {
    let _ = lines;
}

fn main() {}
