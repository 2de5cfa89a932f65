struct Counter;

#[kcl::processor]
impl Counter {
    fn handle(&mut self, lines: Vec<String>) {
        let _ = lines;
    }
}

fn main() {}
