//! The literal-trigger scanner: every rule literal, found in one linear pass.
//!
//! Literals are checked only at *start positions*: the start of a word (an ASCII letter or digit
//! after a non-word byte, or an upper-case letter after a lower-case one, as in `authToken`) and
//! any byte that begins some non-alphanumeric literal (`<`, `-`, `:`, `/`...). A start position
//! whose byte begins no literal at all (any digit, with the built-in rules) is skipped.
//!
//! The scan runs in three steps per chunk of text (1 KiB, or 256 bytes for a short text),
//! copied into a buffer with the next 8 bytes of the text and zero padding, so that the first
//! two steps read it without bounds checks:
//!
//! 1. The start positions of 64 bytes at a time become one bit mask, from byte-class masks
//!    (lower, upper, digit, first byte of some literal) combined with shifts. With SSSE3
//!    (checked once, when the scanner is built) the classes come from SIMD compares and a
//!    nibble-table shuffle, 16 bytes per instruction; elsewhere from a 256-entry table. Either
//!    way there is no branch per byte: the byte loop this replaced mispredicted at the end of
//!    nearly every word, which cost more than its lookups.
//! 2. At each start position the eight bytes there go through a 64 Kbit filter, without a
//!    branch (which positions pass is unpredictable): bit `key2`, the two *exact* bytes, for
//!    literals of 1-3 bytes (a case-insensitive literal sets the bits of all its case
//!    variants, so that the names `Ann`, `Tom` or `Tim` do not send every `and`, `to` and
//!    `time` on), and bit `key4`, a case-blind 16-bit hash of the first four bytes, for
//!    literals of 4+ bytes. The positions that pass are collected in a small array.
//! 3. At each collected position the buckets of the two bits (found by the bit's rank in the
//!    filter, so the tables stay a few KiB) are compared, from compact entries: eight head
//!    bytes and their mask in one `u64` each, so most literals need no slice comparison.
//!
//! The cost per byte is a few SIMD operations, plus about thirty instructions per start
//! position, whatever the number of literals (thousands, case variants and dictionaries
//! included).
//!
//! The order of the reported hits is part of the contract (findings with equal keys are sorted
//! unstably later, so their input order matters): by position; at one position the one-byte
//! literals, then those of 2-3 bytes, then those of 4+ bytes, each group by trigger id.

pub(crate) struct Trigger<A> {
    pub lit: Vec<u8>,
    pub ci: bool,
    pub actions: Vec<A>,
}

/// A literal in a bucket, laid out for a comparison without indirection.
#[derive(Clone, Copy)]
struct Entry {
    /// First (up to) eight bytes, little-endian, lowercased if `ci`.
    head: u64,
    /// The mask of the bytes `head` holds.
    mask: u64,
    id: u32,
    len: u32,
    ci: bool,
}

/// The literals under one filter bit: `ents[off..off + n2]` are keyed by `key2` (1-3 bytes:
/// those of one byte first, then by id), the next `n4` by `key4` (4+ bytes, by id).
struct Bucket {
    off: u32,
    n2: u32,
    n4: u32,
}

pub(crate) struct Triggers<A> {
    pub trigs: Vec<Trigger<A>>,
    /// The filter: bit `key2` is set when a literal of 1-3 bytes may start with those two
    /// bytes, bit `key4` when one of 4+ bytes may start with those four.
    bits: Box<[u64; 1024]>,
    /// Set bits in the words of `bits` before each one: a set bit's rank is its bucket's index.
    rank: Box<[u32; 1024]>,
    buckets: Vec<Bucket>,
    ents: Vec<Entry>,
    /// Per byte: `LOWER`, `UPPER`, `DIGIT`, and `FIRST` for a byte that begins some literal (in
    /// some case, if the literal is case-insensitive): the portable mask builder.
    flags: [u8; 256],
    /// Nibble tables of a superset of the `FIRST` bytes: `b` may be one when
    /// `nib_lo[b & 15] & nib_hi[b >> 4] != 0` (the SSSE3 mask builder; exact for up to eight
    /// distinct high nibbles, and an extra byte starts no literal, so a superset is harmless).
    nib_lo: [u8; 16],
    nib_hi: [u8; 16],
    /// The CPU has SSSE3 (detected when the scanner was built).
    simd: bool,
}

