//! The literal-trigger scanner: every rule literal, found in one linear pass.
//!
//! Literals are checked only at *start positions*: the start of a word (an ASCII letter or digit
//! after a non-word byte, or an upper-case letter after a lower-case one, as in `authToken`) and
//! any byte that begins some non-alphanumeric literal (`<`, `-`, `:`, `/`...). At a start
//! position the two bytes there (ASCII-lowercased) index a 64 Kbit bitmap; only when the bit is
//! set is the bucket of literals with that two-byte prefix compared. The cost per byte is a
//! table lookup and a branch, whatever the number of literals (thousands, case variants and
//! dictionaries included), which is what keeps the scan in the hundreds of MB/s where a general
//! multi-pattern automaton of that size runs slower.

pub(crate) struct Trigger<A> {
    pub lit: Vec<u8>,
    pub ci: bool,
    pub actions: Vec<A>,
    /// First (up to) four bytes, little-endian, lowercased if `ci`, and the mask of their length.
    head: u32,
    mask: u32,
}

pub(crate) struct Triggers<A> {
    pub trigs: Vec<Trigger<A>>,
    /// Literals of 4+ bytes, by a 16-bit hash of their lowercased first four bytes.
    bits4: Vec<u64>,
    table4: Vec<(u32, u32)>,
    /// Literals of 2-3 bytes, by their lowercased first two bytes.
    bits2: Vec<u64>,
    table2: Vec<(u32, u32)>,
    flat: Vec<u32>,
    /// One-byte literals by byte.
    single: Vec<Vec<u32>>,
    has_single: [bool; 256],
    /// Bytes other than ASCII letters and digits that begin some literal.
    punct_start: [bool; 256],
}

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

/// ASCII-lowercases four packed bytes.
#[inline]
fn lower4(x: u32) -> u32 {
    let h = x & 0x7f7f_7f7f;
    let gt_z = h.wrapping_add(0x2525_2525);
    let ge_a = h.wrapping_add(0x3f3f_3f3f);
    let upper = !x & (ge_a ^ gt_z) & 0x8080_8080;
    x | (upper >> 2)
}

#[inline]
fn hash4(x: u32) -> usize {
    (x.wrapping_mul(0x9E37_79B1) >> 16) as usize
}

#[inline]
fn load4(b: &[u8], i: usize) -> u32 {
    if i + 4 <= b.len() {
        u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
    } else {
        let mut a = [0u8; 4];
        a[..b.len() - i].copy_from_slice(&b[i..]);
        u32::from_le_bytes(a)
    }
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

    #[inline]
    fn check(
        &self,
        b: &[u8],
        i: usize,
        w: u32,
        wl: u32,
        list: &[u32],
        f: &mut impl FnMut(u32, usize),
    ) {
        for &t in list {
            let tr = &self.trigs[t as usize];
            let x = if tr.ci { wl } else { w };
            if x & tr.mask != tr.head {
                continue;
            }
            let l = tr.lit.len();
            if l > 4 {
                if i + l > b.len() {
                    continue;
                }
                let s = &b[i + 4..i + l];
                let ok = if tr.ci {
                    s.eq_ignore_ascii_case(&tr.lit[4..])
                } else {
                    s == &tr.lit[4..]
                };
                if !ok {
                    continue;
                }
            } else if i + l > b.len() {
                continue;
            }
            f(t, i);
        }
    }

    /// Calls `f(trigger, start)` for every occurrence of every literal at a start position.
    #[inline]
    pub fn scan(&self, b: &[u8], mut f: impl FnMut(u32, usize)) {
        let n = b.len();
        let mut prev = 0u8;
        let mut i = 0;
        while i < n {
            let c = b[i];
            let cl = WCL[c as usize];
            if cl == 1 && prev != 0 {
                // the rest of a lower-case run: nothing starts here
                i += 1;
                while i < n && WCL[b[i] as usize] == 1 {
                    i += 1;
                }
                prev = 1;
                continue;
            }
            let start = if cl != 0 {
                prev == 0 || (prev == 1 && cl == 2)
            } else {
                self.punct_start[c as usize]
            };
            prev = cl;
            if start {
                self.at(b, i, c, &mut f);
            }
            i += 1;
        }
    }

    #[inline]
    fn at(&self, b: &[u8], i: usize, c: u8, f: &mut impl FnMut(u32, usize)) {
        let n = b.len();
        if self.has_single[c as usize] {
            for &t in &self.single[c as usize] {
                f(t, i);
            }
        }
        if i + 1 >= n {
            return;
        }
        let w = load4(b, i);
        let wl = lower4(w);
        let k2 = (wl & 0xffff) as usize;
        if self.bits2[k2 >> 6] & (1 << (k2 & 63)) != 0 {
            let (off, cnt) = self.table2[k2];
            self.check(
                b,
                i,
                w,
                wl,
                &self.flat[off as usize..(off + cnt) as usize],
                f,
            );
        }
        if i + 4 <= n {
            let k4 = hash4(wl);
            if self.bits4[k4 >> 6] & (1 << (k4 & 63)) != 0 {
                let (off, cnt) = self.table4[k4];
                self.check(
                    b,
                    i,
                    w,
                    wl,
                    &self.flat[off as usize..(off + cnt) as usize],
                    f,
                );
            }
        }
    }
}

