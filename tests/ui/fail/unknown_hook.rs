struct Counter;

#[kcl::processor]
impl Counter {
    #[kcl::on_records]
    fn handle(&mut self, lines: Vec<String>) {
        let _ = lines;
    }

    #[kcl::on_shutdown]
    fn bye(&mut self) {}
}

fn main() {}
