//! Group commit for SQLite. Each connection runs `synchronous=NORMAL`, so a COMMIT only
//! writes its frames to the WAL; before anything acknowledges that commit, the writer waits
//! here for an fdatasync of the WAL that *started after* its COMMIT returned. One fsync
//! thus covers every commit that finished while the previous one was running, instead of
//! one fsync per commit behind SQLite's single write lock. A commit is never reported
//! before its frames are on disk, so what `synchronous=FULL` promised still holds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;

/// Rounds of fdatasync: `started` counts rounds begun, `finished` rounds ended. A writer
/// arriving now needs round `started + 1` (or later): any round already running may have
/// begun before its COMMIT wrote the WAL.
#[derive(Debug, Default)]
struct Rounds {
    started: u64,
    finished: u64,
    running: bool,
    /// After a failed fdatasync the kernel may have dropped the unwritten pages and will not
    /// report it again, so no later round can vouch for them: every commit fails from then
    /// on, and a restart recovers from what the WAL really holds.
    broken: Option<String>,
    /// The WAL file last synced, so a newly created one gets its directory entry synced.
    wal_inode: Option<u64>,
}

#[derive(Clone)]
pub struct WalSync {
    inner: Arc<Inner>,
}

struct Inner {
    db_file: PathBuf,
    wal: PathBuf,
    rounds: watch::Sender<Rounds>,
}

impl std::fmt::Debug for WalSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalSync").field("wal", &self.inner.wal).finish()
    }
}

enum Next {
    Done,
    Broken(String),
    Lead(u64, Option<u64>),
    Wait,
}

impl WalSync {
    pub fn new(db_file: &Path) -> Self {
        let mut wal = db_file.as_os_str().to_owned();
        wal.push("-wal");
        Self {
            inner: Arc::new(Inner {
                db_file: db_file.to_path_buf(),
                wal: PathBuf::from(wal),
                rounds: watch::Sender::new(Rounds::default()),
            }),
        }
    }

    /// Rounds of fdatasync completed so far.
    pub fn rounds_finished(&self) -> u64 {
        self.inner.rounds.borrow().finished
    }

    /// Returns once everything this task committed before the call is on disk.
    pub async fn durable(&self) -> std::io::Result<()> {
        self.durable_with(sync_files).await
    }

    async fn durable_with<F>(&self, sync: F) -> std::io::Result<()>
    where
        F: Fn(&Path, &Path, Option<u64>) -> std::io::Result<u64> + Send + Copy + 'static,
    {
        let rounds = &self.inner.rounds;
        let mut need = 0;
        rounds.send_if_modified(|r| {
            need = r.started + 1;
            false
        });
        let mut rx = rounds.subscribe();
        loop {
            let mut next = Next::Wait;
            rounds.send_if_modified(|r| {
                next = if let Some(e) = &r.broken {
                    Next::Broken(e.clone())
                } else if r.finished >= need {
                    Next::Done
                } else if !r.running {
                    r.running = true;
                    r.started += 1;
                    Next::Lead(r.started, r.wal_inode)
                } else {
                    Next::Wait
                };
                false
            });
            match next {
                Next::Done => return Ok(()),
                Next::Broken(e) => return Err(std::io::Error::other(e)),
                Next::Lead(round, inode) => {
                    // The round runs as a task of its own, so a caller that gives up waiting
                    // (a cancelled request) cannot leave it marked running forever.
                    let inner = self.inner.clone();
                    let round = tokio::spawn(async move {
                        let (db_file, wal) = (inner.db_file.clone(), inner.wal.clone());
                        let synced = tokio::task::spawn_blocking(move || sync(&db_file, &wal, inode))
                            .await
                            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                        inner.rounds.send_modify(|r| {
                            r.running = false;
                            match &synced {
                                Ok(inode) => {
                                    r.finished = round;
                                    r.wal_inode = Some(*inode);
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, "fdatasync of the SQLite WAL failed: no commit is acknowledged until a restart");
                                    r.broken = Some(format!("fdatasync failed: {e}"));
                                }
                            }
                        });
                    });
                    let _ = round.await;
                }
                Next::Wait => {
                    // Wakes when the running round ends (another may have begun since: the
                    // round it needs may be done already); the loop then re-decides.
                    let _ = rx
                        .wait_for(|r| r.finished >= need || !r.running || r.broken.is_some())
                        .await;
                }
            }
        }
    }
}