pub(crate) struct TriggersBuilder<A> {
    trigs: Vec<Trigger<A>>,
    index: std::collections::HashMap<(Vec<u8>, bool), usize>,
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
            let l = k.0.len().min(4);
            let head = load4(&k.0[..l], 0);
            let mask = if l == 4 {
                u32::MAX
            } else {
                (1u32 << (8 * l)) - 1
            };
            self.trigs.push(Trigger {
                lit: k.0.clone(),
                ci,
                actions: Vec::new(),
                head,
                mask,
            });
            self.trigs.len() - 1
        });
        let acts = &mut self.trigs[id].actions;
        if !acts.contains(&a) {
            acts.push(a);
        }
    }

    pub fn build(self) -> Triggers<A> {
        let mut bits2 = vec![0u64; 1024];
        let mut bits4 = vec![0u64; 1024];
        let mut b2: std::collections::BTreeMap<usize, Vec<u32>> = Default::default();
        let mut b4: std::collections::BTreeMap<usize, Vec<u32>> = Default::default();
        let mut single: Vec<Vec<u32>> = vec![Vec::new(); 256];
        let mut punct_start = [false; 256];
        for (id, t) in self.trigs.iter().enumerate() {
            let c = t.lit[0];
            for c in [c, c.to_ascii_uppercase()] {
                if WCL[c as usize] == 0 {
                    punct_start[c as usize] = true;
                }
            }
            match t.lit.len() {
                1 => {
                    single[c as usize].push(id as u32);
                    if t.ci && c.to_ascii_uppercase() != c {
                        single[c.to_ascii_uppercase() as usize].push(id as u32);
                    }
                }
                2 | 3 => {
                    let k = (lower4(load4(&t.lit, 0)) & 0xffff) as usize;
                    bits2[k >> 6] |= 1 << (k & 63);
                    b2.entry(k).or_default().push(id as u32);
                }
                _ => {
                    let k = hash4(lower4(load4(&t.lit, 0)));
                    bits4[k >> 6] |= 1 << (k & 63);
                    b4.entry(k).or_default().push(id as u32);
                }
            }
        }
        let mut has_single = [false; 256];
        for (c, s) in single.iter().enumerate() {
            has_single[c] = !s.is_empty();
        }
        let mut flat = Vec::new();
        let mut table2 = vec![(0u32, 0u32); 65536];
        let mut table4 = vec![(0u32, 0u32); 65536];
        for (tab, buckets) in [(&mut table2, b2), (&mut table4, b4)] {
            for (k, v) in buckets {
                tab[k] = (flat.len() as u32, v.len() as u32);
                flat.extend(v);
            }
        }
        Triggers {
            trigs: self.trigs,
            bits4,
            table4,
            bits2,
            table2,
            flat,
            single,
            has_single,
            punct_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower4_works() {
        assert_eq!(
            lower4(u32::from_le_bytes(*b"AbZ@")),
            u32::from_le_bytes(*b"abz@")
        );
        assert_eq!(
            lower4(u32::from_le_bytes([0xC3, 0x84, b'[', b'`'])),
            u32::from_le_bytes([0xC3, 0x84, b'[', b'`'])
        );
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
}
