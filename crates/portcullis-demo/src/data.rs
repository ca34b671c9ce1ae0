//! The demo CRM table: ~200 customers generated from a fixed seed.
//!
//! Nothing here is read from a file or the network: every name, address and number comes from the
//! small pools below and a [`SplitMix64`] generator seeded with [`SEED`], so every build and every
//! run produces byte-identical records (a test pins a digest of the table). The records are made to
//! look real enough that personal-data detectors have something to find: e-mail addresses, phone
//! numbers in E.164 and national formats, postal addresses, dates of birth, and free-text notes that
//! sometimes carry a payment card number (Luhn-valid, from the card networks' published test
//! ranges), a US social security number, or an IBAN with a valid mod-97 checksum.
//!
//! Phone numbers come from ranges reserved for fiction where a country has one (US/CA 555-01xx,
//! UK 07700 900xxx and 020 7946 0xxx, AU 0491 570 xxx, FR 06 39 98 xx xx); e-mail domains are
//! under the reserved `.example` names, so none of this reaches a real person.

use std::collections::HashSet;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

#[rustfmt::skip]
mod pools;

pub(crate) use pools::TEST_CARDS;
use pools::{COMPANIES, COUNTRIES, City, Country, MONTHS, PERSONAL_DOMAINS};

/// The seed of the demo table. Changing it changes every record (and the pinned digest).
pub const SEED: u64 = 0x5EED_C0DE_2026_0001;

/// How many customers the demo table holds.
pub const CUSTOMER_COUNT: usize = 200;

/// One customer record of the demo CRM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(
    title = "Customer",
    description = "A customer record of the Portcullis demo CRM."
)]
pub struct Customer {
    /// Stable identifier, `cus_` and four digits (e.g. `cus_0001`).
    #[schemars(regex(pattern = r"^cus_[0-9]{4}$"))]
    pub id: String,
    /// Given name(s) then family name(s).
    pub full_name: String,
    /// Contact e-mail address.
    pub email: String,
    /// Phone number in E.164 form (e.g. `+12125550147`).
    pub phone: String,
    /// The same phone number as it is written in its country (e.g. `(212) 555-0147`).
    pub phone_national: String,
    /// The company the customer works for.
    pub company: String,
    /// Postal address.
    pub address: Address,
    /// Date of birth, `YYYY-MM-DD`.
    pub date_of_birth: String,
    /// Subscription plan.
    pub plan: Plan,
    /// Date the customer signed up, `YYYY-MM-DD`.
    pub customer_since: String,
    /// Free-text notes written by account managers; may hold payment or identity data.
    pub notes: String,
}

/// A postal address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Address {
    /// Street line: number, street, and unit where there is one, in the country's order.
    pub street: String,
    /// City or town.
    pub city: String,
    /// State, province or territory, where the country uses one in addresses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code in the country's format.
    pub postal_code: String,
    /// Country name in English.
    pub country: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country_code: String,
}

/// A subscription plan.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    /// No charge; limited seats.
    Free,
    /// Small teams.
    Starter,
    /// Growing teams.
    Pro,
    /// Contracted, invoiced yearly.
    Enterprise,
}

impl Plan {
    /// The plan's name as it appears in records.
    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }
}

/// The demo table, generated once from [`SEED`]. Every server instance starts from a copy of it.
pub fn customers() -> &'static [Customer] {
    static TABLE: LazyLock<Vec<Customer>> =
        LazyLock::new(|| generate_customers(SEED, CUSTOMER_COUNT));
    &TABLE
}

