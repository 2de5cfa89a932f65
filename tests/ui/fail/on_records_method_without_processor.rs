struct Counter;

impl Counter {
    #[kcl::on_records]
    fn handle(&mut self, lines: Vec<String>) {
        let _ = lines;
    }
}

fn main() {}
