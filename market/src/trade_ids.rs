//! The trade ids of one file, held exactly, to tell a repeated id from a new one.
//!
//! Real ids are mostly increasing integers: Binance numbers each symbol's trades 1, 2, 3..., Deribit numbers
//! an exchange's trades across its instruments, so one file holds an increasing sequence with gaps. Those are
//! kept in a compressed bitmap (a roaring bitmap: a few bits per id while ids are dense, two bytes per id
//! when sparse), so a 5-million-trade file costs about a megabyte rather than one hash entry per trade.
//! Other ids (BitMEX's UUIDs, anything else) are kept as they are: UUIDs as 16-byte integers, the rest as
//! their bytes. Nothing is hashed into fewer bits than the id has, so two different ids are never taken for
//! the same one.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use roaring::RoaringTreemap;

/// A set of trade ids (the raw cells of a trades file).
#[derive(Debug, Clone, Default)]
pub struct TradeIds {
    numbers: RoaringTreemap,
    /// A run of consecutive numbers above every number in `numbers`, not inserted yet: ids that go up by
    /// one (Binance's) extend it without touching the bitmap, which takes the run whole when it breaks.
    run: Option<(u64, u64)>,
    /// The largest number seen (the run's end while there is a run).
    top: Option<u64>,
    uuids: HashSet<u128, BuildHasherDefault<FoldHasher>>,
    other: HashSet<Box<[u8]>>,
}

impl TradeIds {
    pub fn new() -> Self {
        TradeIds::default()
    }

    /// Adds `id`; false when it was already in the set.
    pub fn insert(&mut self, id: &[u8]) -> bool {
        if let Some(number) = canonical_number(id) {
            self.insert_number(number)
        } else if let Some(uuid) = uuid(id) {
            self.uuids.insert(uuid)
        } else {
            self.other.insert(id.into())
        }
    }

    fn insert_number(&mut self, number: u64) -> bool {
        if let Some((first, last)) = self.run {
            if last.checked_add(1) == Some(number) {
                self.run = Some((first, number));
                self.top = Some(number);
                return true;
            }
            if (first..=last).contains(&number) {
                return false;
            }
            // The run breaks: the bitmap takes it whole.
            self.numbers.insert_range(first..=last);
            self.run = None;
        }
        if self.top.is_none_or(|top| number > top) {
            // Above every id so far: new, and the start of a run.
            self.top = Some(number);
            self.run = Some((number, number));
            return true;
        }
        self.numbers.insert(number)
    }
}

/// `id` as an integer when it is one written the one way an integer is written (digits, no sign, no leading
/// zero), so that two different cells never give the same number.
fn canonical_number(id: &[u8]) -> Option<u64> {
    if id.is_empty() || id.len() > 19 || (id[0] == b'0' && id.len() > 1) {
        return None;
    }
    let mut value: u64 = 0;
    for &b in id {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        // At most 19 digits: below 10^19 < 2^64, no overflow.
        value = value * 10 + u64::from(digit);
    }
    Some(value)
}

/// `id` as a 128-bit integer when it is a lowercase UUID (`8-4-4-4-12` hex digits): one spelling per value.
fn uuid(id: &[u8]) -> Option<u128> {
    let id: &[u8; 36] = id.try_into().ok()?;
    if [id[8], id[13], id[18], id[23]] != [b'-'; 4] {
        return None;
    }
    // The 32 digits, in two halves of 16, without a branch per digit: an invalid byte sets the high bit.
    let mut bad = 0u8;
    let mut half = |positions: &mut dyn Iterator<Item = usize>| {
        positions.fold(0u64, |value, i| {
            let digit = HEX[usize::from(id[i])];
            bad |= digit;
            (value << 4) | u64::from(digit & 0x0f)
        })
    };
    let high = half(&mut (0..8).chain(9..13).chain(14..18));
    let low = half(&mut (19..23).chain(24..36));
    (bad & 0x80 == 0).then_some((u128::from(high) << 64) | u128::from(low))
}

