//! The signed head record, written off the commit path (AU-3).
//!
//! After each commit the log's head (seq and chain hash) is signed and written to a file outside
//! the database, so that `verify` catches a tail truncated after the last checkpoint. Signing
//! (Ed25519) and replacing a file (write, rename: on ext4 the rename also starts writeback of
//! the new file) cost more than the commit of a small batch did, and they ran on the writer
//! task before the waiting calls were answered. Here a dedicated thread does it: the writer
//! publishes each committed head and goes on; the thread signs and writes the newest head it
//! has been given, so under load many commits share one write. The record trails the database
//! by at most one write; [`HeadWriter::sync`] waits until the newest head is on disk, and the
//! log calls it on `flush` and on shutdown, so no acknowledged flush or graceful shutdown leaves
//! the record behind the database.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use crate::canonical::Hash;
use crate::keys::{HeadRecord, Signer};

/// The head the thread is asked to write, and what it has written.
#[derive(Default)]
struct State {
    /// The newest published head not yet written: (seq, chain hash, time in µs).
    pending: Option<(i64, Hash, i64)>,
    /// The seq of the newest published head.
    published: i64,
    /// The seq of the newest head the thread finished writing (or failed to, after logging).
    written: i64,
    /// No more heads will come: the thread ends once `pending` is written.
    closed: bool,
    /// Someone waits for the newest head: write it now, without the pause between writes.
    urgent: bool,
    /// The thread waits for a head to be published (not pausing between writes): only then
    /// does a new head need to wake it. A head published during the pause is picked up when
    /// the pause ends, so commits under load do not each wake the thread for nothing.
    idle: bool,
}

/// The least time between two head-record writes while nobody waits for one. Under load a
/// write (sign, write, rename) per commit cost about a twentieth of the gateway's CPU per call;
/// with this pause the record trails the database by at most this long plus one write, and a
/// flush or shutdown still writes at once.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// Writes the newest published head record on its own thread.
pub(crate) struct HeadWriter {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HeadWriter {
    /// Starts the thread that writes `path`, signing with `signer` for log `log_id`.
    /// Fails only when the OS refuses a thread; the caller then writes heads inline.
    pub(crate) fn start(
        path: PathBuf,
        signer: Arc<Signer>,
        log_id: Vec<u8>,
    ) -> std::io::Result<HeadWriter> {
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("audit-head".into())
            .spawn(move || {
                let (lock, cv) = &*s;
                loop {
                    let next = {
                        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
                        st.idle = true;
                        while st.pending.is_none() && !st.closed {
                            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
                        }
                        st.idle = false;
                        match st.pending.take() {
                            Some(h) => h,
                            None => return, // closed, and everything written
                        }
                    };
                    let (seq, hash, time_us) = next;
                    crate::log::write_head(
                        &path,
                        &HeadRecord::new(&signer, &log_id, seq, &hash, time_us),
                    );
                    let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
                    st.written = st.written.max(seq);
                    if st.written >= st.published {
                        st.urgent = false;
                    }
                    cv.notify_all();
                    // pause before the next write unless someone waits or the log closes
                    let until = std::time::Instant::now() + MIN_INTERVAL;
                    while !st.closed && !st.urgent {
                        let now = std::time::Instant::now();
                        if now >= until {
                            break;
                        }
                        st = cv
                            .wait_timeout(st, until - now)
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                }
            })?;
        Ok(HeadWriter {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands over a committed head; returns at once. A head older than one already published
    /// is ignored.
    pub(crate) fn publish(&self, seq: i64, hash: Hash, time_us: i64) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        if seq < st.published {
            return;
        }
        st.published = seq;
        st.pending = Some((seq, hash, time_us));
        if st.idle {
            cv.notify_all();
        }
    }

    /// Blocks until the newest published head is written. Call it from a blocking context.
    #[cfg(test)]
    pub(crate) fn sync(&self) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        st.urgent = true;
        cv.notify_all();
        while st.written < st.published {
            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A handle that can wait for the writes from another thread.
    pub(crate) fn syncer(&self) -> HeadSync {
        HeadSync {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for HeadWriter {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.shared;
            let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
            st.closed = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            // the last published head is written before the thread ends
            let _ = t.join();
        }
    }
}

/// Waits for a [`HeadWriter`]'s writes from a blocking task.
pub(crate) struct HeadSync {
    shared: Arc<(Mutex<State>, Condvar)>,
}

impl HeadSync {
    /// Blocks until the newest head published so far is written.
    pub(crate) fn wait(&self) {
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        let target = st.published;
        if st.written < target {
            st.urgent = true;
            cv.notify_all();
        }
        while st.written < target {
            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_head_is_written_and_sync_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Arc::new(Signer::create(&dir.path().join("k")).unwrap());
        let path = dir.path().join("head.json");
        let w = HeadWriter::start(path.clone(), signer, b"log".to_vec()).unwrap();
        for seq in 1..=200 {
            w.publish(seq, [seq as u8; 32], seq * 10);
        }
        // an older head after a newer one is ignored
        w.publish(5, [5; 32], 50);
        w.sync();
        let rec = HeadRecord::read(&path).unwrap().expect("a head record");
        assert_eq!(rec.seq, 200);
        assert_eq!(rec.hash, hex::encode([200u8; 32]));
        w.publish(201, [201; 32], 2010);
        w.syncer().wait();
        assert_eq!(HeadRecord::read(&path).unwrap().unwrap().seq, 201);
        w.publish(202, [202; 32], 2020);
        drop(w); // the last head is written before the thread ends
        assert_eq!(HeadRecord::read(&path).unwrap().unwrap().seq, 202);
    }
}
