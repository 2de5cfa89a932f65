#[kcl::on_records]
async fn handle(lines: Vec<String>) {
    let _ = lines;
}

fn main() {}
