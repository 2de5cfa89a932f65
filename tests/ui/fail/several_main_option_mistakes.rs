// Every mistake in #[kcl::main]'s options is reported, not only the first.
#[kcl::main(checkpoint = every(records = 0), retries = 2, on_failure = ignore, attempts = 0)]
fn main() -> Counter {
    Counter
}

struct Counter;

#[kcl::processor]
impl Counter {
    #[kcl::on_records]
    fn handle(&mut self, lines: Vec<String>) {
        let _ = lines;
    }
}
