//! A follower treats an unfinished record at the end of the newest log file as "not yet" and
//! hands it out once the rest of it is there.
use std::io::Write;

use alluvium::commit_log::{encode_record, RecordBody};
use alluvium::files;
use alluvium::frame::encode_frame;
use alluvium::{Compression, Db, Error, Follower, Options, Result, Start, WriteBatch};

#[test]
fn a_follower_waits_at_an_unfinished_last_record() -> Result<()> {
    let dir = tempfile::tempdir().map_err(|e| Error::io("tmp", e))?;
    let db = Db::open(dir.path(), Options::default())?;
    let first = db.put("a", "1")?;
    db.close()?;
    let newest = log_numbers(dir.path())?
        .into_iter()
        .max()
        .expect("a log file");
    let mut follower = Follower::open(dir.path(), Start::Beginning)?;
    assert_eq!(follower.try_next()?.map(|b| b.first_seqno), Some(first));

    let (mut payload, mut frame) = (Vec::new(), Vec::new());
    let mut next = WriteBatch::new();
    next.put("b", "2");
    let body = RecordBody::encode(&next, &[], Compression::Snappy);
    encode_record(&mut payload, first + 1, 0, &body);
    encode_frame(&mut frame, &payload);
    let path = files::log_path(dir.path(), newest);
    let append = |bytes: &[u8]| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        f.write_all(bytes).map_err(|e| Error::io(&path, e))
    };
    append(&frame[..frame.len() / 2])?;
    assert_eq!(
        follower.try_next()?,
        None,
        "half a record is not yet a record"
    );
    append(&frame[frame.len() / 2..])?;
    assert_eq!(follower.try_next()?.map(|b| b.first_seqno), Some(first + 1));
    Ok(())
}

fn log_numbers(dir: &std::path::Path) -> Result<Vec<u64>> {
    Ok(files::log_numbers(dir)?.into_iter().collect())
}
