//! One rosbag2 sqlite3 (.db3) storage file: topics from the `topics` table, messages streamed
//! in timestamp order in small pages (keyset pagination), so memory stays bounded.
//!
//! A recorder that died leaves a `-wal` (committed messages not yet in the database file) or
//! a hot `-journal` (a half-written transaction to roll back). SQLite applies either only
//! through a writable connection, and the recording must stay untouched, so such a file is
//! read from a copy (with its journal) in a temporary folder.

use super::error::BagError;
use super::reader::{RawMessage, TopicInfo};
use super::recovery::{DamageLog, FileDamage, SkipCause};
use rusqlite::{Connection, OpenFlags};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// (timestamp, id, topic_id, data) of one message row.
type Row = (i64, i64, i64, Vec<u8>);

/// Messages fetched per query.
const PAGE: usize = 256;

pub struct SqliteFile {
    conn: Connection,
    /// topic id -> (name, type)
    ids: HashMap<i64, (String, String)>,
    topics: Vec<TopicInfo>,
    damage: DamageLog,
    /// The copy read instead of a file with a leftover journal, removed on drop.
    _copy: Option<tempfile::TempDir>,
}

/// Non-empty `-wal` / `-journal` files next to `path`.
fn leftover_journals(path: &Path) -> Vec<PathBuf> {
    ["-wal", "-journal"]
        .iter()
        .map(|suffix| {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            PathBuf::from(name)
        })
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.len() > 0))
        .collect()
}

/// Copies `path` and its journals into a temporary folder; returns the folder and the copy.
fn copy_with_journals(
    path: &Path,
    journals: &[PathBuf],
) -> Result<(tempfile::TempDir, PathBuf), BagError> {
    let dir = tempfile::tempdir().map_err(|e| BagError::io(path, e))?;
    let copy_of = |p: &Path| -> Result<PathBuf, BagError> {
        let dest = dir.path().join(p.file_name().unwrap_or_default());
        std::fs::copy(p, &dest).map_err(|e| BagError::io(p, e))?;
        Ok(dest)
    };
    let db = copy_of(path)?;
    for j in journals {
        copy_of(j)?;
    }
    Ok((dir, db))
}

impl SqliteFile {
    pub fn open(path: &Path) -> Result<Self, BagError> {
        let e = |err| BagError::sqlite(path, err);
        let damage = DamageLog::new(path, std::fs::metadata(path).map_or(0, |m| m.len()));
        let journals = leftover_journals(path);
        let (conn, copy) = if journals.is_empty() {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            (Connection::open_with_flags(path, flags).map_err(e)?, None)
        } else {
            let (dir, db) = copy_with_journals(path, &journals)?;
            for j in &journals {
                let name = j.file_name().unwrap_or_default().to_string_lossy();
                tracing::warn!(
                    "{}: leftover {name} (the recorder did not close the bag); applying it to a copy",
                    path.display()
                );
                damage.journal(name.into_owned());
            }
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(&db, flags).map_err(e)?;
            (conn, Some(dir))
        };
        let mut ids = HashMap::new();
        {
            let mut st = conn
                .prepare("SELECT id, name, type FROM topics ORDER BY id")
                .map_err(e)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                    ))
                })
                .map_err(e)?;
            for row in rows {
                let (id, name, ty) = row.map_err(e)?;
                ids.insert(id, (name, ty));
            }
        }
        let mut counts: HashMap<i64, u64> = HashMap::new();
        {
            let mut st = conn
                .prepare("SELECT topic_id, COUNT(*) FROM messages GROUP BY topic_id")
                .map_err(e)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
                .map_err(e)?;
            for row in rows {
                let (id, n) = row.map_err(e)?;
                counts.insert(id, n.max(0) as u64);
            }
        }
        let mut list: Vec<(&i64, &(String, String))> = ids.iter().collect();
        list.sort();
        let topics = list
            .into_iter()
            .map(|(id, (name, ty))| TopicInfo {
                name: name.clone(),
                type_name: ty.clone(),
                count: counts.get(id).copied().unwrap_or(0),
            })
            .collect();
        Ok(Self {
            conn,
            ids,
            topics,
            damage,
            _copy: copy,
        })
    }

    pub fn topics(&self) -> &[TopicInfo] {
        &self.topics
    }

    pub fn damage(&self) -> FileDamage {
        self.damage.report()
    }

    pub fn messages<'a>(
        &'a self,
        topics: &[&str],
    ) -> Result<Box<dyn Iterator<Item = Result<RawMessage, BagError>> + 'a>, BagError> {
        let mut ids: Vec<i64> = self
            .ids
            .iter()
            .filter(|(_, (name, _))| topics.is_empty() || topics.contains(&name.as_str()))
            .map(|(id, _)| *id)
            .collect();
        ids.sort_unstable();
        Ok(Box::new(Pages {
            file: self,
            ids,
            last: None,
            page: Vec::new().into_iter(),
            done: false,
        }))
    }

    fn fetch(&self, ids: &[i64], after: Option<(i64, i64)>) -> Result<Vec<Row>, rusqlite::Error> {
        let list = ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let (t, id) = after.unwrap_or((i64::MIN, i64::MIN));
        let sql = format!(
            "SELECT timestamp, id, topic_id, data FROM messages WHERE topic_id IN ({list}) \
             AND (timestamp > ?1 OR (timestamp = ?1 AND id > ?2)) ORDER BY timestamp, id LIMIT {PAGE}"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st.query_map([t, id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.collect()
    }
}

struct Pages<'a> {
    file: &'a SqliteFile,
    ids: Vec<i64>,
    last: Option<(i64, i64)>,
    page: std::vec::IntoIter<Row>,
    done: bool,
}

impl Iterator for Pages<'_> {
    type Item = Result<RawMessage, BagError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.ids.is_empty() {
            return None;
        }
        let (t, id, topic_id, data) = match self.page.next() {
            Some(row) => row,
            None => {
                match self.file.fetch(&self.ids, self.last) {
                    Ok(rows) if rows.is_empty() => {
                        self.done = true;
                        return None;
                    }
                    Ok(rows) => self.page = rows.into_iter(),
                    Err(e) => {
                        // A corrupt page: the rows before it were read; the rest is lost,
                        // counted (keyed by where it stopped) and reported, not an error.
                        self.done = true;
                        let at = self.last.map_or(0, |(t, _)| t as u64);
                        self.file.damage.skip(at, 0, SkipCause::SqliteReadError, &e);
                        return None;
                    }
                }
                self.page.next()?
            }
        };
        self.last = Some((t, id));
        let (topic, ty) = self.file.ids.get(&topic_id).cloned().unwrap_or_default();
        self.file.damage.message(t.max(0) as u64);
        Some(Ok(RawMessage {
            topic,
            type_name: ty,
            log_time: t.max(0) as u64,
            data,
        }))
    }
}
