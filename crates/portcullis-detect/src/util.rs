//! Validators and small helpers shared by the detectors.

/// Luhn checksum over ASCII digits (non-digits are ignored).
pub fn luhn_valid(s: &str) -> bool {
    let mut sum = 0u32;
    let mut n = 0;
    for (i, d) in s
        .bytes()
        .rev()
        .filter(|b| b.is_ascii_digit())
        .map(|b| (b - b'0') as u32)
        .enumerate()
    {
        let v = if i % 2 == 1 {
            let x = d * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            d
        };
        sum += v;
        n += 1;
    }
    n > 1 && sum.is_multiple_of(10)
}

/// IBAN length for a country code, if IBAN is used there.
pub(crate) fn iban_length(cc: &[u8]) -> Option<usize> {
    const T: &[(&[u8; 2], usize)] = &[
        (b"AD", 24),
        (b"AE", 23),
        (b"AL", 28),
        (b"AT", 20),
        (b"AZ", 28),
        (b"BA", 20),
        (b"BE", 16),
        (b"BG", 22),
        (b"BH", 22),
        (b"BR", 29),
        (b"BY", 28),
        (b"CH", 21),
        (b"CR", 22),
        (b"CY", 28),
        (b"CZ", 24),
        (b"DE", 22),
        (b"DK", 18),
        (b"DO", 28),
        (b"EE", 20),
        (b"EG", 29),
        (b"ES", 24),
        (b"FI", 18),
        (b"FO", 18),
        (b"FR", 27),
        (b"GB", 22),
        (b"GE", 22),
        (b"GI", 23),
        (b"GL", 18),
        (b"GR", 27),
        (b"GT", 28),
        (b"HR", 21),
        (b"HU", 28),
        (b"IE", 22),
        (b"IL", 23),
        (b"IQ", 23),
        (b"IS", 26),
        (b"IT", 27),
        (b"JO", 30),
        (b"KW", 30),
        (b"KZ", 20),
        (b"LB", 28),
        (b"LC", 32),
        (b"LI", 21),
        (b"LT", 20),
        (b"LU", 20),
        (b"LV", 21),
        (b"MC", 27),
        (b"MD", 24),
        (b"ME", 22),
        (b"MK", 19),
        (b"MR", 27),
        (b"MT", 31),
        (b"MU", 30),
        (b"NL", 18),
        (b"NO", 15),
        (b"PK", 24),
        (b"PL", 28),
        (b"PS", 29),
        (b"PT", 25),
        (b"QA", 29),
        (b"RO", 24),
        (b"RS", 22),
        (b"SA", 24),
        (b"SC", 31),
        (b"SE", 24),
        (b"SI", 19),
        (b"SK", 24),
        (b"SM", 27),
        (b"ST", 25),
        (b"SV", 28),
        (b"TL", 23),
        (b"TN", 24),
        (b"TR", 26),
        (b"UA", 29),
        (b"VA", 22),
        (b"VG", 24),
        (b"XK", 20),
    ];
    T.iter().find(|(c, _)| &c[..] == cc).map(|(_, l)| *l)
}

/// IBAN validity: country length and the ISO 7064 mod-97 check (spaces ignored).
pub fn iban_valid(s: &str) -> bool {
    let b: Vec<u8> = s.bytes().filter(|c| *c != b' ').collect();
    if b.len() < 15 || b.len() > 34 {
        return false;
    }
    if !b[0].is_ascii_uppercase() || !b[1].is_ascii_uppercase() {
        return false;
    }
    if iban_length(&b[..2]) != Some(b.len()) {
        return false;
    }
    iban_mod97(&b)
}