/// The value of each lowercase hex digit; 0x80 for every other byte.
const HEX: [u8; 256] = {
    let mut table = [0x80u8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// Hashes the UUIDs of a file: one multiply folding their two halves together, where the standard hasher runs
/// SipHash's rounds over sixteen bytes. The ids come from the exchange, not from someone choosing collisions,
/// and the set still compares whole ids, so a collision costs time, never a wrong answer.
#[derive(Debug, Default, Clone, Copy)]
struct FoldHasher(u64);

const FOLD: u64 = 0x9e37_79b9_7f4a_7c15;

fn fold(a: u64, b: u64) -> u64 {
    let full = u128::from(a) * u128::from(b);
    (full as u64) ^ ((full >> 64) as u64)
}

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = fold(self.0 ^ u64::from_le_bytes(word), FOLD);
        }
    }

    fn write_u128(&mut self, value: u128) {
        self.0 = fold(self.0 ^ (value as u64) ^ FOLD, ((value >> 64) as u64) ^ FOLD.rotate_left(32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowercase_uuid_is_its_128_bit_value_and_nothing_else_is_one() {
        let value = uuid(b"227c47a5-0304-4ed2-bd2a-324f03715515").expect("a uuid");
        assert_eq!(value, 0x227c47a5_0304_4ed2_bd2a_324f03715515);
        assert_eq!(uuid(b"ffffffff-ffff-ffff-ffff-ffffffffffff"), Some(u128::MAX));
        assert_eq!(uuid(b"00000000-0000-0000-0000-000000000000"), Some(0));
        for not in [
            &b"227C47A5-0304-4ED2-BD2A-324F03715515"[..], // uppercase: another spelling of a value
            b"227c47a5-0304-4ed2-bd2a-324f0371551g",
            b"227c47a5-0304-4ed2-bd2a-324f0371551/",
            b"227c47a50-304-4ed2-bd2a-324f03715515",
            b"227c47a5-0304-4ed2-bd2a-324f037155150",
            b"227c47a5-0304-4ed2-bd2a-324f0371551",
            b"227c47a5_0304_4ed2_bd2a_324f03715515",
        ] {
            assert_eq!(uuid(not), None, "{}", String::from_utf8_lossy(not));
        }
    }

    #[test]
    fn the_fold_hasher_spreads_uuids_that_differ_in_one_half() {
        let hash = |v: u128| {
            let mut h = FoldHasher::default();
            h.write_u128(v);
            h.finish()
        };
        let lows: std::collections::HashSet<u64> = (0..1000u128).map(hash).collect();
        let highs: std::collections::HashSet<u64> = (0..1000u128).map(|v| hash(v << 64)).collect();
        assert_eq!((lows.len(), highs.len()), (1000, 1000));
        assert_ne!(hash(1), hash(1 << 64));
    }

    #[test]
    fn an_increasing_sequence_is_new_and_any_repeat_is_found_however_far_back() {
        let mut ids = TradeIds::new();
        for n in 1..=100_000u64 {
            assert!(ids.insert(n.to_string().as_bytes()));
        }
        assert!(!ids.insert(b"1"), "the first id, 100,000 ids back");
        assert!(!ids.insert(b"100000"), "the last one");
        assert!(!ids.insert(b"54321"));
        // Out of order but new: a gap filled late.
        let mut gappy = TradeIds::new();
        for n in [10u64, 30, 20, 40, 25] {
            assert!(gappy.insert(n.to_string().as_bytes()), "{n}");
        }
        assert!(!gappy.insert(b"20") && !gappy.insert(b"25") && !gappy.insert(b"40"));
        assert!(gappy.insert(b"15"));
    }

    #[test]
    fn runs_that_break_and_restart_still_find_every_repeat() {
        let mut ids = TradeIds::new();
        let mut seen = std::collections::HashSet::new();
        // Runs up by one, gaps, a step back into an old run, a repeat at a run's edges.
        let sequence =
            [5u64, 6, 7, 8, 20, 21, 22, 7, 9, 10, 11, 4, 23, 22, 8, 100, 101, 5, 12, 99, 102, 100, u64::MAX / 2];
        for n in sequence {
            assert_eq!(ids.insert(n.to_string().as_bytes()), seen.insert(n), "{n} after {seen:?}");
        }
    }

    #[test]
    fn different_spellings_are_different_ids() {
        let mut ids = TradeIds::new();
        assert!(ids.insert(b"7"));
        assert!(ids.insert(b"07"), "a leading zero is another cell");
        assert!(ids.insert(b"+7"));
        assert!(!ids.insert(b"07"));
        assert!(ids.insert(b"18446744073709551615"), "u64::MAX has 20 digits: kept as bytes");
        assert!(!ids.insert(b"18446744073709551615"));
        assert!(ids.insert(b"0") && !ids.insert(b"0"));
    }

    #[test]
    fn uuids_and_other_ids_are_held_exactly() {
        let mut ids = TradeIds::new();
        let a = b"6b2a1f0e-1c3d-4e5f-8a9b-0c1d2e3f4a5b";
        let b = b"6b2a1f0e-1c3d-4e5f-8a9b-0c1d2e3f4a5c";
        assert!(ids.insert(a) && ids.insert(b));
        assert!(!ids.insert(a));
        assert!(ids.insert(b"6B2A1F0E-1C3D-4E5F-8A9B-0C1D2E3F4A5B"), "uppercase is another cell");
        assert!(!ids.insert(b"6B2A1F0E-1C3D-4E5F-8A9B-0C1D2E3F4A5B"));
        assert!(ids.insert(b"t-1") && !ids.insert(b"t-1") && ids.insert(b"t-2"));
        // Numbers and text never meet: "1" and a text id spelled differently stay apart.
        assert!(ids.insert(b"1") && ids.insert(b"1.0"));
    }

    proptest::proptest! {
        /// Against a plain set of the cells: ids that mostly go up by one, step back, jump, repeat, and
        /// sometimes are not numbers.
        #[test]
        fn the_set_answers_like_a_set_of_the_cells(steps in proptest::collection::vec((-3i64..5, 0u8..10), 1..400)) {
            let (mut ids, mut cells) = (TradeIds::new(), std::collections::HashSet::new());
            let mut n: i64 = 1_000;
            for (step, kind) in steps {
                n = (n + step).max(0);
                let cell = match kind {
                    0 => format!("x{n}"),
                    1 => format!("0{n}"),
                    _ => n.to_string(),
                };
                proptest::prop_assert_eq!(ids.insert(cell.as_bytes()), cells.insert(cell.clone()), "{}", cell);
            }
        }
    }
}
