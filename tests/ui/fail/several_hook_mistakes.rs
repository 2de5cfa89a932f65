// Independent mistakes in one impl block are all reported, not only the first.
struct Counter;

#[kcl::processor]
impl Counter {
    #[kcl::on_records]
    fn handle<T>(&mut self, lines: Vec<String>, cp: &kcl::Checkpointer<'_>) {
        let _ = (lines, cp);
    }

    #[kcl::on_lease_lost]
    fn gone(self, why: String) {
        let _ = why;
    }

    #[kcl::on_shutdown]
    fn bye(&mut self) {}
}

fn main() {}
