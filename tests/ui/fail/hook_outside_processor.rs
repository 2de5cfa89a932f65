#[kcl::on_initialize]
fn ready(shard: &kcl::Initialize) {
    let _ = shard;
}

fn main() {}