const LOWER: u8 = 1;
const UPPER: u8 = 2;
const DIGIT: u8 = 4;
const FIRST: u8 = 8;

/// 0: not a word byte, 1: lower, 2: upper, 3: digit.
static WCL: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        t[i] = if c.is_ascii_lowercase() {
            1
        } else if c.is_ascii_uppercase() {
            2
        } else if c.is_ascii_digit() {
            3
        } else {
            0
        };
        i += 1;
    }
    t
};

/// ASCII-lowercases eight packed bytes.
#[inline]
fn lower8(x: u64) -> u64 {
    let h = x & 0x7f7f_7f7f_7f7f_7f7f;
    let gt_z = h.wrapping_add(0x2525_2525_2525_2525);
    let ge_a = h.wrapping_add(0x3f3f_3f3f_3f3f_3f3f);
    let upper = !x & (ge_a ^ gt_z) & 0x8080_8080_8080_8080;
    x | (upper >> 2)
}

/// The exact first two bytes (a case-insensitive literal is entered under each case variant).
#[inline(always)]
fn key2(w: u64) -> usize {
    (w & 0xffff) as usize
}

/// A 16-bit hash of the first four bytes, blind to ASCII case: setting bit 5 of every byte maps
/// each letter to its lower case (and folds some other pairs such as `@` and `` ` ``, which only
/// lets a few more positions through to the exact comparison).
#[inline(always)]
fn key4(w: u64) -> usize {
    ((w as u32 | 0x2020_2020).wrapping_mul(0x9E37_79B1) >> 16) as usize
}

/// The eight bytes at `i`, little-endian, zero-padded past the end.
#[inline]
fn load8(b: &[u8], i: usize) -> u64 {
    match b.get(i..i + 8) {
        Some(s) => u64::from_le_bytes(s.try_into().unwrap()),
        None => {
            let mut a = [0u8; 8];
            let t = &b[i.min(b.len())..];
            a[..t.len()].copy_from_slice(t);
            u64::from_le_bytes(a)
        }
    }
}

#[inline(always)]
fn bit(bits: &[u64; 1024], k: usize) -> bool {
    bits[(k >> 6) & 1023] & (1 << (k & 63)) != 0
}

fn set_bit(bits: &mut [u64; 1024], k: usize) {
    bits[k >> 6] |= 1 << (k & 63);
}

/// Bytes per chunk (a power of two): small enough that the scan's buffers, set up on every
/// call, cost little next to the scan of a short string (most JSON values are), large enough
/// that the per-chunk calls do not count.
const CHUNK: usize = 1024;
/// The chunk size for texts that fit in one this small.
const SMALL: usize = 256;

/// Start positions of one 64-byte block from its class masks (`first`: bytes that begin some
/// literal); `carry` holds whether the byte before the block was a word byte (bit 0) and a
/// lower-case letter (bit 1), and is updated.
///
/// A word start or a non-word byte is a start position; only those whose byte begins some
/// literal are kept (no literal begins with a digit, so this drops every number in logs and
/// JSON before the filter sees it).
#[inline(always)]
fn starts(lower: u64, upper: u64, digit: u64, first: u64, carry: &mut u64) -> u64 {
    let word = lower | upper | digit;
    let prev_word = (word << 1) | (*carry & 1);
    let prev_lower = (lower << 1) | (*carry >> 1);
    *carry = (word >> 63) | ((lower >> 63) << 1);
    ((word & !prev_word) | (upper & prev_lower) | !word) & first
}

