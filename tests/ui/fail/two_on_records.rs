struct Counter;

#[kcl::processor]
impl Counter {
    #[kcl::on_records]
    fn handle(&mut self, lines: Vec<String>) {
        let _ = lines;
    }

    #[kcl::on_records]
    fn handle_again(&mut self, lines: Vec<String>) {
        let _ = lines;
    }
}

fn main() {}