/// Generates `count` customers from `seed`. The same arguments always give the same records;
/// [`customers`] is `generate_customers(SEED, CUSTOMER_COUNT)`. Ids run from `cus_0001`, so counts
/// above 9999 give five-digit ids.
pub fn generate_customers(seed: u64, count: usize) -> Vec<Customer> {
    let mut rng = SplitMix64::new(seed);
    let mut used_emails = HashSet::new();
    (1..=count)
        .map(|n| generate_one(&mut rng, n, &mut used_emails))
        .collect()
}

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast, and fully specified, so the table does
/// not depend on the version of any random-number crate.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (Lemire's multiply-shift; the bias is negligible for these small `n`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// A number in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    pub(crate) fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// `k` decimal digits, leading zeros allowed.
    fn digits(&mut self, k: usize) -> String {
        (0..k)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }

    /// Picks an index with probability proportional to its weight.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut roll = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if roll < w {
                return i;
            }
            roll -= w;
        }
        weights.len() - 1
    }
}

fn generate_one(rng: &mut SplitMix64, n: usize, used_emails: &mut HashSet<String>) -> Customer {
    let weights: Vec<u64> = COUNTRIES.iter().map(|c| c.weight).collect();
    let country = &COUNTRIES[rng.weighted(&weights)];
    let city = rng.pick(country.cities);

    let first = *rng.pick(country.names.first);
    let last = if country.names.two_surnames {
        let a = *rng.pick(country.names.last);
        let mut b = *rng.pick(country.names.last);
        if a == b {
            b = *rng.pick(country.names.last);
        }
        format!("{a} {b}")
    } else {
        (*rng.pick(country.names.last)).to_owned()
    };
    let full_name = format!("{first} {last}");

    let company = *rng.pick(COMPANIES);
    let email = unique_email(rng, first, &last, company, used_emails);
    let (phone, phone_national) = phone_number(rng, country.code, city);
    let address = Address {
        street: street_line(rng, country),
        city: city.name.to_owned(),
        region: city.region.map(str::to_owned),
        postal_code: postal_code(rng, country.code, city.postal),
        country: country.name.to_owned(),
        country_code: country.code.to_owned(),
    };
    let date_of_birth = date(rng, 1950, 2004);
    let plan =
        [Plan::Free, Plan::Starter, Plan::Pro, Plan::Enterprise][rng.weighted(&[30, 30, 28, 12])];
    let customer_since = date(rng, 2015, 2025);
    let notes = notes(rng, country.code, first, plan);

    Customer {
        id: format!("cus_{n:04}"),
        full_name,
        email,
        phone,
        phone_national,
        company: company.to_owned(),
        address,
        date_of_birth,
        plan,
        customer_since,
        notes,
    }
}

/// Lower-case ASCII for e-mail local parts and domains: accents dropped, spaces and
/// punctuation removed.
fn ascii_slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'a'..='z' | '0'..='9' => out.push(c),
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => out.push('a'),
            'ç' => out.push('c'),
            'è' | 'é' | 'ê' | 'ë' => out.push('e'),
            'ì' | 'í' | 'î' | 'ï' | 'ı' => out.push('i'),
            'ñ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => out.push('o'),
            'ù' | 'ú' | 'û' | 'ü' => out.push('u'),
            'ß' => out.push_str("ss"),
            _ => {}
        }
    }
    out
}

fn company_domain(company: &str) -> String {
    let trimmed = [
        "GmbH",
        "SARL",
        "BV",
        "SL",
        "LLP",
        "Ltd",
        "Inc",
        "Corporation",
        "Company",
    ]
    .iter()
    .fold(company.to_owned(), |acc, suffix| {
        acc.strip_suffix(suffix)
            .map(str::trim_end)
            .map(str::to_owned)
            .unwrap_or(acc)
    });
    format!("{}.example", ascii_slug(&trimmed))
}

