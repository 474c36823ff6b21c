//! A prefix or range filter hands out only the matching operations of each batch (with their
//! own sequence numbers), skips batches with none, and still moves the cursor's position past
//! every batch it skipped.
use alluvium::{Db, Error, KeyFilter, Op, Options, Result, Start, WriteBatch};

#[test]
fn key_filters_hand_out_only_matching_operations() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    let mut mixed = WriteBatch::new();
    mixed.put("msg:1", "hi").put("view:1", "x").delete("msg:0");
    db.write(mixed, &Default::default())?; // 1..=3
    db.put("view:2", "y")?; // 4: no message
    db.put("msg:2", "yo")?; // 5

    let mut msgs = db.changes(Start::Beginning)?.with_prefix("msg:");
    let first = msgs.try_next()?.expect("batch 1");
    assert_eq!((first.first_seqno, first.last_seqno), (1, 3));
    assert_eq!(
        first.ops,
        vec![
            (
                1,
                Op::Put {
                    key: b"msg:1".to_vec(),
                    value: b"hi".to_vec()
                }
            ),
            (
                3,
                Op::Delete {
                    key: b"msg:0".to_vec()
                }
            ),
        ]
    );
    let second = msgs.try_next()?.expect("batch at 5");
    assert_eq!(second.first_seqno, 5, "the view-only batch at 4 is skipped");
    assert_eq!(msgs.try_next()?, None);
    assert_eq!(msgs.position(), 5);

    db.put("view:3", "z")?; // 6
    assert_eq!(msgs.try_next()?, None);
    assert_eq!(msgs.position(), 6, "skipped batches move the position");

    let mut range = db.changes(Start::Beginning)?.with_range("view:", "view:3");
    let got: Vec<u64> = std::iter::from_fn(|| range.try_next().transpose())
        .map(|b| b.map(|b| b.ops[0].0))
        .collect::<Result<_>>()?;
    assert_eq!(got, vec![2, 4], "view:3 is past the end of the range");

    let filter = KeyFilter::Range {
        start: Some(b"msg:2".to_vec()),
        end: None,
    };
    assert!(filter.matches(b"view:9") && filter.matches(b"msg:2") && !filter.matches(b"msg:1"));
    Ok(())
}