impl<A: Copy + PartialEq> Triggers<A> {
    pub fn builder() -> TriggersBuilder<A> {
        TriggersBuilder {
            trigs: Vec::new(),
            index: std::collections::HashMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.trigs.len()
    }

    #[inline(always)]
    fn check(
        &self,
        b: &[u8],
        i: usize,
        w: u64,
        wl: u64,
        ents: &[Entry],
        f: &mut impl FnMut(u32, usize),
    ) {
        for e in ents {
            let x = if e.ci { wl } else { w };
            if x & e.mask != e.head {
                continue;
            }
            let l = e.len as usize;
            if i + l > b.len() {
                continue;
            }
            if l > 8 {
                let s = &b[i + 8..i + l];
                let lit = &self.trigs[e.id as usize].lit[8..];
                let ok = if e.ci {
                    s.eq_ignore_ascii_case(lit)
                } else {
                    s == lit
                };
                if !ok {
                    continue;
                }
            }
            f(e.id, i);
        }
    }

    /// Calls `f(trigger, start)` for every occurrence of every literal at a start position, in
    /// the order the module documentation gives.
    #[inline]
    pub fn scan(&self, b: &[u8], f: impl FnMut(u32, usize)) {
        if b.len() <= SMALL {
            self.scan_in::<SMALL, { SMALL + 64 }, { SMALL / 64 }>(b, f);
        } else {
            self.scan_in::<CHUNK, { CHUNK + 64 }, { CHUNK / 64 }>(b, f);
        }
    }

    /// [`Self::scan`] in chunks of `N` bytes (`NB` = `N + 64`, `NW` = `N / 64`).
    #[inline(always)]
    fn scan_in<const N: usize, const NB: usize, const NW: usize>(
        &self,
        b: &[u8],
        mut f: impl FnMut(u32, usize),
    ) {
        const { assert!(N.is_power_of_two() && NB == N + 64 && NW == N / 64) };
        // the chunk, then the next 8 bytes of the text (the filter looks 8 bytes ahead), then
        // zeros up to the next whole block: the mask builder and the filter read it without
        // bounds checks or a special last block
        let mut buf = [0u8; NB];
        let mut masks = [0u64; NW];
        let mut cands = [0u16; N];
        let mut carry = 0u64;
        let mut base = 0;
        while base < b.len() {
            let len = (b.len() - base).min(N);
            let ext = (b.len() - base).min(N + 8);
            buf[..ext].copy_from_slice(&b[base..base + ext]);
            let words = len.div_ceil(64);
            buf[ext..words * 64 + 8].fill(0);
            self.start_masks(&buf[..words * 64], &mut carry, &mut masks[..words]);
            if !len.is_multiple_of(64) {
                // bits past the text (this is the last chunk, so `carry` no longer matters)
                masks[words - 1] &= (1u64 << (len % 64)) - 1;
            }
            let nc = self.candidates(&buf, &masks[..words], &mut cands);
            for &j in &cands[..nc] {
                self.at(b, base + j as usize, &mut f);
            }
            base += len;
        }
    }

    /// Fills `cands` with the offsets of the start positions in `masks` where the filter says
    /// some literal may begin, and returns their number.
    ///
    /// There is no branch per start position (which ones pass is unpredictable, and a branch
    /// there mispredicted often), and this small function keeps its loop in registers (inlined
    /// into the scan's caller it spilled them to the stack).
    #[inline(never)]
    fn candidates<const N: usize, const NB: usize>(
        &self,
        buf: &[u8; NB],
        masks: &[u64],
        cands: &mut [u16; N],
    ) -> usize {
        let bits = &*self.bits;
        let mut nc = 0;
        for (k, &m) in masks.iter().enumerate() {
            let mut m = m;
            while m != 0 {
                // masks cover at most N bytes, so the mask keeps `j` what it is (and lets the
                // compiler drop the bounds checks: j + 8 <= N + 7 < NB)
                let j = (k * 64 + m.trailing_zeros() as usize) & (N - 1);
                m &= m - 1;
                let w = u64::from_le_bytes(buf[j..j + 8].try_into().unwrap());
                // `nc` counts starts already seen, fewer than N
                cands[nc & (N - 1)] = j as u16;
                nc += (bit(bits, key2(w)) | bit(bits, key4(w))) as usize;
            }
        }
        nc
    }

    /// The start-position masks of whole 64-byte blocks, one word each.
    #[inline]
    fn start_masks(&self, blocks: &[u8], carry: &mut u64, out: &mut [u64]) {
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: `simd` is set only when the CPU reported SSSE3.
            unsafe { self.start_masks_ssse3(blocks, carry, out) };
            return;
        }
        self.start_masks_portable(blocks, carry, out);
    }

