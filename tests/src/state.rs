//! A `faas up` state directory seen from outside: its SQLite stores read after the process
//! is gone, and a small filesystem to put it on (to fill it).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The run records of `function` in the run store at `db` (`runs.db`), in the order they were
/// created, as the API shows them. Read with Python's sqlite3, so a test sees the file itself.
pub fn stored_runs(db: &Path, function: &str) -> Vec<serde_json::Value> {
    let out = python_sqlite(
        db,
        "rows = db.execute('SELECT body FROM runs WHERE function = ? ORDER BY seq', (sys.argv[2],))\n\
         print(json.dumps([json.loads(body) for (body,) in rows]))",
        &[function],
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{}: {e}: {out}", db.display()))
}

/// `PRAGMA integrity_check` of the SQLite database at `db`: `"ok"` when it is whole.
pub fn integrity_check(db: &Path) -> String {
    python_sqlite(
        db,
        "print(db.execute('PRAGMA integrity_check').fetchone()[0])",
        &[],
    )
    .trim()
    .to_owned()
}

fn python_sqlite(db: &Path, body: &str, args: &[&str]) -> String {
    let script = format!("import json, sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\n{body}\n");
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(db)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "reading {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A tmpfs of a given size mounted on a fresh temporary directory, unmounted when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `mebibytes` MiB; `None` where mounting is not allowed (not root).
    pub fn mount(mebibytes: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mebibytes}m,mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .is_ok_and(|o| o.status.success());
        mounted.then_some(Tmpfs { dir })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills what is left of it with one file (written until the filesystem refuses), and
    /// returns that file's path: removing it frees the space again.
    pub fn fill(&self) -> PathBuf {
        use std::io::Write;
        let path = self.dir.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("create the filler");
        let chunk = vec![0xa5u8; 64 * 1024];
        // Bounded: the filesystem is small; a write error is the point.
        for _ in 0..1_000_000 {
            match file.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = file.sync_all();
        path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a process of the test that still holds a file there cannot keep it mounted.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