fn unique_email(
    rng: &mut SplitMix64,
    first: &str,
    last: &str,
    company: &str,
    used: &mut HashSet<String>,
) -> String {
    let (f, l) = (ascii_slug(first), ascii_slug(last));
    let local = match rng.below(5) {
        0 | 1 => format!("{f}.{l}"),
        2 => format!("{}{l}", &f[..1]),
        3 => format!("{f}_{l}"),
        _ => format!("{f}.{l}{}", rng.range(1, 99)),
    };
    let domain = if rng.below(10) < 7 {
        company_domain(company)
    } else {
        (*rng.pick(PERSONAL_DOMAINS)).to_owned()
    };
    let mut email = format!("{local}@{domain}");
    let mut k = 2;
    while !used.insert(email.clone()) {
        email = format!("{local}{k}@{domain}");
        k += 1;
    }
    email
}

/// Returns (E.164, national) for a number in `country`, in a fiction range where one exists.
fn phone_number(rng: &mut SplitMix64, country: &str, city: &City) -> (String, String) {
    match country {
        "US" | "CA" => {
            let line = format!("01{}", rng.digits(2));
            (
                format!("+1{}555{line}", city.area),
                format!("({}) 555-{line}", city.area),
            )
        }
        "GB" => {
            if rng.below(2) == 0 {
                let d = rng.digits(3);
                (format!("+447700900{d}"), format!("07700 900{d}"))
            } else {
                let d = rng.digits(3);
                (format!("+442079460{d}"), format!("020 7946 0{d}"))
            }
        }
        "IE" => {
            let (a, b) = (rng.digits(3), rng.digits(4));
            (format!("+35387{a}{b}"), format!("087 {a} {b}"))
        }
        "AU" => {
            let d = rng.range(6, 159);
            (format!("+61491570{d:03}"), format!("0491 570 {d:03}"))
        }
        "DE" => {
            if rng.below(2) == 0 {
                let d = rng.digits(8);
                (format!("+49151{d}"), format!("0151 {d}"))
            } else {
                let d = rng.digits(7);
                (
                    format!("+49{}{d}", city.area),
                    format!("0{} {d}", city.area),
                )
            }
        }
        "FR" => {
            let (a, b) = (rng.digits(2), rng.digits(2));
            (format!("+3363998{a}{b}"), format!("06 39 98 {a} {b}"))
        }
        "NL" => {
            let d = rng.digits(8);
            (format!("+316{d}"), format!("06 {d}"))
        }
        "ES" => {
            let (a, b, c) = (rng.digits(2), rng.digits(3), rng.digits(3));
            (format!("+346{a}{b}{c}"), format!("6{a} {b} {c}"))
        }
        other => unreachable!("no phone plan for country {other}"),
    }
}

fn street_line(rng: &mut SplitMix64, country: &Country) -> String {
    let street = *rng.pick(country.streets);
    let number = rng.range(1, 250);
    match country.code {
        "US" | "CA" | "AU" => {
            let number = rng.range(1, 9800);
            match rng.below(4) {
                0 => format!("{number} {street}, Apt {}", rng.range(1, 40)),
                1 => format!("{number} {street}, Suite {}", rng.range(100, 900)),
                _ => format!("{number} {street}"),
            }
        }
        "GB" | "IE" => {
            if rng.below(3) == 0 {
                format!("Flat {}, {number} {street}", rng.range(1, 12))
            } else {
                format!("{number} {street}")
            }
        }
        "DE" | "NL" => format!("{street} {number}"),
        "FR" => format!("{number} {street}"),
        "ES" => format!(
            "{street}, {number}, {}º {}",
            rng.range(1, 8),
            rng.pick(&["A", "B", "C", "D"])
        ),
        other => unreachable!("no street format for country {other}"),
    }
}

