#[kcl::on_records]
fn handle(lines: Vec<String>) {
    let _ = lines;
}

#[kcl::main]
fn main() {
    let _ = handle;
}
