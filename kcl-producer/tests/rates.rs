//! Per-shard rate limiting on tokio's paused clock (producer.md T6): offered three times what
//! the shards take, the producer delivers near their capacity with almost no throttled entries,
//! where without it most attempts are throttled; a shard shared with other writers (slower than
//! the configured rate) is paced down.

use std::time::Duration;

use kcl_producer::api::StreamRef;
use kcl_producer::testing::{FakeKinesis, ShardLimits};
use kcl_producer::{Producer, Record, ShardRate, StatsSnapshot};

/// Each fake shard takes 100 records and 100 kB per second.
fn limits() -> ShardLimits {
    ShardLimits {
        records_per_second: 100,
        bytes_per_second: 100_000,
    }
}

struct Run {
    at_5s: StatsSnapshot,
    at_end: StatsSnapshot,
    seconds: u64,
}

impl Run {
    /// Throttled entries per entry sent, after the first 5 s.
    fn throttled_share(&self) -> f64 {
        let sent = self.at_end.entries_sent - self.at_5s.entries_sent;
        let throttled = self.at_end.entries_throttled - self.at_5s.entries_throttled;
        throttled as f64 / sent as f64
    }

    fn delivered_per_second(&self) -> f64 {
        self.at_end.delivered as f64 / self.seconds as f64
    }
}

/// Offers `per_second` records for `seconds` to a 2-shard fake whose shards take 100/s each.
async fn offer(rate: Option<ShardRate>, per_second: u64, seconds: u64) -> Run {
    let kinesis = FakeKinesis::new("s", 2).with_limits(limits());
    let mut builder = Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .backoff(Duration::from_millis(100), Duration::from_secs(2));
    if let Some(rate) = rate {
        builder = builder.rate_limit(rate);
    }
    let producer = builder.build().await.unwrap();
    let mut tickets = Vec::new();
    let mut at_5s = StatsSnapshot::default();
    let per_tick = per_second / 10;
    for tick in 0..seconds * 10 {
        for n in 0..per_tick {
            let number = tick * per_tick + n;
            let record = Record::new(format!("key-{}", number % 1_000), vec![b'x'; 100]);
            tickets.push(producer.send(record).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if tick == 49 {
            at_5s = producer.stats();
        }
    }
    let at_end = producer.stats();
    let report = producer.shutdown(Duration::from_secs(1)).await;
    let accounted = report.delivered
        + (report.failed.len() + report.unsent.len() + report.in_doubt.len()) as u64;
    assert_eq!(
        accounted,
        per_tick * seconds * 10,
        "every record accounted for"
    );
    for ticket in tickets {
        let _ = ticket.await;
    }
    Run {
        at_5s,
        at_end,
        seconds,
    }
}

#[tokio::test(start_paused = true)]
async fn paced_to_the_shards_capacity_it_delivers_nearly_all_of_it_with_almost_no_throttling() {
    // Capacity: 2 shards x 100 records/s; offered: 3 times that, for 30 s.
    let paced = offer(Some(ShardRate::new(100, 100_000)), 600, 30).await;
    let unpaced = offer(None, 600, 30).await;
    eprintln!(
        "paced: {:.1}/s delivered, {:.3} throttled; unpaced: {:.1}/s, {:.3}",
        paced.delivered_per_second(),
        paced.throttled_share(),
        unpaced.delivered_per_second(),
        unpaced.throttled_share()
    );
    assert!(
        paced.delivered_per_second() >= 0.9 * 200.0,
        "{:.1} records/s of 200",
        paced.delivered_per_second()
    );
    assert!(
        paced.throttled_share() <= 0.02,
        "{:.3} of entries throttled after 5 s",
        paced.throttled_share()
    );
    // The same load without the rate limit: most attempts are throttled.
    assert!(
        unpaced.throttled_share() > 0.3,
        "{:.3}",
        unpaced.throttled_share()
    );
}

#[tokio::test(start_paused = true)]
async fn a_shard_slower_than_the_configured_rate_is_paced_down() {
    // The producer believes each shard takes 200 records/s; they take 100 (other writers).
    let shared = offer(Some(ShardRate::new(200, 200_000)), 600, 30).await;
    let unpaced = offer(None, 600, 30).await;
    eprintln!(
        "shared: {:.1}/s delivered, {:.3} throttled",
        shared.delivered_per_second(),
        shared.throttled_share()
    );
    assert!(shared.delivered_per_second() >= 0.8 * 200.0);
    assert!(
        shared.throttled_share() < unpaced.throttled_share() / 3.0,
        "{:.3} vs {:.3} without pacing",
        shared.throttled_share(),
        unpaced.throttled_share()
    );
}

#[tokio::test(start_paused = true)]
async fn with_aggregation_and_faults_every_parked_record_is_delivered() {
    let kinesis = FakeKinesis::new("s", 3)
        .with_limits(limits())
        .with_seed(6)
        .with_faults(kcl_producer::testing::Faults {
            throttled_entries: 0.1,
            server_errors: 0.05,
            lost_acks: 0.05,
            ..Default::default()
        });
    let producer = Producer::builder(kinesis.clone(), StreamRef::name("s"))
        .aggregation(kcl_producer::Aggregation::same_key())
        .rate_limit(ShardRate::new(100, 20_000))
        .build()
        .await
        .unwrap();
    let mut tickets = Vec::new();
    for n in 0..5_000u64 {
        let record = Record::new(format!("key-{}", n % 50), format!("{n:08}"));
        tickets.push(producer.send(record).await.unwrap());
    }
    for ticket in tickets {
        ticket.await.expect("delivered");
    }
    let report = producer.shutdown(Duration::from_secs(5)).await;
    assert!(report.is_complete(), "{report:?}");
    let mut numbers: Vec<u64> = kinesis
        .all_records()
        .iter()
        .flat_map(|stored| match kcl_kpl::decode(&stored.data) {
            Ok(users) => users.into_iter().map(|u| u.data).collect(),
            Err(_) => vec![stored.data.to_vec()],
        })
        .map(|data| std::str::from_utf8(&data).unwrap().parse().unwrap())
        .collect();
    numbers.sort_unstable();
    numbers.dedup();
    assert_eq!(numbers.len(), 5_000);
}
