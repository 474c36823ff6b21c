//! An acknowledgement takes no sequence number, must name a live subscription and a committed
//! position, moves the position only when its batch commits, and an acknowledgement of a
//! deleted subscription never moves a new one of the same name, even after a restart.
use alluvium::{Db, Error, Options, Result, Start, WriteBatch, WriteOptions};

#[test]
fn acknowledgements_take_no_sequence_number_and_name_a_live_subscription() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    db.create_subscription("views", Start::Beginning)?;
    assert!(matches!(
        db.create_subscription("views", Start::Beginning),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        db.create_subscription("", Start::Now),
        Err(Error::InvalidArgument(_))
    ));
    let s1 = db.put("a", "1")?;
    let s2 = db.put("b", "2")?;

    let mut only_ack = WriteBatch::new();
    only_ack.ack("views", s1);
    assert_eq!(
        db.write(only_ack, &WriteOptions::synced())?,
        s2,
        "no sequence number taken"
    );
    assert_eq!(db.latest_seqno(), s2);
    assert_eq!(
        db.put("c", "3")?,
        s2 + 1,
        "the next batch continues without a gap"
    );

    let mut with_data = WriteBatch::new();
    with_data.put("view:count", "2").ack("views", s2);
    let first = db.write(with_data, &WriteOptions::default())?;
    assert_eq!(first, s2 + 2);
    assert_eq!(db.open_subscription("views")?.position()?, s2);

    let mut unknown = WriteBatch::new();
    unknown.ack("nobody", 1);
    assert!(matches!(
        db.write(unknown, &WriteOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    let mut future = WriteBatch::new();
    future.put("x", "y").ack("views", 1000);
    assert!(matches!(
        db.write(future, &WriteOptions::default()),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(db.get("x")?, None, "a rejected batch writes nothing");

    // Only acknowledgements move the durable position, not reading.
    let mut sub = db.open_subscription("views")?;
    assert_eq!(sub.try_next()?.map(|b| b.first_seqno), Some(s2 + 1));
    assert_eq!(sub.position()?, s2);

    // Delete and recreate: the old acknowledgement (id) does not apply to the new one.
    db.delete_subscription("views")?;
    assert!(db.subscriptions().is_empty());
    db.create_subscription("views", Start::SeqNo(1))?;
    assert_eq!(db.open_subscription("views")?.position()?, 0);
    db.close()?;
    let db = Db::open(dir.path(), Options::default())?;
    let listed = db.subscriptions();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].name.as_str(), listed[0].position), ("views", 0));
    Ok(())
}
