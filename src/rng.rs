//! splitmix64, the one mixing function behind every seeded choice: the simulator's replies, a
//! pool's weighted picks, the recovery probes' jitter. Hand-written (a dozen lines) so that a seed
//! keeps producing the same sequence whatever the versions of the crates around it.

/// splitmix64's increment: the state advances by this much per number.
pub(crate) const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output function: a well-spread number from an advanced state.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The top 53 bits of `z` as a number in `0.0..1.0`.
pub(crate) fn unit(z: u64) -> f64 {
    (z >> 11) as f64 / (1u64 << 53) as f64
}