/// fdatasync of the WAL, opened afresh each time: SQLite deletes it when the last connection
/// closes and makes a new one later. A WAL not seen before also gets its directory synced
/// (SQLite would do that on its first sync, which NORMAL defers to the next checkpoint). No
/// WAL means the last close checkpointed it into the database file, which is synced too.
fn sync_files(db_file: &Path, wal: &Path, last_inode: Option<u64>) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    match std::fs::File::open(wal) {
        Ok(f) => {
            f.sync_data()?;
            let inode = f.metadata()?.ino();
            if last_inode != Some(inode) {
                if let Some(dir) = wal.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::File::open(dir)?.sync_all()?;
                } else {
                    std::fs::File::open(".")?.sync_all()?;
                }
            }
            Ok(inode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::File::open(db_file)?.sync_data()?;
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    use super::*;

    static SYNCS: AtomicU64 = AtomicU64::new(0);
    /// What the last completed sync covered: the value of `WRITTEN` when it started.
    static COVERED: AtomicU64 = AtomicU64::new(0);
    static WRITTEN: AtomicU64 = AtomicU64::new(0);

    fn slow_sync(_: &Path, _: &Path, _: Option<u64>) -> std::io::Result<u64> {
        let at_start = WRITTEN.load(Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(5));
        SYNCS.fetch_add(1, Ordering::SeqCst);
        COVERED.fetch_max(at_start, Ordering::SeqCst);
        Ok(1)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn every_writer_waits_for_a_sync_that_began_after_its_write_and_many_share_one() {
        let sync = WalSync::new(Path::new("unused.db"));
        let mut tasks = Vec::new();
        for _ in 0..64 {
            let sync = sync.clone();
            tasks.push(tokio::spawn(async move {
                let mut late = 0;
                for _ in 0..10 {
                    // "Commit": the write this writer must see covered before it answers.
                    let mine = WRITTEN.fetch_add(1, Ordering::SeqCst) + 1;
                    sync.durable_with(slow_sync).await.unwrap();
                    if COVERED.load(Ordering::SeqCst) < mine {
                        late += 1;
                    }
                }
                late
            }));
        }
        let mut acknowledged_before_sync = 0;
        for t in tasks {
            acknowledged_before_sync += t.await.unwrap();
        }
        assert_eq!(
            acknowledged_before_sync, 0,
            "a writer returned before a sync covered its write"
        );
        let syncs = SYNCS.load(Ordering::SeqCst);
        assert!(syncs < 640 / 4, "{syncs} syncs for 640 commits: they were not grouped");
    }

    #[tokio::test]
    async fn a_failed_sync_fails_that_commit_and_every_later_one() {
        fn failing(_: &Path, _: &Path, _: Option<u64>) -> std::io::Result<u64> {
            Err(std::io::Error::other("EIO"))
        }
        fn fine(_: &Path, _: &Path, _: Option<u64>) -> std::io::Result<u64> {
            Ok(1)
        }
        let sync = WalSync::new(Path::new("unused.db"));
        sync.durable_with(fine).await.unwrap();
        assert!(sync.durable_with(failing).await.is_err());
        assert!(
            sync.durable_with(fine).await.is_err(),
            "a later round vouched for lost pages"
        );
    }

    #[test]
    fn syncs_a_real_wal_and_its_directory_once() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("x.db");
        std::fs::write(&db, b"db").unwrap();
        // No WAL yet: the database file is synced instead.
        assert_eq!(sync_files(&db, &dir.path().join("x.db-wal"), None).unwrap(), 0);
        std::fs::write(dir.path().join("x.db-wal"), b"frames").unwrap();
        let inode = sync_files(&db, &dir.path().join("x.db-wal"), None).unwrap();
        assert_ne!(inode, 0);
        assert_eq!(
            sync_files(&db, &dir.path().join("x.db-wal"), Some(inode)).unwrap(),
            inode
        );
    }
}
