#[kcl::on_records]
fn handle(lines: Vec<String>, checkpointer: &kcl::Checkpointer<'_>) {
    let _ = (lines, checkpointer);
}

fn main() {}
