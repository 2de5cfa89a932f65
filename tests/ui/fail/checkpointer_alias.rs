// The macro recognises the checkpointer by its name (`Checkpointer`): through a type alias it
// is not recognised, and the argument is refused.
type Cp<'a> = kcl::Checkpointer<'a>;

#[kcl::on_records]
fn handle(lines: Vec<String>, cp: &mut Cp<'_>) -> kcl::Result<()> {
    let _ = lines;
    cp.checkpoint_handled()?;
    Ok(())
}

fn main() {}