fn postal_code(rng: &mut SplitMix64, country: &str, prefix: &str) -> String {
    const UK_UNIT: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
    const EIRCODE: &[u8] = b"0123456789ACDEFHKNPRTVWXY";
    let letter = |rng: &mut SplitMix64, set: &[u8]| char::from(*rng.pick(set));
    match country {
        "US" | "DE" | "FR" | "ES" => format!("{prefix}{}", rng.digits(5 - prefix.len())),
        "AU" => format!("{prefix}{}", rng.digits(4 - prefix.len())),
        "CA" => {
            const CA_LETTERS: &[u8] = b"ABCEGHJKLMNPRSTVWXYZ";
            let (d1, l, d2) = (rng.below(10), letter(rng, CA_LETTERS), rng.below(10));
            format!("{prefix} {d1}{l}{d2}")
        }
        "GB" => format!(
            "{prefix} {}{}{}",
            rng.below(10),
            letter(rng, UK_UNIT),
            letter(rng, UK_UNIT)
        ),
        "IE" => {
            let unique: String = (0..4).map(|_| letter(rng, EIRCODE)).collect();
            format!("{prefix} {unique}")
        }
        "NL" => {
            let digits = rng.digits(4 - prefix.len());
            let (a, b) = (
                letter(rng, b"ABCEGHJKLMNPRTVWXZ"),
                letter(rng, b"ABCEGHJKLMNPRTVWXZ"),
            );
            format!("{prefix}{digits} {a}{b}")
        }
        other => unreachable!("no postal format for country {other}"),
    }
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn date(rng: &mut SplitMix64, from_year: u64, to_year: u64) -> String {
    let year = rng.range(from_year, to_year);
    let month = rng.range(1, 12);
    let day = rng.range(1, days_in_month(year, month));
    format!("{year:04}-{month:02}-{day:02}")
}

/// Free-text notes: mostly routine, sometimes holding a card number, an SSN (US customers) or an
/// IBAN (customers in IBAN countries), the way such data ends up in real CRMs; a few routine notes
/// hold an IP address or a pasted error with internal paths and host names (DLP-1, DLP-2).
fn notes(rng: &mut SplitMix64, country: &str, first: &str, plan: Plan) -> String {
    let iban_country = matches!(country, "GB" | "IE" | "DE" | "FR" | "NL" | "ES");
    let roll = rng.below(100);
    match roll {
        0..=13 => card_note(rng),
        14..=31 if country == "US" => ssn_note(rng),
        14..=29 if iban_country => iban_note(rng, country),
        32..=36 if country == "US" => format!("{} {}", card_note(rng), ssn_note(rng)),
        _ => routine_note(rng, first, plan),
    }
}

fn routine_note(rng: &mut SplitMix64, first: &str, plan: Plan) -> String {
    let month = *rng.pick(MONTHS);
    match rng.below(11) {
        0 => "Prefers contact by email; do not call before 10:00 local time.".to_owned(),
        1 => format!(
            "Asked about SSO and SCIM provisioning for the {} plan.",
            plan.as_str()
        ),
        2 => format!("Renewal due in {month}; {first} is the internal champion."),
        3 => format!(
            "Escalated ticket #{} about an invoice discrepancy; resolved with a credit note.",
            rng.range(10_000, 99_999)
        ),
        4 => "Interested in annual billing and a volume discount.".to_owned(),
        5 => format!("Met at the {month} user conference; wants a roadmap briefing."),
        6 => "Churn risk: usage down 40% over the last quarter.".to_owned(),
        7 => format!("Upgraded from free to {} after the trial.", plan.as_str()),
        // Documentation range (RFC 5737): an IP address for detectors, nobody's machine.
        8 => format!(
            "Sign-in from unrecognised address 203.0.113.{} blocked; {first} confirmed it was travel.",
            rng.range(1, 254)
        ),
        // Support engineers paste error dumps into notes: an internal-detail leak (DLP-2).
        9 => format!(
            "Bug report: export failed with `psycopg2.OperationalError: could not connect to server` \
             at /srv/crm/app/billing/export.py line {} (host db-{}.internal.corp).",
            rng.range(40, 400),
            rng.range(1, 9)
        ),
        _ => String::new(),
    }
}

/// Groups a card number the way people type it: 4-4-4-4, 4-6-5 for 15-digit cards, or not at all.
fn format_card(rng: &mut SplitMix64, number: &str) -> String {
    let sep = *rng.pick(&[" ", "-", ""]);
    let groups: &[usize] = if number.len() == 15 {
        &[4, 6, 5]
    } else {
        &[4, 4, 4, 4]
    };
    let mut out = String::new();
    let mut at = 0;
    for (i, g) in groups.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        out.push_str(&number[at..at + g]);
        at += g;
    }
    out
}