    fn start_masks_portable(&self, blocks: &[u8], carry: &mut u64, out: &mut [u64]) {
        for (blk, o) in blocks.chunks_exact(64).zip(out.iter_mut()) {
            let (mut l, mut u, mut d, mut fst) = (0u64, 0u64, 0u64, 0u64);
            for (j, &c) in blk.iter().enumerate() {
                let f = self.flags[c as usize] as u64;
                l |= (f & 1) << j;
                u |= ((f >> 1) & 1) << j;
                d |= ((f >> 2) & 1) << j;
                fst |= ((f >> 3) & 1) << j;
            }
            *o = starts(l, u, d, fst, carry);
        }
    }

    /// SSSE3 version of [`Self::start_masks_portable`].
    ///
    /// # Safety
    /// The CPU must support SSSE3.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "ssse3")]
    unsafe fn start_masks_ssse3(&self, blocks: &[u8], carry: &mut u64, out: &mut [u64]) {
        use std::arch::x86_64::*;
        // SAFETY: both tables are 16 bytes; loadu needs no alignment.
        let (nib_lo, nib_hi) = unsafe {
            (
                _mm_loadu_si128(self.nib_lo.as_ptr().cast()),
                _mm_loadu_si128(self.nib_hi.as_ptr().cast()),
            )
        };
        // a byte is in [lo, lo + k) when byte + (0x80 - lo) < -128 + k, as signed bytes
        let range = |x: __m128i, lo: u8, k: u8| -> u32 {
            let t = _mm_add_epi8(x, _mm_set1_epi8(0x80u8.wrapping_sub(lo) as i8));
            _mm_movemask_epi8(_mm_cmplt_epi8(t, _mm_set1_epi8((0x80u8 + k) as i8))) as u32
        };
        let f0 = _mm_set1_epi8(0x0f);
        let zero = _mm_setzero_si128();
        for (blk, o) in blocks.chunks_exact(64).zip(out.iter_mut()) {
            let (mut l, mut u, mut d, mut fst) = (0u64, 0u64, 0u64, 0u64);
            for k in 0..4 {
                // SAFETY: `blk` has 64 bytes, so bytes 16k..16k+16 are in bounds; loadu needs
                // no alignment.
                let x = unsafe { _mm_loadu_si128(blk.as_ptr().add(16 * k).cast()) };
                l |= (range(x, b'a', 26) as u64) << (16 * k);
                u |= (range(x, b'A', 26) as u64) << (16 * k);
                d |= (range(x, b'0', 10) as u64) << (16 * k);
                let lo = _mm_shuffle_epi8(nib_lo, _mm_and_si128(x, f0));
                let hi = _mm_shuffle_epi8(nib_hi, _mm_and_si128(_mm_srli_epi16(x, 4), f0));
                let none = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(lo, hi), zero)) as u32;
                fst |= ((!none & 0xffff) as u64) << (16 * k);
            }
            *o = starts(l, u, d, fst, carry);
        }
    }

    /// The bucket of filter bit `k`, if it is set: its entries of 1-3 bytes and of 4+ bytes.
    #[inline(always)]
    fn bucket(&self, k: usize) -> Option<&Bucket> {
        let (wi, bi) = ((k >> 6) & 1023, k & 63);
        let word = self.bits[wi];
        if word & (1 << bi) == 0 {
            return None;
        }
        let r = self.rank[wi] as usize + (word & ((1 << bi) - 1)).count_ones() as usize;
        self.buckets.get(r)
    }

    /// Reports the literals at candidate position `i`.
    #[inline(always)]
    fn at(&self, b: &[u8], i: usize, f: &mut impl FnMut(u32, usize)) {
        let w = load8(b, i);
        let wl = lower8(w);
        // every entry checks its own length, so a key made of padding past the end is harmless
        if let Some(k) = self.bucket(key2(w))
            && k.n2 != 0
        {
            let s = k.off as usize;
            self.check(b, i, w, wl, &self.ents[s..s + k.n2 as usize], f);
        }
        if let Some(k) = self.bucket(key4(w))
            && k.n4 != 0
        {
            let s = k.off as usize + k.n2 as usize;
            self.check(b, i, w, wl, &self.ents[s..s + k.n4 as usize], f);
        }
    }

    /// Uses the portable mask builder even where SSSE3 is available (tests).
    #[cfg(test)]
    pub(crate) fn portable(mut self) -> Self {
        self.simd = false;
        self
    }
}

