#[kcl::on_records]
fn handle(lines: Vec<String>) {
    let _ = lines;
}

#[kcl::main(checkpoint = sometimes)]
fn main() -> impl kcl::RecordProcessor {
    Handle
}
