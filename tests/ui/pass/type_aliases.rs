//! Aliases of payload types work: a non-`Vec` argument is one record's payload whatever it is
//! called, and an alias of `Vec<u8>` is a payload too (the handler is called once per record).
use std::cell::RefCell;

use kcl::testing::TestDaemon;

thread_local! {
    static SEEN: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

#[derive(serde::Deserialize)]
struct Event {
    n: u32,
}

type Order = kcl::Json<Event>;
type Bytes = Vec<u8>;

#[kcl::on_records]
fn per_order(order: Order) {
    SEEN.with(|s| s.borrow_mut().push(format!("order {}", order.n)));
}

#[kcl::on_records]
fn per_payload(bytes: Bytes) {
    SEEN.with(|s| s.borrow_mut().push(format!("bytes {}", bytes.len())));
}

fn main() {
    let mut daemon = TestDaemon::new(PerOrder);
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads([r#"{"n":1}"#, r#"{"n":2}"#]);

    let mut daemon = TestDaemon::new(PerPayload);
    daemon.initialize("shardId-000000000000");
    daemon.process_payloads(["ab", "cde"]);

    let seen = SEEN.with(|s| s.borrow().clone());
    assert_eq!(seen, ["order 1", "order 2", "bytes 2", "bytes 3"]);
}
