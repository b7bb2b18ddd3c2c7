//! The write set's index: a variable's address to its entry's position, for sets too large to
//! scan.
//!
//! Open addressing with linear probing over a table of a power of two slots, at most half full.
//! A key is a variable's address, which the program cannot choose and which no two live
//! variables share, so it is hashed by one multiplication (Fibonacci hashing, Knuth 6.4: the
//! product's top bits spread addresses that differ by any stride, such as a map's slots 32
//! bytes apart) rather than by a keyed hash.
//!
//! A slot belongs to the index's current contents only if it carries the index's generation:
//! [`clear`](AddrIndex::clear) moves to the next generation instead of writing the table, so a
//! thread's index keeps its capacity from one large transaction to the next and empties in
//! constant time, whatever size an earlier transaction left it. A fresh table's slots carry
//! generation 0, which is never current; the generation wraps to 0 after 2^32 clears, and
//! the table is then written through once.

/// One slot: a key, its position, and the generation it was inserted in (0: never used).
#[derive(Clone, Copy, Default)]
struct Slot {
    addr: usize,
    position: u32,
    generation: u32,
}

/// Fibonacci hashing's multiplier: 2^64 divided by the golden ratio, made odd.
const MULTIPLIER: u64 = 0x9E37_79B9_7F4A_7C15;

/// The table's size when it first takes keys: room for 16 at half load, more than the write
/// set's scan threshold, past which the set is indexed.
const MIN_SLOTS: usize = 32;

/// A map from addresses to positions; see the module's documentation.
pub(crate) struct AddrIndex {
    slots: Vec<Slot>,
    /// `64 - log2(slots.len())`: a key's first slot is the product's top bits.
    shift: u32,
    /// Keys of the current generation.
    len: usize,
    /// The current generation, never 0.
    generation: u32,
}

impl Default for AddrIndex {
    fn default() -> Self {
        AddrIndex {
            slots: Vec::new(),
            shift: 64,
            len: 0,
            generation: 1,
        }
    }
}

impl AddrIndex {
    /// The number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The first slot to probe for `addr` (the table is not empty).
    #[inline(always)]
    fn home(&self, addr: usize) -> usize {
        ((addr as u64).wrapping_mul(MULTIPLIER) >> self.shift) as usize
    }

    /// The position stored for `addr`, if any.
    #[inline]
    pub(crate) fn get(&self, addr: usize) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(addr);
        loop {
            let slot = self.slots[i];
            if slot.generation != self.generation {
                return None;
            }
            if slot.addr == addr {
                return Some(slot.position as usize);
            }
            i = (i + 1) & mask;
        }
    }

    /// Stores `position` for `addr`, which the index lacks.
    ///
    /// # Panics
    ///
    /// If `position` does not fit in 32 bits (a transaction writing more than 4 billion
    /// variables, more than the memory of its write set allows). Out of line: inlined into
    /// the write set's `push`, it cost a transaction of 1,024 updates 19 instructions per
    /// update more (measured).
    #[inline(never)]
    pub(crate) fn insert(&mut self, addr: usize, position: usize) {
        debug_assert!(self.get(addr).is_none(), "an address is indexed once");
        let position =
            u32::try_from(position).expect("commute: a transaction wrote more than 2^32 variables");
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        self.place(Slot {
            addr,
            position,
            generation: self.generation,
        });
        self.len += 1;
    }

    /// Puts `slot` (of the current generation, its key absent) in the first free slot of its
    /// probe sequence; the table has room.
    #[inline(always)]
    fn place(&mut self, slot: Slot) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(slot.addr);
        while self.slots[i].generation == self.generation {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    /// Doubles the table (or makes its first) and puts the current keys back.
    #[cold]
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = core::mem::replace(&mut self.slots, vec![Slot::default(); size]);
        self.shift = 64 - size.trailing_zeros();
        for slot in old {
            if slot.generation == self.generation {
                self.place(slot);
            }
        }
    }

    /// Removes every key, keeping the table.
    #[inline]
    pub(crate) fn clear(&mut self) {
        if self.len == 0 {
            return;
        }
        self.len = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill(Slot::default());
            self.generation = 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AddrIndex;
    use std::collections::HashMap;

    /// A small deterministic generator (xorshift), so that failures repeat.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// Rounds of inserts (addresses with various strides and random ones), lookups of present
    /// and absent keys, and clears, checked against a `HashMap` after every step.
    #[test]
    fn matches_a_hash_map_through_inserts_clears_and_growth() {
        let mut index = AddrIndex::default();
        let mut model: HashMap<usize, usize> = HashMap::new();
        let mut rng = 0x2545_F491_4F6C_DD1D_u64;
        for round in 0..200 {
            let count = (next(&mut rng) % 700) as usize;
            let stride = [8, 16, 32, 64, 4096, 1 << 20][round % 6];
            let base = 0x1000_0000 + (next(&mut rng) % 1024) as usize * 8;
            for position in 0..count {
                let addr = if round % 7 == 3 {
                    (next(&mut rng) as usize) & !7
                } else {
                    base + position * stride
                };
                if addr == 0 || model.contains_key(&addr) {
                    continue;
                }
                index.insert(addr, position);
                model.insert(addr, position);
                let probe = base + (next(&mut rng) % (count as u64 * 2 + 1)) as usize * stride;
                assert_eq!(index.get(probe), model.get(&probe).copied());
            }
            assert_eq!(index.len(), model.len());
            for (&addr, &position) in &model {
                assert_eq!(index.get(addr), Some(position));
            }
            assert_eq!(index.get(base.wrapping_sub(stride)), None);
            index.clear();
            for &addr in model.keys() {
                assert_eq!(index.get(addr), None, "a cleared key is gone");
            }
            model.clear();
            assert_eq!(index.len(), 0);
        }
    }

    /// The generation wraps after 2^32 clears: the table is then written through, so that no
    /// slot of an old generation passes for a current one.
    #[test]
    fn a_wrapped_generation_forgets_every_old_key() {
        let mut index = AddrIndex::default();
        for i in 0..20 {
            index.insert(0x1000 + i * 32, i);
        }
        index.clear();
        // Skip to the last generation before the wrap; the slots of generation 1 stay.
        index.generation = u32::MAX;
        for i in 0..20 {
            assert_eq!(index.get(0x1000 + i * 32), None);
            index.insert(0x9000 + i * 32, i);
        }
        index.clear();
        assert_eq!(index.generation, 1);
        for i in 0..20 {
            assert_eq!(
                index.get(0x1000 + i * 32),
                None,
                "generation 1's key is gone"
            );
            assert_eq!(index.get(0x9000 + i * 32), None);
        }
        index.insert(0x1000, 7);
        assert_eq!(index.get(0x1000), Some(7));
        assert_eq!(index.get(0x1020), None);
    }
}