fn card_note(rng: &mut SplitMix64) -> String {
    let number = *rng.pick(TEST_CARDS);
    let card = format_card(rng, number);
    let exp = format!("{:02}/{}", rng.range(1, 12), rng.range(27, 31));
    match rng.below(4) {
        0 => format!("Card on file: {card} (exp {exp}); keep for renewals."),
        1 => format!("Called to update the payment method, new card {card}, expires {exp}."),
        2 => format!(
            "Paid the overdue invoice by phone with card {card} exp {exp} CVV {}.",
            rng.digits(3)
        ),
        _ => format!(
            "Customer emailed their card number {card} for the upgrade; please move it to the vault."
        ),
    }
}

/// A US social security number in a valid format: area 001-899 except 666 (drawn here from
/// 500-699), group 01-99, serial 0001-9999.
pub(crate) fn ssn(rng: &mut SplitMix64) -> String {
    let area = loop {
        let a = rng.range(500, 699);
        if a != 666 {
            break a;
        }
    };
    format!(
        "{area:03}-{:02}-{:04}",
        rng.range(1, 99),
        rng.range(1, 9999)
    )
}

fn ssn_note(rng: &mut SplitMix64) -> String {
    let ssn = ssn(rng);
    match rng.below(3) {
        0 => format!("Identity verified with SSN {ssn} for the credit check."),
        1 => format!("W-9 on file; SSN {ssn}."),
        _ => format!("Asked us to update tax records: social security no. {ssn}."),
    }
}

/// The numeric value of an alphanumeric string mod 97, letters counting A=10 ... Z=35 (ISO 13616).
pub(crate) fn mod97(s: &str) -> u32 {
    s.chars().fold(0u32, |acc, c| {
        let v = c.to_digit(36).expect("IBAN characters are alphanumeric");
        if v >= 10 {
            (acc * 100 + v) % 97
        } else {
            (acc * 10 + v) % 97
        }
    })
}

/// Builds an IBAN from a country code and BBAN, computing the check digits.
pub(crate) fn iban(country: &str, bban: &str) -> String {
    let check = 98 - mod97(&format!("{bban}{country}00"));
    format!("{country}{check:02}{bban}")
}

/// The French RIB key: 97 - ((89 bank + 15 branch + 3 account) mod 97).
fn rib_key(bank: &str, branch: &str, account: &str) -> u64 {
    let n = |s: &str| s.parse::<u64>().expect("digits");
    97 - ((89 * n(bank) + 15 * n(branch) + 3 * n(account)) % 97)
}

/// One Spanish control digit over 10 digits (weights 1, 2, 4, 8, 5, 10, 9, 7, 3, 6).
fn es_control(digits: &str) -> u64 {
    const W: [u64; 10] = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6];
    let sum: u64 = digits
        .bytes()
        .zip(W)
        .map(|(d, w)| u64::from(d - b'0') * w)
        .sum();
    match 11 - sum % 11 {
        11 => 0,
        10 => 1,
        d => d,
    }
}

