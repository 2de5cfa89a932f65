struct NotAProcessor;

#[kcl::main]
fn main() -> NotAProcessor {
    NotAProcessor
}
