#[kcl::on_records]
fn handle(lines: Vec<String>) {
    let _ = lines;
}

#[kcl::main]
fn main(stream: String) -> impl kcl::RecordProcessor {
    let _ = stream;
    Handle
}
