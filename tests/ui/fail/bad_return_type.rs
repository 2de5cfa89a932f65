#[kcl::on_records]
fn handle(lines: Vec<String>) -> usize {
    lines.len()
}

fn main() {}
