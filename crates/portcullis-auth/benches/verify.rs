//! Token verification cost (AUTH-4): the full check of a token not seen before (cache miss:
//! header, ES256 signature, claims) and the per-call path (cache hit + time, audience and
//! revocation checks + a scope check), against a baseline measured in the same run: a bare
//! SHA-256 of the token. Figures in BENCHMARKS.md.
//!
//! `cargo bench -p portcullis-auth --bench verify`

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_auth::keys::public_key;
use portcullis_auth::{Claims, Verifier};
use portcullis_core::clock::ManualClock;

const ISSUER: &str = "http://127.0.0.1:8080";
const RESOURCE: &str = "http://127.0.0.1:8080/mcp/crm";

fn main() {
    percentiles();
    divan::main();
}

/// divan reports medians and means; the target is a p99, so time single calls too and print
/// their percentiles (same run, same machine, same noise as the baseline).
fn percentiles() {
    fn run(name: &str, n: usize, mut f: impl FnMut()) {
        let mut t: Vec<u128> = (0..n)
            .map(|_| {
                let s = std::time::Instant::now();
                f();
                s.elapsed().as_nanos()
            })
            .collect();
        t.sort_unstable();
        let p = |q: f64| t[((n as f64 * q) as usize).min(n - 1)];
        println!(
            "{name:<44} p50 {:>7} ns   p99 {:>7} ns   p99.9 {:>7} ns",
            p(0.5),
            p(0.99),
            p(0.999)
        );
    }
    let f = fixture();
    run("baseline_sha256_of_token", 200_000, || {
        divan::black_box(portcullis_auth::crypto::sha256(divan::black_box(
            f.token.as_bytes(),
        )));
    });
    run("full_verification_cache_miss", 5_000, || {
        f.verifier.clear_cache();
        divan::black_box(
            f.verifier
                .verify_sync(divan::black_box(&f.token), RESOURCE)
                .unwrap(),
        );
    });
    run("per_call_cache_hit_revocation_and_scope", 200_000, || {
        let p = f
            .verifier
            .verify_sync(divan::black_box(&f.token), RESOURCE)
            .unwrap();
        assert!(p.has_scope("crm:read"));
        divan::black_box(p);
    });
}

struct Fixture {
    verifier: Verifier,
    token: String,
}

fn fixture() -> Fixture {
    let start = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let verifier = Verifier::new(ISSUER.into(), "dev".into(), clock);
    let pk = public_key("k1", pair.public_key().as_ref()).unwrap();
    verifier.set_keys(Arc::new(HashMap::from([("k1".to_string(), pk)])));
    // A realistic revocation state: a few thousand revoked ids and families.
    verifier.set_revocations(
        (0..5000).map(|i| format!("jti-{i}")).collect(),
        (0..5000)
            .map(|i| format!("fam-{i}"))
            .collect::<HashSet<_>>(),
    );
    let now = start.timestamp();
    let claims = Claims {
        iss: ISSUER.into(),
        sub: "4b3a0e0c-8f0e-4a57-9c43-2f1f1e6a0b11".into(),
        aud: RESOURCE.into(),
        client_id: "pc-Jx0d3GmB8n1tqk2oYyK2Lg".into(),
        scope: "crm:read crm:write".into(),
        exp: now + 3600,
        iat: now,
        nbf: now,
        jti: "q8Vv1QwJ6h8n0c1m2b3v4A".into(),
        name: Some("Alice Example".into()),
        groups: vec!["sales".into(), "emea".into()],
        roles: vec!["end_user".into()],
        env: "dev".into(),
        fam: "m2b3v4Aq8Vv1QwJ6h8n0c1".into(),
    };
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k1".into());
    let token =
        jsonwebtoken::encode(&h, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref())).unwrap();
    assert!(verifier.verify_sync(&token, RESOURCE).is_ok());
    Fixture { verifier, token }
}

#[divan::bench]
fn baseline_sha256_of_token(b: divan::Bencher) {
    let f = fixture();
    b.bench(|| portcullis_auth::crypto::sha256(divan::black_box(f.token.as_bytes())));
}

#[divan::bench]
fn full_verification_cache_miss(b: divan::Bencher) {
    let f = fixture();
    b.bench(|| {
        f.verifier.clear_cache();
        f.verifier
            .verify_sync(divan::black_box(&f.token), RESOURCE)
            .unwrap()
    });
}

#[divan::bench]
fn per_call_cache_hit_revocation_and_scope(b: divan::Bencher) {
    let f = fixture();
    b.bench(|| {
        let p = f
            .verifier
            .verify_sync(divan::black_box(&f.token), RESOURCE)
            .unwrap();
        assert!(p.has_scope("crm:read"));
        p
    });
}
