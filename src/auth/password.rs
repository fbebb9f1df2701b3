//! Argon2id password hashing. Callers run these off the async workers (inside `Db::read`/`write` or
//! `web::block`): a hash costs tens of milliseconds by design.
//!
//! Each hash needs a 19 MiB work area. Allocating it per hash on whichever blocking thread runs the login
//! left one such area resident per thread (glibc keeps freed memory in per-thread arenas), so the server's
//! RSS grew by 19 MiB for every thread that ever checked a password. The work areas are therefore kept in a
//! small fixed pool and reused: at most `POOL_SIZE` hashes run at once, the others wait for a free area.

use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, ParamsBuilder, Version};

/// How many work areas exist (and so how many hashes may run at the same time).
const POOL_SIZE: usize = 2;

/// The reusable work areas, each sized for the default parameters on first use.
static POOL: [Mutex<Vec<Block>>; POOL_SIZE] = [const { Mutex::new(Vec::new()) }; POOL_SIZE];

/// Round-robin start for waiting on a busy pool.
static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn lock(slot: &Mutex<Vec<Block>>) -> MutexGuard<'_, Vec<Block>> {
    // A panic mid-hash leaves only scratch memory behind: the area stays usable.
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A free work area, waiting for one when all are busy.
fn work_area() -> MutexGuard<'static, Vec<Block>> {
    for slot in &POOL {
        if let Ok(g) = slot.try_lock() {
            return g;
        }
    }
    let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % POOL_SIZE;
    lock(&POOL[i])
}

/// Runs Argon2 with `argon`'s parameters into `out`, in a pooled work area (a one-off area for parameters
/// larger than the defaults, e.g. hashes imported from elsewhere).
fn compute(argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> anyhow::Result<()> {
    let need = argon.params().block_count();
    let fail = |e: argon2::Error| anyhow::anyhow!("hashing failed: {e}");
    if need > Params::DEFAULT.block_count() {
        let mut blocks = vec![Block::default(); need];
        return argon
            .hash_password_into_with_memory(password, salt, out, &mut blocks[..])
            .map_err(fail);
    }
    let mut area = work_area();
    if area.len() < need {
        area.resize(need, Block::default());
    }
    argon
        .hash_password_into_with_memory(password, salt, out, &mut area[..need])
        .map_err(fail)
}

/// Hashes a password with a fresh salt (PHC string, Argon2id with the default parameters).
pub fn hash(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let mut raw_salt = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut raw_salt)
        .map_err(|e| anyhow::anyhow!("bad salt: {e}"))?;
    let params = Params::DEFAULT;
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&argon, password.as_bytes(), salt_bytes, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .map_err(|e| anyhow::anyhow!("bad params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("bad output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a stored PHC string; a malformed hash never verifies.
pub fn verify(password: &str, phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let Ok(version) = h.version.map_or(Ok(Version::default()), Version::try_from) else {
        return false;
    };
    let Ok(params) = Params::try_from(&h) else {
        return false;
    };
    // The stored hash's own length, as argon2's `verify_password` does.
    let Ok(params) = ParamsBuilder::new()
        .m_cost(params.m_cost())
        .t_cost(params.t_cost())
        .p_cost(params.p_cost())
        .output_len(expected.len())
        .build()
    else {
        return false;
    };
    let mut raw_salt = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    if compute(&argon, password.as_bytes(), salt_bytes, &mut out).is_err() {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::new(&out).is_ok_and(|computed| computed == expected)
}

static DUMMY: LazyLock<String> = LazyLock::new(|| hash("dummy-password-0").unwrap_or_default());

/// Spends the same work as a real check, for unknown employee numbers (no timing oracle).
pub fn verify_dummy(password: &str) {
    let _ = verify(password, &DUMMY);
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};

    #[test]
    fn hash_and_verify() {
        let h = super::hash("demo1234").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(super::verify("demo1234", &h));
        assert!(!super::verify("demo12345", &h));
        assert!(!super::verify("demo1234", "not-a-hash"));
    }

    #[test]
    fn compatible_with_the_argon2_crate_both_ways() {
        // Hashes stored before the pooled work areas (argon2's own PHC strings) still verify, and ours
        // verify with argon2's verifier.
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap();
        let theirs = argon2::Argon2::default()
            .hash_password(b"demo1234", &salt)
            .unwrap()
            .to_string();
        assert!(super::verify("demo1234", &theirs));
        assert!(!super::verify("demo1235", &theirs));
        let ours = super::hash("demo1234").unwrap();
        let parsed = argon2::PasswordHash::new(&ours).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"demo1234", &parsed)
                .is_ok()
        );
    }

    #[test]
    fn verifies_other_parameters_and_concurrently() {
        let salt = SaltString::from_b64("c2FsdHNhbHRzYWx0c2FsdA").unwrap();
        let params = argon2::Params::new(8 * 1024, 1, 1, Some(24)).unwrap();
        let small =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
                .hash_password(b"pw12345678", &salt)
                .unwrap()
                .to_string();
        let hashes: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(|| super::hash("demo1234").unwrap()))
            .map(|t| t.join().unwrap())
            .collect();
        let checks: Vec<_> = hashes
            .into_iter()
            .map(|h| std::thread::spawn(move || super::verify("demo1234", &h)))
            .collect();
        assert!(checks.into_iter().all(|t| t.join().unwrap()));
        assert!(super::verify("pw12345678", &small));
        assert!(!super::verify("pw123456789", &small));
    }
}