fn bban(rng: &mut SplitMix64, country: &str) -> String {
    match country {
        "DE" => format!("{}{}", rng.digits(8), rng.digits(10)),
        "GB" => format!(
            "{}{}{}",
            rng.pick(&["NWBK", "BARC", "MIDL", "LOYD", "HBUK"]),
            rng.digits(6),
            rng.digits(8)
        ),
        "IE" => format!(
            "{}{}{}",
            rng.pick(&["AIBK", "BOFI", "IPBS"]),
            rng.digits(6),
            rng.digits(8)
        ),
        "NL" => format!(
            "{}{}",
            rng.pick(&["ABNA", "INGB", "RABO", "TRIO"]),
            rng.digits(10)
        ),
        "FR" => {
            let (bank, branch, account) = (rng.digits(5), rng.digits(5), rng.digits(11));
            let key = rib_key(&bank, &branch, &account);
            format!("{bank}{branch}{account}{key:02}")
        }
        "ES" => {
            let (bank, branch, account) = (rng.digits(4), rng.digits(4), rng.digits(10));
            let c1 = es_control(&format!("00{bank}{branch}"));
            let c2 = es_control(&account);
            format!("{bank}{branch}{c1}{c2}{account}")
        }
        other => unreachable!("no IBAN format for country {other}"),
    }
}

