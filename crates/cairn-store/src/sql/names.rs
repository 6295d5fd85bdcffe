//! MLflow-style random run names (`bold-fox-123`): a predicate, a noun and a number below 1000,
//! at most 20 characters long.

const PREDICATES: &[&str] = &[
    "able", "amazing", "bold", "brave", "bright", "calm", "clean", "clever", "crisp", "dapper", "eager", "fair",
    "fast", "fun", "gentle", "glad", "grand", "happy", "honest", "keen", "kind", "lively", "loud", "lucky", "merry",
    "nimble", "polite", "proud", "quick", "quiet", "rare", "sharp", "shy", "silent", "sleek", "smart", "stable",
    "sunny", "swift", "tidy", "upbeat", "vivid", "warm", "wise",
];

const NOUNS: &[&str] = &[
    "ant", "bass", "bat", "bear", "bee", "bird", "carp", "cat", "colt", "crab", "crow", "deer", "doe", "dove", "eel",
    "elk", "finch", "fish", "fox", "frog", "goat", "hare", "hawk", "hen", "jay", "koi", "lark", "lynx", "mole", "moth",
    "newt", "owl", "ox", "panda", "ram", "rat", "seal", "shark", "slug", "snail", "squid", "swan", "toad", "trout",
    "wasp", "whale", "wolf", "worm", "yak",
];

/// Longest name produced, as in MLflow.
const MAX_LENGTH: usize = 20;

/// A fresh random run name.
pub fn random_run_name() -> String {
    // A v4 UUID is 122 bits from the OS generator: plenty for three independent choices.
    let bits = u128::from_le_bytes(*uuid::Uuid::new_v4().as_bytes());
    let predicate = PREDICATES[(bits % PREDICATES.len() as u128) as usize];
    let noun = NOUNS[((bits >> 32) % NOUNS.len() as u128) as usize];
    let number = (bits >> 64) % 1000;
    let mut name = format!("{predicate}-{noun}-{number}");
    name.truncate(MAX_LENGTH);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_have_three_parts_and_fit() {
        for _ in 0..200 {
            let name = random_run_name();
            let parts: Vec<&str> = name.split('-').collect();
            assert_eq!(parts.len(), 3, "{name}");
            assert!(PREDICATES.contains(&parts[0]) && NOUNS.contains(&parts[1]), "{name}");
            assert!(parts[2].parse::<u32>().unwrap() < 1000, "{name}");
            assert!(name.len() <= MAX_LENGTH);
        }
    }
}
