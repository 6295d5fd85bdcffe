//! A pool of read connections. Reads run on tokio's blocking threads, each on a connection
//! taken from the pool, so that slow queries never stall the async runtime.

use std::sync::{Arc, Mutex};

use cairn_core::{Error, Result};
use tokio::sync::Semaphore;

use crate::sql::db::{Db, DbError};

/// Opens a new connection for the pool.
pub type Connect = Box<dyn Fn() -> Result<Box<dyn Db>, DbError> + Send + Sync>;

/// At most `size` connections, opened lazily and reused.
pub struct ReadPool {
    idle: Mutex<Vec<Box<dyn Db>>>,
    permits: Arc<Semaphore>,
    connect: Connect,
}

impl std::fmt::Debug for ReadPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadPool").field("available", &self.permits.available_permits()).finish_non_exhaustive()
    }
}

impl ReadPool {
    /// A pool of at most `size` connections opened with `connect`.
    pub fn new(size: usize, connect: Connect) -> Arc<Self> {
        Arc::new(ReadPool { idle: Mutex::new(Vec::new()), permits: Arc::new(Semaphore::new(size.max(1))), connect })
    }

    /// Runs `f` on a pooled connection on a blocking thread.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db) -> Result<T> + Send + 'static,
    {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| Error::internal("read pool closed"))?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = match pool.take() {
                Some(conn) => conn,
                None => (pool.connect)().map_err(|e| Error::internal(format!("cannot open a read connection: {e}")))?,
            };
            let result = f(conn.as_mut());
            // After an internal error the connection may be in an unknown state (an aborted
            // transaction, a broken socket), so it is dropped and a fresh one opened next time.
            // Domain errors such as "not found" leave it as good as it was.
            if !matches!(result, Err(Error::Internal(_))) {
                pool.put(conn);
            }
            result
        })
        .await
        .map_err(|e| Error::internal(format!("read task failed: {e}")))?
    }

    fn take(&self) -> Option<Box<dyn Db>> {
        self.idle.lock().ok()?.pop()
    }

    fn put(&self, conn: Box<dyn Db>) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }
}