pub(crate) fn iban_mod97(b: &[u8]) -> bool {
    if !b[2].is_ascii_digit() || !b[3].is_ascii_digit() {
        return false;
    }
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(b[..4].iter()) {
        let v = match c {
            b'0'..=b'9' => (c - b'0') as u32,
            b'A'..=b'Z' => (c - b'A') as u32 + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// Shannon entropy in bits per byte.
pub fn shannon_entropy(s: &[u8]) -> f32 {
    if s.is_empty() {
        return 0.0;
    }
    let mut counts = [0u16; 256];
    for &b in s {
        counts[b as usize] = counts[b as usize].saturating_add(1);
    }
    let n = s.len() as f32;
    let mut h = 0.0f32;
    for &c in counts.iter() {
        if c > 0 {
            let p = c as f32 / n;
            h -= p * p.log2();
        }
    }
    h
}

/// Verhoeff checksum (Aadhaar).
pub(crate) fn verhoeff_valid(digits: &[u8]) -> bool {
    const D: [[u8; 10]; 10] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
        [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
        [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
        [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
        [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
        [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
        [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
        [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
        [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
    ];
    const P: [[u8; 10]; 8] = [
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
        [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
        [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
        [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
        [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
        [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
        [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
        [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
    ];
    let mut c = 0u8;
    for (i, &d) in digits.iter().rev().enumerate() {
        c = D[c as usize][P[i % 8][d as usize] as usize];
    }
    c == 0
}

/// Values that are obviously placeholders, not real credentials.
pub(crate) fn is_placeholder(v: &str) -> bool {
    let l = v.to_ascii_lowercase();
    if l.len() < 4 {
        return true;
    }
    const BAD: &[&str] = &[
        "example",
        "xxxx",
        "****",
        "....",
        "<",
        ">",
        "${",
        "{{",
        "}}",
        "%s",
        "$(",
        "placeholder",
        "changeme",
        "change_me",
        "your_",
        "your-",
        "yourpass",
        "dummy",
        "redacted",
        "sample",
        "fake",
        "000000",
        "123456",
        "abcdef",
        "password",
        "passwd",
        "secret",
        "token",
        "undefined",
        "os.environ",
        "getenv",
        "process.env",
        "env[",
        "env(",
        "[hidden]",
        "<hidden>",
        "masked",
        "replace",
        "insert",
        "todo",
        "fixme",
        "none",
        "null",
        "nil",
        "true",
        "false",
        "example.com",
    ];
    if BAD.iter().any(|b| l.contains(b)) {
        return true;
    }
    // a single repeated character
    let first = l.as_bytes()[0];
    l.bytes().all(|b| b == first)
}

/// Decodes standard or URL-safe base64 (padding optional). None on invalid input.
pub(crate) fn base64_decode(s: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            _ => return false,
        } as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    true
}

/// Decodes hex. False on odd length or a non-hex byte.
pub(crate) fn hex_decode(s: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    if !s.len().is_multiple_of(2) {
        return false;
    }
    fn v(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    for p in s.chunks(2) {
        match (v(p[0]), v(p[1])) {
            (Some(a), Some(b)) => out.push(a << 4 | b),
            _ => return false,
        }
    }
    true
}

/// Share of printable ASCII (and whitespace) in bytes.
pub(crate) fn printable_share(b: &[u8]) -> f32 {
    if b.is_empty() {
        return 0.0;
    }
    let p = b
        .iter()
        .filter(|&&c| (0x20..0x7f).contains(&c) || c == b'\n' || c == b'\t' || c == b'\r')
        .count();
    p as f32 / b.len() as f32
}

/// ROT13 of ASCII letters.
pub(crate) fn rot13(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' => (((c as u8 - b'a') + 13) % 26 + b'a') as char,
            'A'..='Z' => (((c as u8 - b'A') + 13) % 26 + b'A') as char,
            c => c,
        })
        .collect()
}

/// FNV-1a 64-bit hash, seeded. The classifier's Python trainer computes the same.
#[inline]
pub(crate) fn fnv1a(seed: u64, data: &[u8]) -> u64 {
    let mut h = 0xcbf29ce484222325u64 ^ seed;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// Moves `i` back to a char boundary of `s`.
#[inline]
pub(crate) fn floor_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Moves `i` forward to a char boundary of `s`.
#[inline]
pub(crate) fn ceil_boundary(s: &str, mut i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn() {
        assert!(luhn_valid("4111111111111111"));
        assert!(luhn_valid("4111 1111 1111 1111"));
        assert!(luhn_valid("378282246310005"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid("1"));
    }

    #[test]
    fn iban() {
        assert!(iban_valid("DE89370400440532013000"));
        assert!(iban_valid("GB82 WEST 1234 5698 7654 32"));
        assert!(iban_valid("FR1420041010050500013M02606"));
        assert!(!iban_valid("DE89370400440532013001"));
        assert!(!iban_valid("DE8937040044053201300")); // wrong length
        assert!(!iban_valid("ZZ89370400440532013000"));
    }

    #[test]
    fn verhoeff() {
        // 2363 (Verhoeff check digit of 236 is 3)
        assert!(verhoeff_valid(&[2, 3, 6, 3]));
        assert!(!verhoeff_valid(&[2, 3, 6, 4]));
    }

    #[test]
    fn entropy() {
        assert!(shannon_entropy(b"aaaaaaaa") < 0.01);
        assert!(shannon_entropy(b"abcdefgh") > 2.9);
    }

    #[test]
    fn placeholders() {
        assert!(is_placeholder("${DB_PASSWORD}"));
        assert!(is_placeholder("changeme"));
        assert!(is_placeholder("xxxxxxxxxxxx"));
        assert!(!is_placeholder("Tr0ub4dor&3"));
    }

    #[test]
    fn decoders() {
        let mut o = Vec::new();
        assert!(base64_decode(b"aGVsbG8gd29ybGQ=", &mut o));
        assert_eq!(o, b"hello world");
        assert!(hex_decode(b"68656c6c6f", &mut o));
        assert_eq!(o, b"hello");
        assert!(!hex_decode(b"6g", &mut o));
        assert_eq!(rot13("Hello"), "Uryyb");
    }
}

/// Deterministic pseudo-random inputs for the crate's generated-input tests.
#[cfg(test)]
pub(crate) mod test_rng {
    /// xorshift64: deterministic inputs without a dependency.
    pub(crate) struct Rng(pub(crate) u64);
    impl Rng {
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        pub(crate) fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }
}
