//! Little-endian binary encoding of the map file's sections, and its bounds-checked reader:
//! every read checks the bytes left, and every count is checked against them before anything
//! is allocated, so a damaged file gives an error, never a panic or a huge allocation.

use nalgebra::{Isometry3, Matrix3, Quaternion, Translation3, UnitQuaternion, Vector3};

/// Appends values to a byte buffer.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    pub fn bool(&mut self, v: bool) {
        self.0.push(u8::from(v));
    }
    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    pub fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32(&mut self, v: f32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32s(&mut self, v: &[f32]) {
        v.iter().for_each(|&x| self.f32(x));
    }
    pub fn f64s(&mut self, v: &[f64]) {
        v.iter().for_each(|&x| self.f64(x));
    }
    pub fn vec3(&mut self, v: &Vector3<f64>) {
        self.f64s(v.as_slice());
    }
    pub fn mat3(&mut self, m: &Matrix3<f64>) {
        self.f64s(m.as_slice());
    }
    /// Translation xyz, then quaternion xyzw.
    pub fn iso(&mut self, t: &Isometry3<f64>) {
        self.vec3(&t.translation.vector);
        self.f64s(t.rotation.coords.as_slice());
    }
    pub fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
}

/// Reads values back; errors name what was being read.
pub struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

pub type ReadResult<T> = Result<T, String>;

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> ReadResult<&'a [u8]> {
        if n > self.remaining() {
            return Err(format!(
                "needs {n} bytes at offset {} but {} are left",
                self.pos,
                self.remaining()
            ));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> ReadResult<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub fn u8(&mut self) -> ReadResult<u8> {
        Ok(self.take(1)?[0])
    }
    pub fn bool(&mut self) -> ReadResult<bool> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(format!("flag {v} at offset {}", self.pos - 1)),
        }
    }
    pub fn u32(&mut self) -> ReadResult<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> ReadResult<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A count of items of at least `item_bytes` bytes each: refused when the bytes left cannot
    /// hold that many.
    pub fn len(&mut self, item_bytes: usize) -> ReadResult<usize> {
        let n = self.u64()?;
        let fits = (n as u128) * (item_bytes.max(1) as u128) <= self.remaining() as u128;
        if !fits {
            return Err(format!(
                "count {n} at offset {} exceeds the {} bytes left",
                self.pos - 8,
                self.remaining()
            ));
        }
        Ok(n as usize)
    }
    pub fn i32(&mut self) -> ReadResult<i32> {
        Ok(i32::from_le_bytes(self.array()?))
    }
    pub fn i64(&mut self) -> ReadResult<i64> {
        Ok(i64::from_le_bytes(self.array()?))
    }
    pub fn f32(&mut self) -> ReadResult<f32> {
        Ok(f32::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> ReadResult<f64> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    pub fn f32s<const N: usize>(&mut self) -> ReadResult<[f32; N]> {
        let mut a = [0.0; N];
        for v in &mut a {
            *v = self.f32()?;
        }
        Ok(a)
    }
    pub fn f64s<const N: usize>(&mut self) -> ReadResult<[f64; N]> {
        let mut a = [0.0; N];
        for v in &mut a {
            *v = self.f64()?;
        }
        Ok(a)
    }
    pub fn bytes(&mut self, n: usize) -> ReadResult<&'a [u8]> {
        self.take(n)
    }
    pub fn vec3(&mut self) -> ReadResult<Vector3<f64>> {
        Ok(Vector3::from(self.f64s::<3>()?))
    }
    pub fn mat3(&mut self) -> ReadResult<Matrix3<f64>> {
        Ok(Matrix3::from_column_slice(&self.f64s::<9>()?))
    }
    /// A rigid transform; its quaternion must be finite and of unit norm (to 1e-6).
    pub fn iso(&mut self) -> ReadResult<Isometry3<f64>> {
        let t = self.vec3()?;
        let [x, y, z, w] = self.f64s::<4>()?;
        let q = Quaternion::new(w, x, y, z);
        if !(q.norm() - 1.0).abs().lt(&1e-6) || !t.iter().all(|v| v.is_finite()) {
            return Err(format!(
                "transform with |q| = {} or non-finite translation",
                q.norm()
            ));
        }
        Ok(Isometry3::from_parts(
            Translation3::from(t),
            UnitQuaternion::new_unchecked(q),
        ))
    }
    pub fn str(&mut self) -> ReadResult<String> {
        let n = self.len(1)?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|e| format!("text: {e}"))
    }
    /// Fails unless every byte was read.
    pub fn finish(&self) -> ReadResult<()> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(format!("{n} bytes left after the last field")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_and_overruns_are_errors() {
        let mut w = Writer::default();
        w.u8(7);
        w.bool(true);
        w.i64(-3);
        w.f32(1.5);
        w.f64(-0.1);
        w.str("rig");
        let t = Isometry3::new(Vector3::new(1.0, 2.0, 3.0), Vector3::new(0.1, -0.2, 0.3));
        w.iso(&t);
        w.len(1 << 40);
        let mut r = Reader::new(&w.0);
        assert_eq!(r.u8().unwrap(), 7);
        assert!(r.bool().unwrap());
        assert_eq!(r.i64().unwrap(), -3);
        assert_eq!(r.f32().unwrap(), 1.5);
        assert_eq!(r.f64().unwrap(), -0.1);
        assert_eq!(r.str().unwrap(), "rig");
        assert_eq!(r.iso().unwrap(), t);
        // A count that cannot fit in what is left is refused before any allocation.
        assert!(r.len(1).is_err());
        assert!(r.u8().is_err());
        let mut r = Reader::new(&[2]);
        assert!(r.bool().is_err());
    }
}
