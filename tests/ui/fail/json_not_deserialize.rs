struct Order {
    id: u64,
}

#[kcl::on_records]
fn handle(orders: Vec<kcl::Json<Order>>) {
    for kcl::Json(order) in orders {
        let _ = order.id;
    }
}

fn main() {}
