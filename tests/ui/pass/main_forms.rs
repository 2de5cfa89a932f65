#[kcl::on_records]
fn handle(lines: Vec<String>) {
    let _ = lines;
}

#[derive(Default)]
struct Counter {
    seen: usize,
}

#[kcl::processor]
impl Counter {
    #[kcl::on_records]
    fn count(&mut self, lines: Vec<String>) {
        self.seen += lines.len();
    }
}

/// Not called: each would take over stdin/stdout.
#[allow(dead_code)]
mod binaries {
    #[kcl::main]
    fn plain() -> impl kcl::RecordProcessor {
        super::Handle
    }

    #[kcl::main(checkpoint = manual)]
    fn manual() -> super::Counter {
        super::Counter::default()
    }

    #[kcl::main(checkpoint = batch)]
    fn every_batch() -> super::Counter {
        super::Counter::default()
    }

    #[kcl::main(checkpoint = every(records = 1000, seconds = 30))]
    fn every_both() -> super::Counter {
        super::Counter::default()
    }

    #[kcl::main(checkpoint = every(seconds = 5))]
    fn every_interval() -> Box<dyn kcl::RecordProcessor> {
        Box::new(kcl::from_fn(|_, _| Ok(())))
    }

    pub fn exit_code_type() -> std::process::ExitCode {
        plain()
    }
}

fn main() {
    let mut counter = Counter::default();
    counter.count(vec!["a".into()]);
    assert_eq!(counter.seen, 1);
}