/// Writes an IBAN in groups of four, as it is printed on statements.
fn group4(s: &str) -> String {
    s.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).expect("ASCII"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn iban_note(rng: &mut SplitMix64, country: &str) -> String {
    let bban = bban(rng, country);
    let iban = iban(country, &bban);
    let shown = if rng.below(2) == 0 {
        group4(&iban)
    } else {
        iban
    };
    match rng.below(3) {
        0 => format!("Pays by SEPA direct debit from IBAN {shown}."),
        1 => format!("Refund of the duplicate charge sent to {shown}."),
        _ => format!("New bank details for invoices: {shown} (confirmed by phone)."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Luhn check over the digits of `s`, ignoring spaces and dashes.
    fn luhn_ok(digits: &str) -> bool {
        let ds: Vec<u32> = digits.chars().filter_map(|c| c.to_digit(10)).collect();
        let sum: u32 = ds
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| {
                if i % 2 == 1 {
                    if d * 2 > 9 { d * 2 - 9 } else { d * 2 }
                } else {
                    d
                }
            })
            .sum();
        sum.is_multiple_of(10)
    }

    /// Card-like runs in `text`: 13-19 digits with optional single spaces or dashes between them.
    fn card_candidates(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                let mut j = i;
                let mut digits = String::new();
                while j < chars.len()
                    && (chars[j].is_ascii_digit()
                        || ((chars[j] == ' ' || chars[j] == '-')
                            && j + 1 < chars.len()
                            && chars[j + 1].is_ascii_digit()))
                {
                    if chars[j].is_ascii_digit() {
                        digits.push(chars[j]);
                    }
                    j += 1;
                }
                let inside_word = i > 0 && chars[i - 1].is_alphanumeric();
                if (13..=19).contains(&digits.len()) && !inside_word {
                    out.push(digits);
                }
                i = j;
            } else {
                i += 1;
            }
        }
        // The digits of a grouped IBAN ("GB71 BARC 6966 5159 ...") look like a card number too;
        // a real detector tells them apart with Luhn, this test by the IBAN around them.
        let ibans = iban_candidates(text);
        out.retain(|digits| !ibans.iter().any(|iban| iban.contains(digits.as_str())));
        out
    }

    fn ssn_candidates(text: &str) -> Vec<(u32, u32, u32)> {
        text.split(|c: char| !(c.is_ascii_digit() || c == '-'))
            .filter_map(|w| {
                let parts: Vec<&str> = w.split('-').collect();
                match parts.as_slice() {
                    [a, g, s] if a.len() == 3 && g.len() == 2 && s.len() == 4 => {
                        Some((a.parse().ok()?, g.parse().ok()?, s.parse().ok()?))
                    }
                    _ => None,
                }
            })
            .collect()
    }

    fn iban_candidates(text: &str) -> Vec<String> {
        // An IBAN starts with two capitals and two digits; the grouped form has single spaces.
        let mut out = Vec::new();
        let bytes = text.as_bytes();
        for i in 0..bytes.len().saturating_sub(4) {
            let starts = bytes[i].is_ascii_uppercase()
                && bytes[i + 1].is_ascii_uppercase()
                && bytes[i + 2].is_ascii_digit()
                && bytes[i + 3].is_ascii_digit()
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric());
            if !starts {
                continue;
            }
            let mut s = String::new();
            let mut j = i;
            while j < bytes.len()
                && (bytes[j].is_ascii_alphanumeric()
                    || (bytes[j] == b' '
                        && j + 1 < bytes.len()
                        && bytes[j + 1].is_ascii_alphanumeric()))
            {
                if bytes[j] != b' ' {
                    s.push(char::from(bytes[j]));
                }
                j += 1;
            }
            if s.len() >= 15 {
                out.push(s);
            }
        }
        out
    }

    #[test]
    fn table_is_deterministic_and_pinned() {
        use sha2::{Digest, Sha256};
        let again = generate_customers(SEED, CUSTOMER_COUNT);
        assert_eq!(customers(), again.as_slice());
        let json = serde_json::to_vec(customers()).unwrap();
        let digest = hex::encode(Sha256::digest(&json));
        // A change here means every demo, screenshot and test fixture built on the table moves:
        // update it only on purpose.
        assert_eq!(
            digest,
            "1d226763b4a6a34a99c19db8ae1b35638b30ec4db74a6c1638cb76756a60e68e"
        );
    }

    #[test]
    fn other_seeds_give_other_tables() {
        assert_ne!(
            generate_customers(SEED + 1, 20),
            generate_customers(SEED, 20)
        );
    }

    #[test]
    fn records_are_well_formed() {
        let table = customers();
        assert_eq!(table.len(), CUSTOMER_COUNT);
        let mut emails = HashSet::new();
        for (i, c) in table.iter().enumerate() {
            assert_eq!(c.id, format!("cus_{:04}", i + 1));
            assert!(
                emails.insert(c.email.clone()),
                "duplicate email {}",
                c.email
            );
            let (local, domain) = c.email.split_once('@').expect("email has @");
            assert!(!local.is_empty() && domain.contains('.'), "{}", c.email);
            assert!(c.email.is_ascii(), "{}", c.email);
            assert!(c.phone.starts_with('+'), "{}", c.phone);
            assert!(
                c.phone[1..].chars().all(|ch| ch.is_ascii_digit()),
                "{}",
                c.phone
            );
            assert!(
                (9..=16).contains(&c.phone.len()),
                "E.164 has at most 15 digits: {}",
                c.phone
            );
            // The national form holds the same subscriber digits as the E.164 form.
            let national: String = c
                .phone_national
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let national = national.trim_start_matches('0');
            assert!(
                c.phone.ends_with(national),
                "{} vs {}",
                c.phone,
                c.phone_national
            );
            for d in [&c.date_of_birth, &c.customer_since] {
                let parts: Vec<u64> = d.split('-').map(|p| p.parse().unwrap()).collect();
                assert_eq!(parts.len(), 3);
                assert!((1..=12).contains(&parts[1]));
                assert!(
                    parts[2] >= 1 && parts[2] <= days_in_month(parts[0], parts[1]),
                    "{d}"
                );
            }
            assert!(!c.address.street.is_empty() && !c.address.postal_code.is_empty());
        }
    }

    #[test]
    fn table_has_a_spread_of_countries_plans_and_sensitive_notes() {
        let table = customers();
        let countries: HashSet<&str> = table
            .iter()
            .map(|c| c.address.country_code.as_str())
            .collect();
        assert_eq!(countries.len(), COUNTRIES.len());
        let plans: HashSet<Plan> = table.iter().map(|c| c.plan).collect();
        assert_eq!(plans.len(), 4);
        let cards = table
            .iter()
            .filter(|c| !card_candidates(&c.notes).is_empty())
            .count();
        let ssns = table
            .iter()
            .filter(|c| !ssn_candidates(&c.notes).is_empty())
            .count();
        let ibans = table
            .iter()
            .filter(|c| !iban_candidates(&c.notes).is_empty())
            .count();
        assert!(cards >= 15, "{cards} notes with a card");
        assert!(ssns >= 6, "{ssns} notes with an SSN");
        assert!(ibans >= 15, "{ibans} notes with an IBAN");
        let clean = table
            .iter()
            .filter(|c| {
                card_candidates(&c.notes).is_empty()
                    && ssn_candidates(&c.notes).is_empty()
                    && iban_candidates(&c.notes).is_empty()
            })
            .count();
        assert!(clean >= 100, "most notes are routine: {clean}");
        let ips = table
            .iter()
            .filter(|c| c.notes.contains("203.0.113."))
            .count();
        let leaks = table
            .iter()
            .filter(|c| c.notes.contains("/srv/crm/"))
            .count();
        assert!(
            ips >= 3 && leaks >= 3,
            "{ips} notes with an IP, {leaks} with an error dump"
        );
    }

    #[test]
    fn card_numbers_pass_luhn_and_come_from_test_ranges() {
        for number in TEST_CARDS {
            assert!(luhn_ok(number), "{number}");
        }
        let mut seen = 0;
        for c in customers() {
            for digits in card_candidates(&c.notes) {
                assert!(luhn_ok(&digits), "{}: {digits}", c.id);
                assert!(TEST_CARDS.contains(&digits.as_str()), "{}: {digits}", c.id);
                seen += 1;
            }
        }
        assert!(seen > 0);
        assert!(!luhn_ok("4111111111111112"), "the check itself can fail");
    }

    #[test]
    fn ssns_have_a_valid_format_and_only_us_customers_have_them() {
        let mut seen = 0;
        for c in customers() {
            for (area, group, serial) in ssn_candidates(&c.notes) {
                assert_eq!(c.address.country_code, "US", "{}", c.id);
                assert!(
                    area != 0 && area != 666 && area < 900,
                    "{}: area {area}",
                    c.id
                );
                assert!(group != 0 && serial != 0, "{}", c.id);
                seen += 1;
            }
        }
        assert!(seen > 0);
    }

    #[test]
    fn ibans_have_valid_checksums_lengths_and_national_check_digits() {
        let lengths = [
            ("DE", 22),
            ("GB", 22),
            ("IE", 22),
            ("NL", 18),
            ("FR", 27),
            ("ES", 24),
        ];
        let mut seen = 0;
        for c in customers() {
            for iban in iban_candidates(&c.notes) {
                let cc = &iban[..2];
                assert_eq!(cc, c.address.country_code, "{}: {iban}", c.id);
                let want = lengths.iter().find(|(k, _)| *k == cc).unwrap().1;
                assert_eq!(iban.len(), want, "{}: {iban}", c.id);
                let rearranged = format!("{}{}", &iban[4..], &iban[..4]);
                assert_eq!(mod97(&rearranged), 1, "{}: {iban}", c.id);
                if cc == "FR" {
                    let b = &iban[4..];
                    assert_eq!(
                        rib_key(&b[..5], &b[5..10], &b[10..21]),
                        b[21..].parse::<u64>().unwrap()
                    );
                }
                if cc == "ES" {
                    let b = &iban[4..];
                    assert_eq!(es_control(&format!("00{}", &b[..8])).to_string(), &b[8..9]);
                    assert_eq!(es_control(&b[10..]).to_string(), &b[9..10]);
                }
                seen += 1;
            }
        }
        assert!(seen > 0);
        // Known-good reference IBANs from the ISO 13616 registry examples.
        assert_eq!(iban("DE", "370400440532013000"), "DE89370400440532013000");
        assert_eq!(iban("GB", "NWBK60161331926819"), "GB29NWBK60161331926819");
    }

    #[test]
    fn splitmix64_matches_its_reference_output() {
        // Reference values for seed 1234567 from the published SplitMix64 implementation.
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
    }
}
