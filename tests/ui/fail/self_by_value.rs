struct Counter;

#[kcl::processor]
impl Counter {
    #[kcl::on_records]
    fn handle(self, lines: Vec<String>) {
        let _ = lines;
    }
}

fn main() {}
