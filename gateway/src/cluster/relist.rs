//! What a watch's relist has seen, per watch scope.
//!
//! A watch that lost its connection lists everything again; whatever it held and the new
//! list lacks was deleted meanwhile. The gateway runs one watch per namespace (or one for
//! all), so a relist only speaks for its own scope: a namespace's relist must not drop what
//! another namespace's watch holds.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Whether a watch of `scope` (a namespace, `None` for all) covers `namespace`.
pub fn covers(scope: Option<&str>, namespace: &str) -> bool {
    scope.is_none_or(|ns| ns == namespace)
}

/// The keys seen by each relist in progress.
pub struct Relists<K> {
    seen: HashMap<Option<String>, HashSet<K>>,
}

impl<K> Default for Relists<K> {
    fn default() -> Self {
        Relists {
            seen: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> Relists<K> {
    /// The watch of `scope` lists everything again.
    pub fn start(&mut self, scope: Option<&str>) {
        self.seen.insert(scope.map(str::to_owned), HashSet::new());
    }

    /// An object of `namespace` arrived: every relist in progress that covers it saw `key`.
    pub fn saw(&mut self, namespace: &str, key: &K) {
        for (scope, seen) in &mut self.seen {
            if covers(scope.as_deref(), namespace) {
                seen.insert(key.clone());
            }
        }
    }

    /// The relist of `scope` is complete: what it saw (`None` if none was in progress).
    pub fn finish(&mut self, scope: Option<&str>) -> Option<HashSet<K>> {
        self.seen.remove(&scope.map(str::to_owned))
    }
}
