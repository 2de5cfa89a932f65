#[kcl::on_records]
fn handle(numbers: Vec<u64>) {
    let _ = numbers;
}

fn main() {}
