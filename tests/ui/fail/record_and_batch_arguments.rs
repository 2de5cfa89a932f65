#[kcl::on_records]
fn handle(line: String, all: Vec<String>) {
    let _ = (line, all);
}

fn main() {}
