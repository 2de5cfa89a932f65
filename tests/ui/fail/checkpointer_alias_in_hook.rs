// In a shutdown hook too, the checkpointer is recognised by its name only.
type Cp<'a> = kcl::Checkpointer<'a>;

struct Counter;

#[kcl::processor]
impl Counter {
    #[kcl::on_records]
    fn handle(&mut self, lines: Vec<String>) {
        let _ = lines;
    }

    #[kcl::on_shutdown_requested]
    fn bye(&mut self, cp: &mut Cp<'_>) -> kcl::Result<()> {
        cp.checkpoint_handled()?;
        Ok(())
    }
}

fn main() {}
