//! The exactly-once argument (ARCHITECTURE.md, "Bridges", point 3) relies on JetStream
//! checking `Nats-Msg-Id` before `Nats-Expected-Last-Sequence`: a change re-published by a
//! new run while the killed run's copy landed meanwhile is dropped as a duplicate, not refused
//! (which would stop the run) and not stored twice. This checks the server does that.

mod common;

use async_nats::jetstream::{self, message::PublishMessage};
use common::{NatsServer, Result};

#[test]
fn a_republished_change_is_dropped_by_its_message_id_before_its_expected_sequence_is_checked(
) -> Result {
    let Some(nats) = NatsServer::start()? else {
        return Ok(());
    };
    common::runtime()?.block_on(async {
        let client = async_nats::connect(nats.url.trim_start_matches("nats://")).await?;
        let js = jetstream::new(client);
        js.create_stream(jetstream::stream::Config {
            name: "S".into(),
            subjects: vec!["s.>".into()],
            ..Default::default()
        })
        .await?;
        let message = |expected: u64| {
            PublishMessage::build()
                .message_id("db:1")
                .expected_last_sequence(expected)
                .payload("v".into())
        };
        let first = js.send_publish("s.k", message(0)).await?.await?;
        assert_eq!((first.sequence, first.duplicate), (1, false));
        // The same change again, expecting the stream to be empty as the first copy did.
        let again = js.send_publish("s.k", message(0)).await?.await?;
        assert_eq!(
            (again.sequence, again.duplicate),
            (1, true),
            "dropped as a duplicate"
        );
        // A different change with a stale expected sequence is refused.
        let stale = PublishMessage::build()
            .message_id("db:2")
            .expected_last_sequence(0)
            .payload("w".into());
        assert!(js.send_publish("s.k", stale).await?.await.is_err());
        let mut stream = js.get_stream("S").await?;
        assert_eq!(stream.info().await?.state.messages, 1);
        Ok(())
    })
}
