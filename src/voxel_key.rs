//! The one hasher for integer voxel keys (Gaussian map roots and blocks, normals grid, LiDAR
//! map roots, scan downsampling): SipHash is needlessly slow here and its random seed would make
//! iteration order differ between runs. The Gaussian map iterates its maps, so the hash values
//! (and with them the map output) depend on this function: change it only with new baselines.

use std::hash::{BuildHasherDefault, Hasher};

/// Multiply-rotate hasher in the style of FxHash; fine for trusted integer keys.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(b));
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(K);
    }

    fn write_i64(&mut self, v: i64) {
        self.write_u64(v as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// A `HashMap` keyed by voxel coordinates, with [`KeyHasher`].
pub type KeyMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<KeyHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(v: &T) -> u64 {
        BuildHasherDefault::<KeyHasher>::default().hash_one(v)
    }

    /// Pins the hash values: the Gaussian map's iteration order (and so `map.ply`) follows them.
    #[test]
    fn hash_values_are_pinned() {
        let k3: [i64; 3] = [1, -2, 3];
        let mut h = KeyHasher::default();
        for v in [3u64, 1, (-2i64) as u64, 3] {
            h.write_u64(v);
        }
        assert_eq!(hash(&k3), h.finish());
        assert_eq!(hash(&0u64), 0);
        assert_eq!(hash(&1u64), K);
        // Byte writes are little-endian 8-byte words, zero-padded: [i32; 3] packs into two.
        let k: [i32; 3] = [1, 2, 3];
        let mut h = KeyHasher::default();
        h.write_u64(3);
        h.write_u64(1 | (2 << 32));
        h.write_u64(3);
        assert_eq!(hash(&k), h.finish());
    }

    #[test]
    fn neighbouring_keys_differ() {
        let mut seen = std::collections::HashSet::new();
        for x in -4i64..4 {
            for y in -4i64..4 {
                for z in -4i64..4 {
                    assert!(seen.insert(hash(&[x, y, z])), "collision at {x} {y} {z}");
                }
            }
        }
    }
}
