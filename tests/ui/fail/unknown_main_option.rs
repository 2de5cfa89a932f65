#[kcl::on_records]
fn handle(lines: Vec<String>) {
    let _ = lines;
}

#[kcl::main(retries = 3)]
fn main() -> impl kcl::RecordProcessor {
    Handle
}
