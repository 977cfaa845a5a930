//! Each function's share of the instance pool.
//!
//! The pooling allocator reserves `max_instances` slots (component instances, memories,
//! tables, stacks) for every function of the process together. Admission caps each function
//! at its own `concurrency`, but in a runtime pool the members' concurrencies add up to more
//! than the slots, so one busy (or hostile) function could hold every slot and its neighbours
//! would get 503s. So each function may hold at most `share` slot units at once, where one
//! instance costs as many units as the pool slots it takes (its memories: a component with 16
//! memories takes 16 memory slots of the pool's `max_instances`). Past its share, the
//! function's own call is refused with 503 (as when the pool itself is full) and nobody
//! else's.
//!
//! Why a fixed fraction rather than `slots / members`: a per-member division starves the
//! only busy function of a pool of idle ones and changes every time a member is added. A
//! quarter of the pool lets one function burst while three others still find room; a team
//! that wants more isolation than that needs its own pool.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::InvokeError;

/// The per-function slot accounting of one process.
#[derive(Debug)]
pub(crate) struct Shares {
    share: u32,
    held: Mutex<HashMap<Arc<str>, u32>>,
}

impl Shares {
    /// Each function may hold `share` units at once.
    pub(crate) fn new(share: u32) -> Arc<Self> {
        Arc::new(Self {
            share: share.max(1),
            held: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, u32>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `units` for one instance of `function`, or refuses when that would put the
    /// function over its share. An instance bigger than a whole share still runs alone.
    pub(crate) fn take(
        self: &Arc<Self>,
        function: &Arc<str>,
        units: u32,
    ) -> Result<Held, InvokeError> {
        let units = units.max(1);
        let mut held = self.lock();
        let now = held.get(function).copied().unwrap_or(0);
        if now > 0 && now.saturating_add(units) > self.share {
            return Err(InvokeError::Instantiate(format!(
                "function {function} already holds its share of this pool's instance slots \
                 ({now} of {}); retry later or lower its concurrency",
                self.share
            )));
        }
        held.insert(Arc::clone(function), now.saturating_add(units));
        Ok(Held {
            shares: Arc::clone(self),
            function: Arc::clone(function),
            units,
        })
    }

    /// Units `function` holds now.
    #[cfg(test)]
    fn held(&self, function: &str) -> u32 {
        self.lock().get(function).copied().unwrap_or(0)
    }
}

/// Units held by one instance, given back when its store is dropped.
#[derive(Debug)]
pub(crate) struct Held {
    shares: Arc<Shares>,
    function: Arc<str>,
    units: u32,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut held = self.shares.lock();
        if let Some(now) = held.get_mut(&self.function) {
            *now = now.saturating_sub(self.units);
            if *now == 0 {
                held.remove(&self.function);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_function_holds_at_most_its_share_and_others_are_untouched() {
        let shares = Shares::new(4);
        let greedy: Arc<str> = "greedy".into();
        let other: Arc<str> = "other".into();
        let held: Vec<Held> = (0..4).map(|_| shares.take(&greedy, 1).unwrap()).collect();
        let refused = shares.take(&greedy, 1).unwrap_err();
        assert_eq!(refused.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(refused.to_string().contains("greedy"), "{refused}");
        let neighbour = shares.take(&other, 1).unwrap();
        assert_eq!(shares.held("other"), 1);
        drop(held);
        assert_eq!(shares.held("greedy"), 0);
        // Units weigh: a 16-memory instance takes 16 units; alone, it still runs.
        let big = shares.take(&greedy, 16).unwrap();
        assert!(shares.take(&greedy, 1).is_err());
        drop((big, neighbour));
        assert_eq!(shares.held("greedy") + shares.held("other"), 0);
    }
}
