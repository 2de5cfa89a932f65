struct Counter<T>(T);

#[kcl::processor]
impl<T> Counter<T> {
    #[kcl::on_records]
    fn handle(&mut self, lines: Vec<String>) {
        let _ = lines;
    }
}

fn main() {}
