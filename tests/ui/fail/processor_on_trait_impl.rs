struct Counter;

#[kcl::processor]
impl kcl::RecordProcessor for Counter {
    fn process_records(&mut self, _: &kcl::Batch, _: &mut kcl::Checkpointer<'_>) -> kcl::Result<()> {
        Ok(())
    }
}

fn main() {}