pub(crate) struct TriggersBuilder<A> {
    trigs: Vec<Trigger<A>>,
    index: std::collections::HashMap<(Vec<u8>, bool), usize>,
}

/// The little-endian packing of up to the first eight bytes of `lit`, and their mask.
fn head8(lit: &[u8]) -> (u64, u64) {
    let l = lit.len().min(8);
    let head = load8(&lit[..l], 0);
    let mask = if l == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * l)) - 1
    };
    (head, mask)
}

impl<A: Copy + PartialEq> TriggersBuilder<A> {
    /// Adds a literal (ASCII-case-insensitive if `ci`) with an action.
    pub fn add(&mut self, lit: &[u8], ci: bool, a: A) {
        if lit.is_empty() {
            return;
        }
        let k = (
            if ci {
                lit.to_ascii_lowercase()
            } else {
                lit.to_vec()
            },
            ci,
        );
        let id = *self.index.entry(k.clone()).or_insert_with(|| {
            self.trigs.push(Trigger {
                lit: k.0.clone(),
                ci,
                actions: Vec::new(),
            });
            self.trigs.len() - 1
        });
        let acts = &mut self.trigs[id].actions;
        if !acts.contains(&a) {
            acts.push(a);
        }
    }

    pub fn build(self) -> Triggers<A> {
        let mut bits = Box::new([0u64; 1024]);
        // bucket key -> trigger ids, in the order of the hits at one position
        let mut b2: std::collections::BTreeMap<usize, Vec<u32>> = Default::default();
        let mut b4: std::collections::BTreeMap<usize, Vec<u32>> = Default::default();
        let mut flags = [0u8; 256];
        for (c, f) in flags.iter_mut().enumerate() {
            *f = match WCL[c] {
                1 => LOWER,
                2 => UPPER,
                3 => DIGIT,
                _ => 0,
            };
        }
        // a byte and, for a case-insensitive literal, its other case
        let variants = |x: u8, ci: bool| {
            if ci && x.to_ascii_uppercase() != x {
                vec![x, x.to_ascii_uppercase()]
            } else {
                vec![x]
            }
        };
        for (id, t) in self.trigs.iter().enumerate() {
            let c = t.lit[0];
            for x in variants(c, t.ci) {
                flags[x as usize] |= FIRST;
            }
            if t.lit.len() == 1 {
                for x in variants(c, t.ci) {
                    for y in 0..256 {
                        b2.entry(x as usize | y << 8).or_default().push(id as u32);
                    }
                }
            }
        }
        for (id, t) in self.trigs.iter().enumerate() {
            match t.lit.len() {
                1 => {}
                2 | 3 => {
                    for x in variants(t.lit[0], t.ci) {
                        for y in variants(t.lit[1], t.ci) {
                            b2.entry(x as usize | (y as usize) << 8)
                                .or_default()
                                .push(id as u32);
                        }
                    }
                }
                _ => b4.entry(key4(head8(&t.lit).0)).or_default().push(id as u32),
            }
        }
        // one bucket per set filter bit, in bit order (found by rank): the literals of 1-3
        // bytes keyed there, then those of 4+ bytes
        let mut keys: std::collections::BTreeMap<usize, (Vec<u32>, Vec<u32>)> = Default::default();
        for (k, v) in b2 {
            keys.entry(k).or_default().0 = v;
        }
        for (k, v) in b4 {
            keys.entry(k).or_default().1 = v;
        }
        let mut ents = Vec::new();
        let mut buckets = Vec::new();
        for (k, (v2, v4)) in keys {
            set_bit(&mut bits, k);
            buckets.push(Bucket {
                off: ents.len() as u32,
                n2: v2.len() as u32,
                n4: v4.len() as u32,
            });
            ents.extend(v2.iter().chain(&v4).map(|&id| {
                let t = &self.trigs[id as usize];
                let (head, mask) = head8(&t.lit);
                Entry {
                    head,
                    mask,
                    id,
                    len: t.lit.len() as u32,
                    ci: t.ci,
                }
            }));
        }
        let mut rank = Box::new([0u32; 1024]);
        let mut r = 0;
        for (w, x) in bits.iter().zip(rank.iter_mut()) {
            *x = r;
            r += w.count_ones();
        }
        // nibble tables: one bit per high nibble of a first byte (nibbles share a bit past
        // eight of them, which only makes the set larger)
        let (mut nib_lo, mut nib_hi) = ([0u8; 16], [0u8; 16]);
        let mut slot = [None::<u8>; 16];
        let mut next = 0u8;
        for c in 0..256usize {
            if flags[c] & FIRST == 0 {
                continue;
            }
            let hi = c >> 4;
            let s = *slot[hi].get_or_insert_with(|| {
                next += 1;
                (next - 1) % 8
            });
            nib_hi[hi] = 1 << s;
            nib_lo[c & 15] |= 1 << s;
        }
        #[cfg(target_arch = "x86_64")]
        let simd = std::arch::is_x86_feature_detected!("ssse3");
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        Triggers {
            trigs: self.trigs,
            bits,
            rank,
            buckets,
            ents,
            flags,
            nib_lo,
            nib_hi,
            simd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower8_works() {
        assert_eq!(
            lower8(u64::from_le_bytes(*b"AbZ@[`zA")),
            u64::from_le_bytes(*b"abz@[`za")
        );
        let x = u64::from_le_bytes([0xC3, 0x84, b'[', b'`', 0xDA, 0xC1, 0x40, 0x5B]);
        assert_eq!(lower8(x), x);
    }

    fn hits(t: &Triggers<u8>, s: &str) -> Vec<(u8, usize)> {
        let mut v = Vec::new();
        t.scan(s.as_bytes(), |id, p| {
            for &a in &t.trigs[id as usize].actions {
                v.push((a, p));
            }
        });
        v.sort();
        v
    }

    #[test]
    fn starts_cases_and_prefixes() {
        let mut b = Triggers::builder();
        b.add(b"token", true, 1);
        b.add(b"AKIA", false, 2);
        b.add(b"://", false, 3);
        b.add(b"~", false, 4);
        b.add(b"sk-", false, 5);
        b.add(b"sk-ant-", false, 6);
        let t = b.build();
        assert_eq!(
            hits(&t, "authToken TOKEN tokens xtoken"),
            vec![(1, 4), (1, 10), (1, 16)]
        );
        assert_eq!(hits(&t, "AKIA akia xAKIA"), vec![(2, 0), (2, 11)]);
        assert_eq!(hits(&t, "https://x ~/a"), vec![(3, 5), (4, 10)]);
        assert_eq!(hits(&t, "sk-ant-x"), vec![(5, 0), (6, 0)]);
    }

    use crate::util::test_rng::Rng;

    /// The definition, position by position and literal by literal, in the documented order.
    fn reference(t: &Triggers<u8>, b: &[u8]) -> Vec<(u32, usize)> {
        let class = |c: u8| WCL[c as usize];
        let mut out = Vec::new();
        for i in 0..b.len() {
            let c = class(b[i]);
            let prev = if i == 0 { 0 } else { class(b[i - 1]) };
            let start = if c != 0 {
                prev == 0 || (prev == 1 && c == 2)
            } else {
                t.trigs.iter().any(|tr| {
                    tr.lit[0] == b[i] || (tr.ci && tr.lit[0].to_ascii_uppercase() == b[i])
                })
            };
            if !start {
                continue;
            }
            for group in [1..2, 2..4, 4..usize::MAX] {
                for (id, tr) in t.trigs.iter().enumerate() {
                    let l = tr.lit.len();
                    if !group.contains(&l) || i + l > b.len() {
                        continue;
                    }
                    let s = &b[i..i + l];
                    if (tr.ci && s.eq_ignore_ascii_case(&tr.lit)) || s == tr.lit.as_slice() {
                        out.push((id as u32, i));
                    }
                }
            }
        }
        out
    }

    /// The scanner (SSSE3 and portable mask builders) agrees with the reference, hit for hit
    /// and in order, on random literal sets and texts made of literal pieces, case flips,
    /// punctuation, digits, NUL and UTF-8 bytes, across block and chunk boundaries.
    #[test]
    fn scan_matches_the_reference_on_generated_inputs() {
        let alphabet: &[u8] = b"aAbBkKsStTzZ09 _-.:/<[]~\\|$!\n\t\"'=,@\0\xC3\xA9\xE2\x80\x8B\xF0";
        let mut r = Rng(0x5eed_1234_abcd_0001);
        let mut total = 0usize;
        for round in 0..300 {
            let mut lits: Vec<(Vec<u8>, bool)> = Vec::new();
            for _ in 0..1 + r.below(40) {
                let max = if r.below(4) == 0 { 20 } else { 6 };
                let l = 1 + r.below(max);
                let lit: Vec<u8> = (0..l).map(|_| alphabet[r.below(alphabet.len())]).collect();
                lits.push((lit, r.below(2) == 0));
            }
            if round % 3 == 0 {
                // many literals sharing prefixes, as the real rule set has
                for k in 0..30 {
                    lits.push((format!("the {k}x").into_bytes(), k % 2 == 0));
                    lits.push((format!("Tok{k}").into_bytes(), k % 3 == 0));
                }
            }
            let mut b = Triggers::builder();
            for (k, (lit, ci)) in lits.iter().enumerate() {
                b.add(lit, *ci, (k % 7) as u8);
            }
            let t = b.build();
            let lens = [
                0, 1, 7, 63, 64, 65, 130, 255, 256, 257, 1023, 1024, 1025, 3000, 4097,
            ];
            let len = lens[r.below(lens.len())];
            let mut text = Vec::new();
            while text.len() < len {
                if r.below(3) == 0 {
                    let (lit, _) = &lits[r.below(lits.len())];
                    let mut lit = lit.clone();
                    for c in lit.iter_mut() {
                        if r.below(3) == 0 {
                            *c = c.to_ascii_uppercase();
                        }
                    }
                    text.extend(lit);
                } else {
                    text.push(alphabet[r.below(alphabet.len())]);
                }
            }
            text.truncate(len);
            let want = reference(&t, &text);
            let mut got = Vec::new();
            t.scan(&text, |id, p| got.push((id, p)));
            assert_eq!(got, want, "round {round}");
            let t = t.portable();
            let mut got = Vec::new();
            t.scan(&text, |id, p| got.push((id, p)));
            assert_eq!(got, want, "round {round}, portable");
            total += want.len();
        }
        assert!(total > 10_000, "too few hits to mean anything: {total}");
    }

    /// The SSSE3 mask builder gives the portable builder's masks on random bytes when the
    /// literals' first bytes have at most eight high nibbles; past that, a superset whose extra
    /// bits are all at bytes that begin no literal (so the scan's hits are the same).
    #[test]
    fn simd_masks_match_the_portable_masks() {
        let mut r = Rng(0x0dd_ba11_5eed);
        let mut supersets = 0;
        for round in 0..200 {
            let mut b = Triggers::builder();
            let mut nibbles = std::collections::HashSet::new();
            for _ in 0..1 + r.below(if round % 2 == 0 { 8 } else { 120 }) {
                let c = r.next() as u8;
                nibbles.insert(c >> 4);
                b.add(&[c, b'x'], false, 0u8);
            }
            let t = b.build();
            if !t.simd {
                return; // nothing to compare on this CPU
            }
            let words = 1 + r.below(64);
            let text: Vec<u8> = (0..words * 64).map(|_| r.next() as u8).collect();
            let (mut a, mut c) = (vec![0u64; words], vec![0u64; words]);
            let mut ca = [0, 1, 3][r.below(3)];
            let mut cc = ca;
            t.start_masks(&text, &mut ca, &mut a);
            t.start_masks_portable(&text, &mut cc, &mut c);
            assert_eq!(ca, cc, "round {round}");
            if nibbles.len() <= 8 {
                assert_eq!(a, c, "round {round}");
            }
            for (k, (&a, &c)) in a.iter().zip(&c).enumerate() {
                assert_eq!(a & c, c, "round {round}: a start lost");
                let mut extra = a & !c;
                while extra != 0 {
                    let x = text[k * 64 + extra.trailing_zeros() as usize];
                    let f = t.flags[x as usize];
                    assert_eq!(f & FIRST, 0, "round {round}: extra start at {x}");
                    extra &= extra - 1;
                }
            }
            if nibbles.len() > 8 {
                supersets += 1;
            }
        }
        assert!(
            supersets > 50,
            "the superset case was not exercised: {supersets}"
        );
    }
}
